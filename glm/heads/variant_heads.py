"""Supervised heads for variants: model features of labelled variants, a probe with grouped CV, saved safely.

    settings = VariantHeadSettings(label="label", group="gene")      # glm.heads.settings
    report = fit_variant_head(lm.model, lm.tokenizer, "labelled.tsv", "genome.fa", settings, out="heads/mito")
    report.cv.metrics                       # out-of-fold auroc, auprc, accuracy, mcc
    lm.score_variants("new.vcf", "genome.fa", head="heads/mito")   # adds head_probability

Features (glm.scoring.zero_shot.variant_features): the llr on each strand and their mean, the cosine and L2
embedding distances, and (features="all", the default) the strand-averaged difference of the
pooled alt and ref embeddings; features="scores" keeps only the five scores, the better choice
when labelled variants number in the hundreds rather than thousands. The
probe is a glm.heads probe (standardised logistic regression by default). With a group column,
cross-validation keeps each group (a gene, an exon, a block of the genome) inside one test fold,
so a variant is never scored by a probe that saw its neighbours. Every metric comes with a 95%
bootstrap interval over the variants, and the per-fold values; numeric baseline columns of the
labelled file (`baselines=["CADD", "-phyloP"]`: higher means the positive class, a leading "-"
flips it) are scored on the same rows, beside the head, with a paired bootstrap of the
difference (a missing baseline value leaves its row out of that comparison; a missing label or
group, empty or spelt ".", "NA" or "NaN", is an InputError naming the row). The head saved at the end is
fitted on all labelled variants; it records the model's fingerprint, window and layer, so it is
only ever applied to features computed the same way.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from glm.errors import InputError
from glm.heads.evaluation import CVResult, check_folds, compare_scores, cross_validate, with_interval
from glm.heads.probes import Head, encode_labels, fit_head, label_indices
from glm.heads.settings import VariantHeadSettings
from glm.io.coordinates import to_one_based
from glm.io.files import atomic_file, write_json
from glm.io.genome import Genome
from glm.io.variant_readers import read_variants
from glm.io.variants import Variant, VariantList
from glm.model.checkpoint import model_fingerprint
from glm.model.tokenizers import Tokenizer, require_dna
from glm.model.transformer import Transformer
from glm.plots import plot_roc
from glm.scoring.windows import default_window
from glm.scoring.heads import FEATURE_SCORES
from glm.scoring.zero_shot import variant_features

ROC_PNG, CV_TSV, METRICS_JSON = "roc.png", "cross_validation.tsv", "metrics.json"


@dataclass
class VariantHeadReport:
    """What fitting a variant head produced: the head, its cross-validation, and what was left out."""

    head: Head
    cv: CVResult
    used: list[Variant]  # the labelled variants the head learned from, in input order
    skipped: list[Variant]  # variants that could not be scored (their status says why)
    out: Path | None
    baselines: dict[str, dict[str, Any]] = field(default_factory=dict)  # glm.heads.evaluation.compare_scores

    def summary(self) -> str:
        metrics, info, intervals = self.cv.metrics, self.head.info, self.cv.intervals
        grouping = f", grouped by {info['group_column']}" if info["group_column"] else ""
        counts = ", ".join(f"{name} {count}" for name, count in info["class_counts"].items())
        shown = "  ".join(with_interval(name, metrics[name], intervals.get(name)) for name in ("auroc", "auprc", "mcc"))
        per_fold = " ".join(f"{fold['auroc']:.3f}" for fold in self.cv.fold_metrics)
        lines = [
            f"{len(self.used)} labelled variants used ({counts}); {len(self.skipped)} not scorable, left out",
            f"out-of-fold ({info['folds']} folds{grouping}; 95% bootstrap intervals over variants):",
            f"  head         {shown}  accuracy {metrics['accuracy']:.3f}",
            f"  AUROC per fold: {per_fold}",
        ]
        for name, compared in self.baselines.items():
            theirs, difference = compared["baseline"], compared["difference"]
            ranked = "  ".join(with_interval(m, theirs[m], theirs["intervals"][m]) for m in ("auroc", "auprc"))
            delta = "  ".join(
                f"{m.upper()} {difference[m][0]:+.3f} [{difference[m][1]:+.3f}, {difference[m][2]:+.3f}]"
                for m in ("auroc", "auprc")
            )
            lines.append(f"  {name:<12} {ranked}  ({compared['rows']} variants with a value)")
            lines.append(f"  {'':<12} head - {name}: {delta}")
        if self.out is not None:
            lines.append(f"head, ROC curve and out-of-fold predictions in {self.out}")
        return "\n".join(lines)


MISSING_VALUES = ("", ".", "na", "nan")  # how a table spells a missing value (any case)


def _column(variants: list[Variant], name: str, role: str) -> list[str]:
    """The value of field `name` on every variant; a missing, empty or NA value names its row (a class
    or group "NaN" would be fitted as one more class)."""
    values = []
    for variant in variants:
        value = variant.fields.get(name, "").strip()
        if not value:
            known = ", ".join(variant.fields) or "none"
            raise InputError(
                f"{role} column {name!r}: missing or empty (columns: {known})", variant.source, variant.line
            )
        if value.lower() in MISSING_VALUES:
            raise InputError(
                f"{role} column {name!r}: missing value {value!r}; give every variant a {role} or leave the row out",
                variant.source,
                variant.line,
            )
        values.append(value)
    return values


def _baseline_values(variants: list[Variant], name: str) -> np.ndarray:
    """A numeric baseline column ("-NAME" negated); empty, '.', 'NA' and 'nan' are missing (NaN)."""
    column, sign = (name[1:], -1.0) if name.startswith("-") else (name, 1.0)
    values = []
    for variant in variants:
        if column not in variant.fields:
            known = ", ".join(variant.fields) or "none"
            raise InputError(f"baseline column {column!r} not found (columns: {known})", variant.source, variant.line)
        text = variant.fields[column].strip()
        if text.lower() in MISSING_VALUES:
            values.append(np.nan)
            continue
        try:
            values.append(sign * float(text))
        except ValueError:
            raise InputError(
                f"baseline column {column!r}: not a number: {text!r}", variant.source, variant.line
            ) from None
    return np.array(values, dtype=np.float64)


def fit_variant_head(
    model: Transformer,
    tokenizer: Tokenizer,
    variants: str | os.PathLike[str] | VariantList | Iterable[Any],
    genome: str | os.PathLike[str] | Genome,
    settings: VariantHeadSettings,
    aliases: dict[str, str] | None = None,
    out: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> VariantHeadReport:
    """Fit a head on labelled variants (`settings.label` column; optional `settings.group` column) with
    cross-validation: read the columns, compute the features, cross-validate, fit on every scorable
    variant, compare with the baselines, write.

    With `out`, writes the head (head.json + head.safetensors), roc.png (out-of-fold ROC curve),
    cross_validation.tsv (each variant's fold and out-of-fold probability) and metrics.json
    (metrics, their intervals, per-fold metrics, baselines).
    """
    require_dna(tokenizer, "a variant head")  # before the genome and the variants are read
    genome = genome if isinstance(genome, Genome) else Genome(genome)
    if not isinstance(variants, VariantList):
        variants = read_variants(variants, genome, aliases)
    columns = _Columns.read(list(variants), settings)
    check_folds(*encode_labels(columns.labels), columns.groups, settings.folds)  # before the features and their bar
    if settings.window is None:
        settings = replace(settings, window=default_window(model, tokenizer))  # type: ignore[arg-type]
    training, skipped = _scorable(*_features(model, tokenizer, variants, genome, settings, progress), columns)
    labels, groups = training.columns.labels, training.columns.groups
    cv = cross_validate(
        training.features, labels, groups, settings.kind, settings.folds, settings.seed, settings.bootstrap_rounds
    )
    head = _fit_head(training, cv, model, settings)
    compared = _compare_baselines(training.columns, cv, settings)
    if out is not None:
        _write_outputs(Path(out), head, training, cv, compared)
    return VariantHeadReport(head, cv, training.variants, skipped, None if out is None else Path(out), compared)


@dataclass(frozen=True)
class _Columns:
    """The label, group and baseline columns of labelled variants: one value per variant."""

    labels: list[str]
    groups: list[str] | None
    baselines: dict[str, np.ndarray]  # baseline name -> its values (NaN where missing)

    @classmethod
    def read(cls, variants: list[Variant], settings: VariantHeadSettings) -> _Columns:
        labels = _column(variants, settings.label, "label")
        groups = _column(variants, settings.group, "group") if settings.group else None
        return cls(labels, groups, {name: _baseline_values(variants, name) for name in settings.baselines or []})

    def rows(self, keep: np.ndarray) -> _Columns:
        """The values of the rows where `keep` is True."""
        picked = np.flatnonzero(keep)
        groups = [self.groups[row] for row in picked] if self.groups else None
        baselines = {name: values[keep] for name, values in self.baselines.items()}
        return _Columns([self.labels[row] for row in picked], groups, baselines)


@dataclass(frozen=True)
class _Training:
    """What a head learns from: the scorable labelled variants (input order), their features and columns."""

    variants: list[Variant]
    features: np.ndarray  # (variants, features)
    names: list[str]  # the feature names, one per column of `features`
    columns: _Columns


def _features(
    model: Transformer,
    tokenizer: Tokenizer,
    variants: VariantList,
    genome: Genome,
    settings: VariantHeadSettings,
    progress: bool,
) -> tuple[np.ndarray, list[str], VariantList]:
    """(features of every variant (NaN rows where not scorable), their names, the variants with their status)."""
    matrix, names, scored = variant_features(
        model,
        tokenizer,
        variants,
        genome,
        window=settings.window,
        layer=settings.layer,
        batch_size=settings.batch_size,
        progress=progress,
    )
    if settings.features == "scores":
        return matrix[:, : len(FEATURE_SCORES)], names[: len(FEATURE_SCORES)], scored
    return matrix, names, scored


def _scorable(
    features: np.ndarray, names: list[str], scored: VariantList, columns: _Columns
) -> tuple[_Training, list[Variant]]:
    """(the scorable variants with their features and columns, the variants left out)."""
    usable = np.isfinite(features).all(axis=1)
    used = [variant for variant, ok in zip(scored, usable) if ok]
    if not used:
        raise InputError("no labelled variant could be scored", scored.source)
    skipped = [variant for variant, ok in zip(scored, usable) if not ok]
    return _Training(used, features[usable], names, columns.rows(usable)), skipped


def _fit_head(training: _Training, cv: CVResult, model: Transformer, settings: VariantHeadSettings) -> Head:
    """The head fitted on every scorable variant; its info holds what applying it needs (model, window, layer)."""
    head = fit_head(
        training.features, training.columns.labels, kind=settings.kind, feature_names=training.names, seed=settings.seed
    )
    head.info.update(
        task="variant",
        model_fingerprint=model_fingerprint(model),
        window=settings.window,
        layer=settings.layer,
        label_column=settings.label,
        group_column=settings.group,
        positive=head.classes[-1],
        features=settings.features,
        folds=settings.folds,
        cv_metrics=cv.metrics,
        cv_intervals=cv.intervals,
    )
    return head


def _compare_baselines(columns: _Columns, cv: CVResult, settings: VariantHeadSettings) -> dict[str, dict[str, Any]]:
    """The head's out-of-fold probability against each baseline column (glm.heads.evaluation.compare_scores)."""
    is_positive = label_indices(columns.labels, cv.classes) == len(cv.classes) - 1
    probability = cv.probabilities[:, -1]
    return compare_scores(is_positive, probability, columns.baselines, settings.bootstrap_rounds, settings.seed)


def _write_outputs(
    out: Path, head: Head, training: _Training, cv: CVResult, baselines: dict[str, dict[str, Any]]
) -> None:
    """The head, its out-of-fold predictions and metrics, and the out-of-fold ROC curve."""
    head.save(out)
    _write_cv(out, training.variants, training.columns, cv, baselines)
    group = head.info["group_column"]
    title = f"{len(training.variants)} variants, {head.info['folds']}-fold CV"
    title += f" grouped by {group}" if group else ""
    truth = label_indices(training.columns.labels, cv.classes)
    plot_roc(truth, cv.probabilities, cv.classes, out / ROC_PNG, title=f"{head.classes[-1]}: {title}")


def _write_cv(
    out: Path, used: list[Variant], columns: _Columns, cv: CVResult, baselines: dict[str, dict[str, Any]]
) -> None:
    """cross_validation.tsv (each variant's fold and out-of-fold probability) and metrics.json."""
    labels, groups, positive = columns.labels, columns.groups, cv.classes[-1]
    lines = ["chrom\tpos\tref\talt\tlabel\tgroup\tfold\tprobability_" + positive]
    for index, variant in enumerate(used):
        cells = [variant.chrom, str(to_one_based(variant.pos)), variant.ref, variant.alt, labels[index]]
        cells += [groups[index] if groups else "", str(cv.folds[index]), f"{cv.probabilities[index, -1]:.6g}"]
        lines.append("\t".join(cells))
    with atomic_file(out / CV_TSV) as partial:
        partial.write_text("\n".join(lines) + "\n")
    values = {"metrics": cv.metrics, "intervals": cv.intervals, "fold_metrics": cv.fold_metrics, "classes": cv.classes}
    write_json(out / METRICS_JSON, {**values, "baselines": baselines})
