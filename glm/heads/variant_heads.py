"""Supervised heads for variants: model features of labelled variants, a probe with grouped CV, saved safely.

    report = fit_variant_head(lm.model, lm.tokenizer, "labelled.tsv", "genome.fa", label="label",
                              group="gene", out="heads/mito")
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
difference. The head saved at the end is
fitted on all labelled variants; it records the model's fingerprint, window and layer, so it is
only ever applied to features computed the same way.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from glm.errors import InputError
from glm.heads.evaluation import BOOTSTRAP_ROUNDS, CVResult, compare_scores, cross_validate, with_interval
from glm.heads.probes import Head, fit_head, label_indices
from glm.io.coordinates import to_one_based
from glm.io.files import atomic_file, write_json
from glm.io.genome import Genome
from glm.io.variant_readers import read_variants
from glm.io.variants import Variant, VariantList
from glm.model.checkpoint import model_fingerprint
from glm.model.tokenizers import Tokenizer
from glm.model.transformer import Transformer
from glm.plots import plot_roc
from glm.scoring.windows import default_window
from glm.scoring.zero_shot import FEATURE_SCORES, variant_features

ROC_PNG, CV_TSV, METRICS_JSON = "roc.png", "cross_validation.tsv", "metrics.json"
FEATURE_SETS = ("all", "scores")


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


def _column(variants: list[Variant], name: str, role: str) -> list[str]:
    """The value of field `name` on every variant; a missing or empty value names its row."""
    values = []
    for variant in variants:
        value = variant.fields.get(name, "").strip()
        if not value:
            known = ", ".join(variant.fields) or "none"
            raise InputError(
                f"{role} column {name!r}: missing or empty (columns: {known})", variant.source, variant.line
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
        if text.lower() in ("", ".", "na", "nan"):
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
    label: str,
    group: str | None = None,
    kind: str = "logistic",
    features: str = "all",
    folds: int = 5,
    seed: int = 0,
    window: int | None = None,
    layer: int = -1,
    batch_size: int = 16,
    aliases: dict[str, str] | None = None,
    out: str | os.PathLike[str] | None = None,
    progress: bool = False,
    baselines: list[str] | None = None,
    bootstrap_rounds: int = BOOTSTRAP_ROUNDS,
) -> VariantHeadReport:
    """Fit a head on labelled variants (a `label` column; optional `group` column) with cross-validation.

    `baselines` names numeric columns to compare the head's out-of-fold probability with. With
    `out`, writes the head (head.json + head.safetensors), roc.png (out-of-fold ROC curve),
    cross_validation.tsv (each variant's fold and out-of-fold probability) and metrics.json
    (metrics, their intervals, per-fold metrics, baselines).
    """
    genome = genome if isinstance(genome, Genome) else Genome(genome)
    if not isinstance(variants, VariantList):
        variants = read_variants(variants, genome, aliases)
    labels = _column(list(variants), label, "label")
    if features not in FEATURE_SETS:
        raise InputError(f"features must be one of {', '.join(FEATURE_SETS)}, got {features!r}")
    groups = _column(list(variants), group, "group") if group else None
    baseline_values = {name: _baseline_values(list(variants), name) for name in baselines or []}
    window = default_window(model, tokenizer) if window is None else window  # type: ignore[arg-type]
    matrix, names, scored_variants = variant_features(
        model, tokenizer, variants, genome, window=window, layer=layer, batch_size=batch_size, progress=progress
    )
    if features == "scores":
        matrix, names = matrix[:, : len(FEATURE_SCORES)], names[: len(FEATURE_SCORES)]
    usable = np.isfinite(matrix).all(axis=1)
    used = [variant for variant, ok in zip(scored_variants, usable) if ok]
    skipped = [variant for variant, ok in zip(scored_variants, usable) if not ok]
    if not used:
        raise InputError("no labelled variant could be scored", variants.source)
    labels = [value for value, ok in zip(labels, usable) if ok]
    groups = [value for value, ok in zip(groups, usable) if ok] if groups else None
    baseline_values = {name: values[usable] for name, values in baseline_values.items()}

    cv = cross_validate(
        matrix[usable], labels, groups, kind=kind, folds=folds, seed=seed, bootstrap_rounds=bootstrap_rounds
    )
    head = fit_head(matrix[usable], labels, kind=kind, feature_names=names, seed=seed)
    head.info.update(
        task="variant",
        model_fingerprint=model_fingerprint(model),
        window=window,
        layer=layer,
        label_column=label,
        group_column=group,
        positive=head.classes[-1],
        features=features,
        folds=folds,
        cv_metrics=cv.metrics,
        cv_intervals=cv.intervals,
    )
    positive = np.array(label_indices(labels, cv.classes)) == len(cv.classes) - 1
    compared = compare_scores(positive, cv.probabilities[:, -1], baseline_values, bootstrap_rounds, seed)
    if out is not None:
        out = Path(out)
        head.save(out)
        _write_cv(out, used, labels, groups, cv, compared)
        positive = head.classes[-1]
        title = f"{len(used)} variants, {folds}-fold CV" + (f" grouped by {group}" if group else "")
        truth = label_indices(labels, cv.classes)
        plot_roc(truth, cv.probabilities, cv.classes, out / ROC_PNG, title=f"{positive}: {title}")
    return VariantHeadReport(head, cv, used, skipped, out, compared)


def _write_cv(
    out: Path,
    used: list[Variant],
    labels: list[str],
    groups: list[str] | None,
    cv: CVResult,
    baselines: dict[str, dict[str, Any]],
) -> None:
    positive = cv.classes[-1]
    lines = ["chrom\tpos\tref\talt\tlabel\tgroup\tfold\tprobability_" + positive]
    for index, variant in enumerate(used):
        cells = [variant.chrom, str(to_one_based(variant.pos)), variant.ref, variant.alt, labels[index]]
        cells += [groups[index] if groups else "", str(cv.folds[index]), f"{cv.probabilities[index, -1]:.6g}"]
        lines.append("\t".join(cells))
    with atomic_file(out / CV_TSV) as partial:
        partial.write_text("\n".join(lines) + "\n")
    values = {"metrics": cv.metrics, "intervals": cv.intervals, "fold_metrics": cv.fold_metrics, "classes": cv.classes}
    write_json(out / METRICS_JSON, {**values, "baselines": baselines})
