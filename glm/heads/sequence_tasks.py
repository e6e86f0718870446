"""Fitting and evaluating a sequence classifier on labelled splits, with its reports on disk.

    fit_classifier(train, "out/x", ProbeFitter(FeatureSpec("embedding", "runs/x/model")), dev=dev, test=test)

A fitter makes one classifier from a training split (and a dev split for model selection):
`ProbeFitter` here (a probe on frozen features), or glm.training.finetune's `FinetuneFitter`
(the whole model fine-tuned, through Lightning). `fit_classifier` runs it per cross-validation
fold and once on the whole training set, and writes OUT/head (the classifier, for `classify`),
OUT/metrics.json, predictions, ROC curves and confusion matrices. Every split's AUROC, AUPRC and
MCC come with a 95% bootstrap interval over its sequences (cross-validation also per fold);
`fit_classifier_seeds` repeats the whole fit with several seeds and `seed_spread` summarises them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split

from glm.config import ProbeKind
from glm.errors import InputError
from glm.heads.classifiers import ProbeClassifier, write_predictions
from glm.heads.evaluation import INTERVAL_METRICS, classification_metrics, fold_splits, metric_intervals, with_interval
from glm.heads.features import FeatureCache, FeatureSpec
from glm.heads.probes import encode_labels, fit_head, label_indices
from glm.io.files import write_json
from glm.io.sequences import SequenceSet
from glm.plots import plot_confusion, plot_roc

C_GRID = (0.01, 0.1, 1.0, 10.0)  # logistic-probe regularisation tried on a dev split


class Classifier(Protocol):
    classes: list[str]
    info: dict[str, Any]

    def predict_proba(self, sequences: list[str], progress: bool = False) -> np.ndarray: ...
    def save(self, directory: str | Path) -> None: ...


class Fitter(Protocol):
    """Makes one classifier; called once per cross-validation fold and once for the final classifier."""

    method: str  # what is fitted, for the reports: "logistic probe on embedding", "fine-tuned"
    features: dict[str, Any]  # the feature settings, for metrics.json

    def __call__(self, train: SequenceSet, dev: SequenceSet | None, classes: list[str], name: str) -> Classifier: ...


def check_known_labels(sequences: SequenceSet, classes: list[str], split: str) -> None:
    """Every label of a dev/test set must be a training class; the first stray one is an InputError."""
    assert sequences.labels is not None
    known = set(classes)
    for label, origin in zip(sequences.labels, sequences.origins):
        if label not in known:
            raise InputError(f"{origin}: {split} label {label!r} is not a training class ({', '.join(classes)})")


def report(
    directory: Path, split: str, sequences: SequenceSet, probabilities: np.ndarray, classes: list[str], title: str
) -> dict[str, float]:
    """Metrics of one labelled split (with their bootstrap "intervals"), plus its predictions TSV, ROC curve and
    confusion matrix."""
    assert sequences.labels is not None
    metrics: dict[str, Any] = classification_metrics(sequences.labels, probabilities, classes)
    metrics["intervals"] = metric_intervals(sequences.labels, probabilities, classes)
    write_predictions(directory / f"{split}_predictions.tsv", sequences, probabilities, classes)
    truth = label_indices(sequences.labels, classes)
    plot_roc(truth, probabilities, classes, directory / f"{split}_roc.png", title=f"{title} ({split})")
    predicted = probabilities.argmax(axis=1)
    plot_confusion(truth, predicted, classes, directory / f"{split}_confusion.png", title=f"{title} ({split})")
    return metrics


def metrics_line(metrics: dict[str, Any]) -> str:
    """'accuracy 0.812  MCC 0.62 [0.55, 0.69]  AUROC ...' (95% bootstrap intervals where known)."""
    intervals = metrics.get("intervals", {})
    shown = [with_interval(name, metrics[name], intervals.get(name)) for name in ("mcc", "auroc", "auprc")]
    return "  ".join([f"accuracy {metrics['accuracy']:.3f}", *shown])


def spec_dict(spec: FeatureSpec) -> dict[str, Any]:
    values = asdict(spec)
    if spec.model:
        values["model"] = str(Path(spec.model).resolve())
    return values


def split_off(sequences: SequenceSet, fraction: float, seed: int) -> tuple[SequenceSet, SequenceSet]:
    """(the rest, a stratified held-out `fraction`) of a labelled set; the same for the same seed.

    An InputError names the minimum when the set is too small to give both parts every class.
    """
    assert sequences.labels is not None
    rows = np.arange(len(sequences))
    classes, counts = np.unique(sequences.labels, return_counts=True)
    held, n_classes = math.ceil(fraction * len(rows)), len(classes)
    if counts.min() < 2 or not n_classes <= held <= len(rows) - n_classes:
        need = next(n for n in itertools.count(2 * n_classes) if n_classes <= math.ceil(fraction * n) <= n - n_classes)
        smallest = str(classes[counts.argmin()])
        raise InputError(
            f"too few labelled sequences to hold out {fraction:.0%} of them (stratified) as a dev split: "
            f"{len(rows)} of {n_classes} classes (smallest {smallest!r}: {counts.min()}); that needs at least "
            f"{need} sequences and 2 of each class; give a dev set (--dev) or more sequences"
        )
    rest, held = train_test_split(rows, test_size=fraction, stratify=sequences.labels, random_state=seed)
    return sequences.subset(np.sort(rest)), sequences.subset(np.sort(held))


def fit_classifier(
    train: SequenceSet,
    out: str | Path,
    fitter: Fitter,
    dev: SequenceSet | None = None,
    test: SequenceSet | None = None,
    folds: int = 5,
    seed: int = 0,
    progress: bool = True,
    say: Any = print,
) -> dict[str, Any]:
    """Fit a sequence classifier with `fitter` and evaluate it; write OUT/head (the classifier) and the reports.

    Without a test set the estimate is `folds`-fold cross-validation on train (folds fixed by
    `seed`), and the saved classifier is then fitted on all of train. With dev, the fitter uses
    it for model selection and its metrics are reported. Returns what is written to OUT/metrics.json.
    """
    out = Path(out)
    assert train.labels is not None, "training sequences need labels"
    index, classes = encode_labels(train.labels)
    for split, sequences in (("dev", dev), ("test", test)):
        if sequences is not None:
            check_known_labels(sequences, classes, split)
    title = fitter.method
    results: dict[str, Any] = {"method": title, "classes": classes, "train": len(train), "features": fitter.features}
    out.mkdir(parents=True, exist_ok=True)
    if test is None:
        probabilities = np.zeros((len(train), len(classes)))
        fold_metrics = []
        for fold, (fit_rows, held_rows) in enumerate(fold_splits(index, classes, None, folds, seed)):
            say(f"fold {fold + 1}/{folds}")
            classifier = fitter(train.subset(fit_rows), None, classes, f"fold{fold}")
            probabilities[held_rows] = classifier.predict_proba(train.subset(held_rows).sequences)
            held = train.subset(held_rows)
            fold_metrics.append(classification_metrics(held.labels, probabilities[held_rows], classes))
        results["cv"] = {"folds": folds, **report(out, "cv", train, probabilities, classes, title)}
        results["cv"]["fold_metrics"] = fold_metrics
        say(f"{folds}-fold cross-validation: {metrics_line(results['cv'])}")
        say("AUROC per fold: " + " ".join(f"{fold['auroc']:.3f}" for fold in fold_metrics))
    classifier = fitter(train, dev, classes, "final")
    classifier.save(out / "head")
    for split, sequences in (("dev", dev), ("test", test)):
        if sequences is not None:
            probabilities = classifier.predict_proba(sequences.sequences, progress)
            results[split] = report(out, split, sequences, probabilities, classes, title)
            say(f"{split + ':':<5} {metrics_line(results[split])}")
    results["head_info"] = classifier.info
    write_json(out / "metrics.json", results)
    return results


@dataclass
class SeedRuns:
    """fit_classifier repeated with several seeds: each seed's directory and results, and their spread."""

    runs: dict[int, Path]  # seed -> its output directory
    results: dict[int, dict[str, Any]]  # seed -> what fit_classifier returned
    spread: dict[str, Any] | None  # seed_spread of the results (None for a single seed)


def fit_classifier_seeds(
    train: SequenceSet,
    out: str | Path,
    fitter_for: Callable[[int, Path], Fitter],
    seeds: Sequence[int],
    dev: SequenceSet | None = None,
    test: SequenceSet | None = None,
    folds: int = 5,
    progress: bool = True,
    say: Any = print,
) -> SeedRuns:
    """`fit_classifier` once per seed, with the fitter `fitter_for(seed, run directory)` makes.

    A single seed writes to OUT itself; several write OUT/seed_S each and their `seed_spread` to
    OUT/seeds.json. Fine-tuning is random, so its spread over a few seeds is worth knowing.
    """
    if not seeds:
        raise InputError("seeds: need at least one seed")
    out = Path(out)
    runs = {seed: out / f"seed_{seed}" if len(seeds) > 1 else out for seed in seeds}
    results = {
        seed: fit_classifier(train, run, fitter_for(seed, run), dev, test, folds, seed, progress, say)
        for seed, run in runs.items()
    }
    spread = seed_spread(results) if len(seeds) > 1 else None
    if spread is not None:
        write_json(out / "seeds.json", spread)
    return SeedRuns(runs, results, spread)


def seed_spread(results: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Fits repeated with several seeds ({seed: fit_classifier's results}): for each split and metric, the
    value of each seed, their mean and their standard deviation (ddof 1)."""
    spread: dict[str, Any] = {"seeds": list(results)}
    for split in ("cv", "dev", "test"):
        present = [result[split] for result in results.values() if split in result]
        if present:
            spread[split] = {}
            for name in ("accuracy", *INTERVAL_METRICS):
                values = np.array([metrics[name] for metrics in present], dtype=np.float64)
                sd = float(values.std(ddof=1)) if len(values) > 1 else 0.0
                spread[split][name] = {"per_seed": values.tolist(), "mean": float(values.mean()), "sd": sd}
    return spread


def spread_line(split_spread: dict[str, Any]) -> str:
    """'AUROC 0.812 ± 0.011 (0.80 0.81 0.83)  ...' of one split of seed_spread."""
    return "  ".join(
        f"{name.upper()} {values['mean']:.3f} ± {values['sd']:.3f} ({' '.join(f'{v:.3f}' for v in values['per_seed'])})"
        for name, values in split_spread.items()
        if name in INTERVAL_METRICS
    )


class ProbeFitter:
    """Fits a probe on frozen features under `spec`; every fit shares one feature cache.

    With a dev split, the logistic probe's C is the one of C_GRID with the lowest dev log-loss.
    """

    def __init__(
        self, spec: FeatureSpec, probe: ProbeKind = "logistic", seed: int = 0, progress: bool = True, say: Any = print
    ):
        self.spec, self.probe, self.seed, self.progress, self.say = spec.validate(), probe, seed, progress, say
        self.cache = FeatureCache(self.spec)
        self.method = f"{probe} probe on {spec.kind}"
        self.features = spec_dict(self.spec)

    def __call__(self, train: SequenceSet, dev: SequenceSet | None, classes: list[str], name: str) -> ProbeClassifier:
        train_features = self.cache(train.sequences, self.progress)
        options: dict[str, Any] = {}
        if dev is not None and self.probe == "logistic":
            dev_features = self.cache(dev.sequences, self.progress)
            options["C"] = _pick_c(train_features, train.labels, dev_features, dev.labels, self.seed)
            self.say(f"logistic probe: C = {options['C']} (lowest dev log-loss of {C_GRID})")
        head = fit_head(
            train_features, train.labels, kind=self.probe, feature_names=self.cache.names, seed=self.seed, **options
        )
        head.info["features"] = self.features
        return ProbeClassifier(head, self.cache)


def _pick_c(
    features: np.ndarray, labels: list[str], dev_features: np.ndarray, dev_labels: list[str], seed: int
) -> float:
    """The C of C_GRID whose logistic probe has the lowest log-loss on the dev split."""
    losses = {}
    for c in C_GRID:
        head = fit_head(features, labels, kind="logistic", seed=seed, C=c)
        truth = label_indices(dev_labels, head.classes)
        losses[c] = log_loss(truth, head.predict_proba(dev_features), labels=range(len(head.classes)))
    return min(losses, key=losses.get)
