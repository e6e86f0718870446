"""Bootstrap intervals (glm.heads.evaluation): seeded, around the estimate, narrower with more rows, exact cases."""

from __future__ import annotations

import numpy as np
import pytest

from glm.heads.evaluation import (
    classification_metrics,
    cross_validate,
    metric_intervals,
    paired_difference,
    percentile_interval,
    score_metrics,
)


def noisy_task(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Binary labels and probabilities that separate them partly (AUROC about 0.8)."""
    draw = np.random.default_rng(seed)
    truth = np.arange(n) % 2
    score = 1 / (1 + np.exp(-(truth * 1.2 + draw.normal(size=n))))
    return truth.astype(str), np.column_stack([1 - score, score])


def test_intervals_contain_the_estimate_narrow_with_more_rows_and_repeat_with_the_seed() -> None:
    widths = []
    for n in (100, 1600):
        labels, probabilities = noisy_task(n)
        metrics = classification_metrics(labels, probabilities, ["0", "1"])
        intervals = metric_intervals(labels, probabilities, ["0", "1"], rounds=300, seed=1)
        for name in ("auroc", "auprc", "mcc"):
            low, high = intervals[name]
            assert low < metrics[name] < high
        widths.append(intervals["auroc"][1] - intervals["auroc"][0])
        assert metric_intervals(labels, probabilities, ["0", "1"], rounds=300, seed=1) == intervals
        assert metric_intervals(labels, probabilities, ["0", "1"], rounds=300, seed=2) != intervals
    assert widths[1] < widths[0] / 2.5  # about 1/sqrt(16) = 1/4 as wide with 16 times the rows


def test_perfect_separation_has_auroc_1_with_interval_1_1() -> None:
    truth = np.array(["no"] * 30 + ["yes"] * 30)
    probabilities = np.column_stack(
        [np.r_[np.full(30, 0.9), np.full(30, 0.2)], np.r_[np.full(30, 0.1), np.full(30, 0.8)]]
    )
    intervals = metric_intervals(truth, probabilities, ["no", "yes"], rounds=200)
    assert intervals == {"auroc": [1.0, 1.0], "auprc": [1.0, 1.0], "mcc": [1.0, 1.0]}
    assert score_metrics(truth == "yes", probabilities[:, 1], rounds=200)["intervals"]["auroc"] == [1.0, 1.0]


def test_the_paired_difference_of_a_score_with_itself_is_exactly_0_and_of_a_better_one_positive() -> None:
    labels, probabilities = noisy_task(400)
    positive, score = labels == "1", probabilities[:, 1]
    assert paired_difference(positive, score, score, rounds=200) == {"auroc": [0.0, 0.0, 0.0], "auprc": [0.0, 0.0, 0.0]}
    noise = np.random.default_rng(7).normal(size=len(score))
    difference, low, high = paired_difference(positive, score, noise, rounds=200)["auroc"]
    assert 0 < low < difference < high


def test_cross_validation_reports_intervals_and_per_fold_metrics_when_asked() -> None:
    draw = np.random.default_rng(0)
    labels = np.arange(200) % 2
    features = labels[:, None] + draw.normal(size=(200, 3))
    result = cross_validate(features, labels, folds=4, bootstrap_rounds=200)
    low, high = result.intervals["auroc"]
    assert low < result.metrics["auroc"] < high and len(result.fold_metrics) == 4
    assert cross_validate(features, labels, folds=4).intervals == {}


def test_an_undefined_metric_is_left_out_of_its_interval() -> None:
    assert percentile_interval([np.nan, 0.5, 0.7, np.nan]) == pytest.approx([0.505, 0.695])
    assert np.isnan(percentile_interval([np.nan, np.nan])).all()


def test_numpy_ranking_metrics_equal_scikit_learn_with_ties() -> None:
    """The bootstrap's numpy AUROC, average precision and MCC are scikit-learn's numbers."""
    from sklearn.metrics import average_precision_score, matthews_corrcoef, roc_auc_score

    from glm.heads.evaluation import binary_ranking, classification_metrics

    rng = np.random.default_rng(0)
    for _ in range(100):
        n = int(rng.integers(5, 300))
        positive = rng.random(n) < 0.4
        positive[:2] = [True, False]
        score = np.round(rng.random(n) + positive * rng.random(n), int(rng.integers(1, 4)))  # many ties
        found = binary_ranking(positive, score)
        assert found["auroc"] == pytest.approx(roc_auc_score(positive, score), abs=1e-12)
        assert found["auprc"] == pytest.approx(average_precision_score(positive, score), abs=1e-12)
        probabilities = np.c_[1 - score / 2, score / 2]
        metrics = classification_metrics(positive.astype(int), probabilities, ["0", "1"])
        assert metrics["mcc"] == pytest.approx(matthews_corrcoef(positive, probabilities.argmax(1)), abs=1e-12)
