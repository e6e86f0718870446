"""Probes on features: numpy heads equal scikit-learn, round trips, grouped CV, metrics, errors, plots."""

from __future__ import annotations

import numpy as np
import pytest

from glm.errors import InputError
from glm.heads.evaluation import classification_metrics, cross_validate
from glm.heads.probes import PROBES, Head, build_estimator, encode_labels, fit_head, label_indices
from glm.plots import plot_confusion, plot_roc


def planted(n: int = 300, n_classes: int = 2, d: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian features whose first two dimensions carry the class (a shifted mean per class)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n)
    features = rng.normal(size=(n, d))
    features[:, 0] += 3.0 * np.cos(2 * np.pi * labels / n_classes)
    features[:, 1] += 3.0 * np.sin(2 * np.pi * labels / n_classes)
    return features, labels


@pytest.mark.parametrize("kind", PROBES)
@pytest.mark.parametrize("n_classes", [2, 3])
def test_numpy_head_equals_sklearn(kind: str, n_classes: int) -> None:
    features, labels = planted(n=200, n_classes=n_classes)
    options = {"n_estimators": 20} if kind == "boosting" else {}
    head = fit_head(features, labels, kind=kind, seed=3, **options)
    reference = build_estimator(kind, seed=3, **options).fit(features, labels)
    new = np.random.default_rng(9).normal(size=(50, features.shape[1])) * 2
    np.testing.assert_allclose(head.predict_proba(new), reference.predict_proba(new), rtol=0, atol=1e-9)
    np.testing.assert_allclose(head.predict_proba(features), reference.predict_proba(features), rtol=0, atol=1e-9)


@pytest.mark.parametrize("kind", PROBES)
def test_saved_head_reloads_to_identical_probabilities(tmp_path, kind: str) -> None:
    features, labels = planted(n=150, n_classes=3)
    names = np.array(["exon", "intron", "intergenic"])[labels]
    options = {"n_estimators": 10} if kind == "boosting" else {}
    head = fit_head(features, names, kind=kind, feature_names=[f"dim{i}" for i in range(8)], **options)
    head.save(tmp_path / "head")
    assert sorted(p.name for p in (tmp_path / "head").iterdir()) == ["head.json", "head.safetensors"]
    loaded = Head.load(tmp_path / "head")
    assert loaded.classes == ["exon", "intergenic", "intron"]  # sorted
    assert loaded.feature_names == head.feature_names and loaded.kind == kind
    np.testing.assert_array_equal(loaded.predict_proba(features), head.predict_proba(features))
    assert loaded.predict(features[:5]) == head.predict(features[:5])


def test_integer_labels_sort_numerically() -> None:
    index, classes = encode_labels([10, 2, 2, 10, 1])
    assert classes == ["1", "2", "10"] and index.tolist() == [2, 1, 1, 2, 0]


def test_planted_signal_is_found_and_shuffled_labels_are_not() -> None:
    features, labels = planted(n=400)
    found = cross_validate(features, labels, folds=5)
    assert found.metrics["auroc"] > 0.97 and found.metrics["accuracy"] > 0.9
    shuffled = cross_validate(features, np.random.default_rng(1).permutation(labels), folds=5)
    assert abs(shuffled.metrics["auroc"] - 0.5) < 0.1 and abs(shuffled.metrics["mcc"]) < 0.15
    assert found.probabilities.shape == (400, 2) and np.allclose(found.probabilities.sum(axis=1), 1.0)
    assert sorted(set(found.folds.tolist())) == [0, 1, 2, 3, 4] and len(found.fold_metrics) == 5


def test_multiclass_cross_validation_and_boosting() -> None:
    features, labels = planted(n=300, n_classes=3)
    result = cross_validate(features, labels, kind="boosting", folds=3, n_estimators=30)
    assert result.classes == ["0", "1", "2"] and result.metrics["auroc"] > 0.95


def test_grouped_folds_never_split_a_group() -> None:
    features, labels = planted(n=240)
    groups = np.arange(240) // 4  # 60 groups of 4 rows, e.g. 4 variants of one gene
    result = cross_validate(features, labels, groups=groups, folds=4)
    for group in np.unique(groups):
        assert len(set(result.folds[groups == group].tolist())) == 1  # tested in one fold, trained in the others
    # Leaky features (a group identity that fixes the label) score well only when groups are ignored.
    group_labels = (groups % 2).astype(int)
    leaky = np.eye(60)[groups]
    ungrouped = cross_validate(leaky, group_labels, folds=4)
    grouped = cross_validate(leaky, group_labels, groups=groups, folds=4)
    assert ungrouped.metrics["auroc"] > 0.95 and grouped.metrics["auroc"] < 0.75


def test_metrics_on_known_predictions() -> None:
    classes = ["neg", "pos"]
    labels = ["neg", "neg", "pos", "pos"]
    perfect = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.1, 0.9]])
    metrics = classification_metrics(labels, perfect, classes)
    assert metrics == {"accuracy": 1.0, "mcc": 1.0, "auroc": 1.0, "auprc": 1.0}
    inverted = classification_metrics(labels, perfect[:, ::-1], classes)
    assert inverted["auroc"] == 0.0 and inverted["mcc"] == -1.0
    three = classification_metrics([0, 1, 2], np.eye(3), ["0", "1", "2"])
    assert three["auroc"] == 1.0 and three["accuracy"] == 1.0


@pytest.mark.parametrize(
    ("features", "labels", "message"),
    [
        (np.ones((6, 2)), [1] * 6, "at least two classes, found only '1'"),
        (np.array([[0.0, np.nan]] * 6), [0, 1] * 3, "non-finite values"),
        (np.ones((6, 2)), [0, 1] * 2, "4 labels for 6 rows"),
        (np.ones(6), [0, 1] * 3, "expected a 2-D array"),
    ],
)
def test_bad_input_is_a_clear_error(features, labels, message: str) -> None:
    with pytest.raises(InputError, match=message):
        fit_head(features, labels)


def test_cross_validation_errors() -> None:
    features, labels = planted(n=50)
    labels[:] = 0
    labels[:3] = 1
    with pytest.raises(InputError, match="class '1' has 3 members, fewer than the 5 folds"):
        cross_validate(features, labels, folds=5)
    with pytest.raises(InputError, match="2 distinct groups, fewer than the 3 folds"):
        cross_validate(*planted(n=30), groups=[0, 1] * 15, folds=3)
    with pytest.raises(InputError, match="probe kind must be one of"):
        fit_head(*planted(n=30), kind="forest")
    with pytest.raises(InputError, match="this head takes 8 features, got 3"):
        fit_head(*planted(n=30)).predict_proba(np.ones((2, 3)))
    with pytest.raises(InputError, match=r"\['maybe'\] not among the classes"):
        classification_metrics(["yes", "maybe"], np.ones((2, 2)) / 2, ["no", "yes"])


def test_load_rejects_a_directory_that_is_not_a_head(tmp_path) -> None:
    with pytest.raises(InputError, match=r"head.json is missing"):
        Head.load(tmp_path)


def test_plots_write_png_files_without_pyplot_state(tmp_path) -> None:
    import matplotlib.pyplot as plt

    open_before = plt.get_fignums()
    features, labels = planted(n=120, n_classes=3)
    head = fit_head(features, labels)
    truth = label_indices(labels, head.classes)
    plot_roc(truth, head.predict_proba(features), head.classes, tmp_path / "roc.png", title="three classes")
    plot_confusion(truth, label_indices(head.predict(features), head.classes), head.classes, tmp_path / "confusion.png")
    for name in ("roc.png", "confusion.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plt.get_fignums() == open_before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["confusion.png", "roc.png"]  # no partial files left
