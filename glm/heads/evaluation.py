"""Evaluating probes: metrics with bootstrap intervals, (grouped) stratified folds, cross-validation,
and a probe per layer.

result = cross_validate(features, labels, groups=genes, folds=5)
result.metrics                                          # auroc, auprc, accuracy, mcc
metric_intervals(labels, result.probabilities, classes) # {"auroc": [low, high], ...}, 95%, seeded

The bootstrap resamples rows with replacement (BOOTSTRAP_ROUNDS times, from a seeded generator,
so the same call gives the same interval) and takes the percentile interval; resamples in which
a metric is undefined (one class only) are left out of that metric's interval.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, matthews_corrcoef, roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from glm.config import ProbeKind
from glm.errors import InputError, check_choice
from glm.heads.probes import check_features, encode_labels, fit_head, label_indices
from glm.heads.settings import BOOTSTRAP_ROUNDS


@dataclass
class CVResult:
    """Out-of-fold predictions of a cross-validation and the metrics computed from them."""

    probabilities: np.ndarray  # out-of-fold class probabilities, (n, n_classes)
    folds: np.ndarray  # fold index of each row (int)
    classes: list[str]
    metrics: dict[str, float]  # auroc, auprc, accuracy, mcc (see classification_metrics)
    fold_metrics: list[dict[str, float]] = field(default_factory=list)  # the same, per fold
    intervals: dict[str, list[float]] = field(default_factory=dict)  # bootstrap [low, high] of auroc, auprc, mcc


def classification_metrics(
    labels: Sequence[Any] | np.ndarray, probabilities: np.ndarray, classes: list[str]
) -> dict[str, float]:
    """auroc, auprc, accuracy and mcc of class probabilities (n, n_classes) against labels.

    Binary: the positive class is classes[1]. Several classes: AUROC and AUPRC are macro
    averages of one-vs-rest scores. A class absent from `labels` makes AUROC/AUPRC NaN.
    """
    truth = label_indices(labels, classes)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.shape != (len(truth), len(classes)):
        raise InputError(f"probabilities: expected shape {(len(truth), len(classes))}, got {probabilities.shape}")
    return _index_metrics(truth, probabilities, len(classes))


def _index_metrics(truth: np.ndarray, probabilities: np.ndarray, n_classes: int) -> dict[str, float]:
    """classification_metrics of class indices (n,) against probabilities (n, n_classes)."""
    predicted = probabilities.argmax(axis=1)
    metrics = {
        "accuracy": float(np.mean(truth == predicted)),
        "mcc": _binary_mcc(truth, predicted) if n_classes == 2 else float(matthews_corrcoef(truth, predicted)),
        "auroc": float("nan"),
        "auprc": float("nan"),
    }
    if len(np.unique(truth)) == n_classes:
        if n_classes == 2:
            metrics.update(binary_ranking(truth == 1, probabilities[:, 1]))
        else:
            one_hot = np.eye(n_classes)[truth]
            metrics["auroc"] = float(roc_auc_score(one_hot, probabilities, average="macro"))
            metrics["auprc"] = float(average_precision_score(one_hot, probabilities, average="macro"))
    return metrics


def binary_ranking(positive: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """AUROC (ties count one half) and average precision (scikit-learn's step definition) in numpy.

    The same numbers as roc_auc_score and average_precision_score, without their per-call checks:
    the bootstrap computes them a thousand times.
    """
    positive = np.asarray(positive, dtype=bool)
    score = np.asarray(score, dtype=np.float64)
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    order = np.argsort(-score, kind="mergesort")
    ranked, hits = score[order], positive[order]
    last_of_tie = np.flatnonzero(np.r_[ranked[1:] != ranked[:-1], True])  # one point per distinct score
    true_pos = np.cumsum(hits)[last_of_tie]
    false_pos = (last_of_tie + 1) - true_pos
    recall = true_pos / n_pos
    precision = true_pos / (last_of_tie + 1)
    average_precision = float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
    # AUROC: the trapezoid under (false positive rate, true positive rate), ties as diagonal steps.
    fpr, tpr = np.r_[0.0, false_pos / n_neg], np.r_[0.0, recall]
    auroc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    return {"auroc": auroc, "auprc": average_precision}


def _binary_mcc(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Matthews correlation of two-class predictions (0 when a margin is empty, as scikit-learn)."""
    tp = float(np.sum((truth == 1) & (predicted == 1)))
    tn = float(np.sum((truth == 0) & (predicted == 0)))
    fp = float(np.sum((truth == 0) & (predicted == 1)))
    fn = float(np.sum((truth == 1) & (predicted == 0)))
    denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return float((tp * tn - fp * fn) / denominator) if denominator else 0.0


INTERVAL_METRICS = ("auroc", "auprc", "mcc")


def bootstrap_rows(n: int, rounds: int = BOOTSTRAP_ROUNDS, seed: int = 0) -> Iterator[np.ndarray]:
    """`rounds` resamples of row indices 0..n-1 with replacement; the same for the same seed."""
    generator = np.random.default_rng(seed)
    for _ in range(rounds):
        yield generator.integers(0, n, size=n)


def percentile_interval(draws: Sequence[float] | np.ndarray, level: float = 0.95) -> list[float]:
    """[low, high]: the central `level` share of the finite bootstrap draws (NaN, NaN when none are)."""
    draws = np.asarray(draws, dtype=np.float64)
    draws = draws[np.isfinite(draws)]
    if not len(draws):
        return [float("nan"), float("nan")]
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return [float(low), float(high)]


def _bootstrap(
    statistic: Callable[[np.ndarray], dict[str, float]], n: int, rounds: int, seed: int, level: float
) -> dict[str, list[float]]:
    """{name: [low, high]} of each value `statistic(rows)` returns, over bootstrap resamples of n rows."""
    draws: dict[str, list[float]] = {}
    for rows in bootstrap_rows(n, rounds, seed):
        for name, value in statistic(rows).items():
            draws.setdefault(name, []).append(value)
    return {name: percentile_interval(values, level) for name, values in draws.items()}


def metric_intervals(
    labels: Sequence[Any] | np.ndarray,
    probabilities: np.ndarray,
    classes: list[str],
    rounds: int = BOOTSTRAP_ROUNDS,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, list[float]]:
    """Bootstrap intervals [low, high] of AUROC, AUPRC and MCC (see classification_metrics) over the rows."""
    truth = label_indices(labels, classes)
    probabilities = np.asarray(probabilities, dtype=np.float64)

    def statistic(rows: np.ndarray) -> dict[str, float]:
        metrics = _index_metrics(truth[rows], probabilities[rows], len(classes))
        return {name: metrics[name] for name in INTERVAL_METRICS}

    return _bootstrap(statistic, len(truth), rounds, seed, level)


def ranking_metrics(positive: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """AUROC and AUPRC of a score where higher means the positive class (NaN without both classes)."""
    positive = np.asarray(positive, dtype=bool)
    if positive.all() or not positive.any():
        return {"auroc": float("nan"), "auprc": float("nan")}
    return binary_ranking(positive, score)


def score_metrics(
    positive: np.ndarray, score: np.ndarray, rounds: int = BOOTSTRAP_ROUNDS, seed: int = 0, level: float = 0.95
) -> dict[str, Any]:
    """ranking_metrics of a score and their bootstrap intervals: {"auroc", "auprc", "intervals": {name: [lo, hi]}}."""
    positive, score = np.asarray(positive, dtype=bool), np.asarray(score, dtype=np.float64)
    intervals = _bootstrap(lambda rows: ranking_metrics(positive[rows], score[rows]), len(score), rounds, seed, level)
    return {**ranking_metrics(positive, score), "intervals": intervals}


def compare_scores(
    positive: np.ndarray,
    score: np.ndarray,
    baselines: dict[str, np.ndarray],
    rounds: int = BOOTSTRAP_ROUNDS,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """`score` against each baseline score, on the rows where that baseline has a value.

    {name: {"rows", "score": score_metrics of `score`, "baseline": score_metrics of the baseline,
    "difference": paired_difference(score - baseline)}}, all on the same rows.
    """
    compared = {}
    for name, values in baselines.items():
        rows = np.isfinite(values)
        truth, ours, theirs = np.asarray(positive, dtype=bool)[rows], np.asarray(score)[rows], values[rows]
        compared[name] = {
            "rows": int(rows.sum()),
            "score": score_metrics(truth, ours, rounds, seed),
            "baseline": score_metrics(truth, theirs, rounds, seed),
            "difference": paired_difference(truth, ours, theirs, rounds, seed),
        }
    return compared


def paired_difference(
    positive: np.ndarray,
    first: np.ndarray,
    second: np.ndarray,
    rounds: int = BOOTSTRAP_ROUNDS,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, list[float]]:
    """AUROC and AUPRC of score `first` minus those of `second` on the same rows: {name: [difference, low, high]}.

    Each bootstrap round resamples the rows once and scores both on that resample, so the interval
    is of the paired difference (a score compared with itself gives exactly 0).
    """
    positive, first, second = np.asarray(positive, dtype=bool), np.asarray(first), np.asarray(second)

    def statistic(rows: np.ndarray) -> dict[str, float]:
        a, b = ranking_metrics(positive[rows], first[rows]), ranking_metrics(positive[rows], second[rows])
        return {name: a[name] - b[name] for name in a}

    whole = statistic(np.arange(len(positive)))
    intervals = _bootstrap(statistic, len(positive), rounds, seed, level)
    return {name: [whole[name], *intervals[name]] for name in whole}


def with_interval(name: str, value: float, interval: Sequence[float] | None) -> str:
    """'AUROC 0.912 [0.881, 0.940]' (the value alone without an interval)."""
    text = f"{name.upper()} {value:.3f}"
    return f"{text} [{interval[0]:.3f}, {interval[1]:.3f}]" if interval is not None else text


def check_folds(index: np.ndarray, classes: list[str], groups: Sequence[Any] | np.ndarray | None, folds: int) -> None:
    """An InputError when fewer than 2 folds, or a class has fewer members (or there are fewer groups) than folds.

    Each check fails on any subset of rows where it fails on all: a caller that drops rows later
    (variants that cannot be scored) can check all of them first.
    """
    if folds < 2:
        raise InputError(f"folds: need at least 2, got {folds}")
    counts = np.bincount(index, minlength=len(classes))
    if counts.min() < folds:
        small = classes[int(counts.argmin())]
        raise InputError(f"labels: class {small!r} has {counts.min()} members, fewer than the {folds} folds")
    if groups is not None:
        if len(groups) != len(index):
            raise InputError(f"groups: {len(groups)} groups for {len(index)} rows")
        n_groups = len(np.unique(np.asarray(groups)))
        if n_groups < folds:
            raise InputError(f"groups: {n_groups} distinct groups, fewer than the {folds} folds")


def fold_splits(
    index: np.ndarray, classes: list[str], groups: Sequence[Any] | np.ndarray | None, folds: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train rows, test rows) of each fold: stratified by class, and by group when groups are given.

    Raises InputError when the folds cannot be made: those of check_folds, or a fold whose
    training part lacks a class.
    """
    check_folds(index, classes, groups, folds)
    if groups is None:
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        splits = list(splitter.split(np.zeros(len(index)), index))
    else:
        group_values = np.asarray(groups)
        splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
        splits = list(splitter.split(np.zeros(len(index)), index, group_values))
    for fold, (train, _) in enumerate(splits):
        missing = sorted(set(range(len(classes))) - set(index[train].tolist()))
        if missing:
            raise InputError(
                f"groups: fold {fold} has no training rows of class {classes[missing[0]]!r} "
                "(its rows sit in too few groups for this many folds)"
            )
    return splits


def cross_validate(
    features: np.ndarray,
    labels: Sequence[Any] | np.ndarray,
    groups: Sequence[Any] | np.ndarray | None = None,
    kind: ProbeKind = "logistic",
    folds: int = 5,
    seed: int = 0,
    bootstrap_rounds: int = 0,
    **options: Any,
) -> CVResult:
    """Stratified k-fold cross-validation of a probe; out-of-fold probabilities and their metrics.

    With `groups`, folds are StratifiedGroupKFold: all rows of a group (a gene, a locus, a
    family of homologs) fall in the same test fold, so no group is in both train and test.
    With `bootstrap_rounds`, the metrics also get bootstrap intervals over the rows (seeded by `seed`).
    """
    features = check_features(features)
    index, classes = encode_labels(labels, len(features))
    splits = fold_splits(index, classes, groups, folds, seed)
    probabilities = np.zeros((len(features), len(classes)))
    fold_of = np.full(len(features), -1, dtype=np.int64)
    fold_metrics = []
    by_index = [str(i) for i in range(len(classes))]  # the folds' heads see class indices as labels
    for fold, (train, test) in enumerate(splits):
        head = fit_head(features[train], index[train], kind=kind, seed=seed, **options)
        probabilities[test] = head.predict_proba(features[test])
        fold_of[test] = fold
        fold_metrics.append(classification_metrics(index[test], probabilities[test], by_index))
    assert (fold_of >= 0).all(), "every row is tested exactly once"
    metrics = classification_metrics(index, probabilities, by_index)
    intervals = metric_intervals(index, probabilities, by_index, bootstrap_rounds, seed) if bootstrap_rounds else {}
    return CVResult(probabilities, fold_of, classes, metrics, fold_metrics, intervals)


@dataclass
class LayerScore:
    layer: int
    metrics: dict[str, float]  # cross-validated, see classification_metrics


def compare_layers(
    lm: Any,
    sequences: Sequence[str],
    labels: Sequence[Any] | np.ndarray,
    layers: Sequence[int] | None = None,
    pooling: str = "mean",
    strands: str = "both",
    kind: ProbeKind = "logistic",
    folds: int = 5,
    seed: int = 0,
    groups: Sequence[Any] | np.ndarray | None = None,
    progress: bool = False,
) -> list[LayerScore]:
    """Cross-validated probe metrics of each layer's pooled embeddings, to pick the layer to use.

    `lm` is a glm.GenomicLM; layers default to all of them (0 = token embeddings, n = the final
    normed layer). Returns one LayerScore per layer, in layer order.
    """
    layers = list(range(lm.model.config.n_layers + 1)) if layers is None else list(layers)
    # Every argument checked before the first embedding runs (and shows its progress bar).
    for layer in layers:
        lm.model.check_layer(layer)
    check_choice("probe kind", kind, ProbeKind)
    index, classes = encode_labels(labels, len(sequences))
    fold_splits(index, classes, groups, folds, seed)
    scores = []
    for layer in layers:
        features = lm.embed(sequences, layer=layer, pooling=pooling, strands=strands, progress=progress)
        result = cross_validate(features, labels, groups=groups, kind=kind, folds=folds, seed=seed)
        scores.append(LayerScore(layer, result.metrics))
    return scores


def layer_table(scores: list[LayerScore]) -> str:
    """`compare_layers` results as an aligned text table, the best AUROC marked."""
    lines = [f"{'layer':>5}  {'auroc':>6}  {'auprc':>6}  {'accuracy':>8}  {'mcc':>6}"]
    best = max(scores, key=lambda score: score.metrics["auroc"])
    for score in scores:
        m = score.metrics
        mark = "  <- best" if score is best else ""
        lines.append(
            f"{score.layer:>5}  {m['auroc']:6.4f}  {m['auprc']:6.4f}  {m['accuracy']:8.4f}  {m['mcc']:6.4f}{mark}"
        )
    return "\n".join(lines)
