"""Probes on features (embeddings, k-mer counts, variant scores): fit with scikit-learn, predict in numpy, save.

    head = fit_head(features, labels, kind="logistic")      # standardisation + classifier
    head.predict_proba(new_features)                        # (n, n_classes), columns = head.classes
    head.save("heads/promoter"); Head.load("heads/promoter")

scikit-learn fits the probes; a fitted `Head` keeps only arrays (scaler, coefficients, exported
trees) and predicts with numpy, so a saved head is JSON plus safetensors and never a pickle.
Probes:
  logistic  StandardScaler + LogisticRegression (binary: sigmoid; several classes: softmax)
  boosting  StandardScaler + GradientBoostingClassifier; its regression trees are exported to
            arrays and evaluated here exactly as scikit-learn does (features cast to float32,
            `x <= threshold` goes left).
Labels may be strings or integers; `classes` are their sorted distinct values, as strings.
Cross-validation and metrics live in glm.heads.evaluation; fine-tuning in glm.training.finetune.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
from safetensors.numpy import save_file
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from glm.config import ProbeKind
from glm.errors import InputError, check_choice, choices
from glm.io.files import atomic_directory, read_safetensors, require_files, write_json
from glm.io.schema import Fields

PROBES = choices(ProbeKind)
HEAD_JSON, HEAD_ARRAYS = "head.json", "head.safetensors"
FORMAT_VERSION = 1
DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {
    "logistic": {"C": 1.0, "max_iter": 2000},
    "boosting": {"n_estimators": 100, "learning_rate": 0.1, "max_depth": 3},
}
# The arrays each kind stores, besides the scaler's "mean" and "scale".
_ARRAYS = {
    "logistic": ("coef", "intercept"),
    "boosting": ("children_left", "children_right", "feature", "threshold", "value", "init_raw"),
}


class Head:
    """A fitted probe: standardisation then a classifier, evaluated in numpy."""

    def __init__(
        self,
        kind: ProbeKind,
        classes: list[str],
        feature_names: list[str],
        arrays: dict[str, np.ndarray],
        info: dict[str, Any] | None = None,
    ):
        assert kind in PROBES, kind
        self.kind, self.classes, self.feature_names = kind, list(classes), list(feature_names)
        self.arrays = arrays
        self.info = info or {}

    def __repr__(self) -> str:
        return f"Head({self.kind}, classes={self.classes}, {len(self.feature_names)} features)"

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities (n, n_classes); column j is `classes[j]`."""
        features = check_features(features, n_features=len(self.feature_names))
        scaled = (features - self.arrays["mean"]) / self.arrays["scale"]
        if self.kind == "logistic":
            raw = scaled @ self.arrays["coef"].T + self.arrays["intercept"]  # (n, 1) binary, (n, K) multi-class
        else:
            raw = self._boosting_raw(scaled)
        if raw.shape[1] == 1:
            positive = _sigmoid(raw[:, 0])
            return np.stack([1.0 - positive, positive], axis=1)
        return _softmax(raw)

    def predict(self, features: np.ndarray) -> list[str]:
        """The most probable class of each row."""
        return [self.classes[i] for i in self.predict_proba(features).argmax(axis=1)]

    def _boosting_raw(self, scaled: np.ndarray) -> np.ndarray:
        """Initial raw score plus learning_rate * the sum of each output's trees: (n, K)."""
        return self.info["learning_rate"] * _tree_sums(self.arrays, scaled).T + self.arrays["init_raw"]

    def save(self, directory: str | Path) -> None:
        """Write head.json and head.safetensors to `directory`, atomically. No pickle."""
        meta = {
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "classes": self.classes,
            "feature_names": self.feature_names,
            "info": self.info,
        }
        with atomic_directory(directory) as partial:
            save_file({name: np.ascontiguousarray(array) for name, array in self.arrays.items()}, partial / HEAD_ARRAYS)
            write_json(partial / HEAD_JSON, meta)

    @classmethod
    def load(cls, directory: str | Path, task: str | None = None) -> Head:
        """Read a directory written by `save`; anything missing or inconsistent is an InputError.

        task: "variant" to accept only a variant head (one written by fit-head).
        """
        directory = require_files(directory, (HEAD_JSON, HEAD_ARRAYS), "head directory")
        fields = Fields.read(directory / HEAD_JSON)
        fields.format_version(FORMAT_VERSION)
        info = fields.object("info", {})
        if task is not None and info.values.get("task") != task:
            raise InputError(f"not a {task} head (no task={task} in {HEAD_JSON})", directory / HEAD_JSON)
        if task == "variant":  # what scoring reads of a variant head
            info.integer("window", minimum=1)
            info.integer("layer")
            info.string("model_fingerprint")
        kind = fields.string("kind", choices=PROBES)
        if kind == "boosting":
            info.number("learning_rate")
        classes = fields.strings("classes", at_least=2)
        feature_names = fields.strings("feature_names", at_least=1)
        arrays = read_safetensors(directory / HEAD_ARRAYS, framework="numpy")
        missing = {"mean", "scale", *_ARRAYS[kind]} - set(arrays)
        if missing:
            raise InputError(f"arrays missing: {sorted(missing)}", directory / HEAD_ARRAYS)
        if len(arrays["mean"]) != len(feature_names):
            raise InputError("feature_names do not match the stored scaler", directory / HEAD_JSON)
        return cls(kind, classes, feature_names, arrays, info.values)  # type: ignore[arg-type]


def _tree_sums(arrays: dict[str, np.ndarray], scaled: np.ndarray) -> np.ndarray:
    """Sum over stages of each output's exported regression trees, (K, n), as scikit-learn evaluates them."""
    left, right = arrays["children_left"], arrays["children_right"]  # (trees, nodes)
    feature, threshold, value = arrays["feature"], arrays["threshold"], arrays["value"]
    x = scaled.astype(np.float32).astype(np.float64)  # scikit-learn's trees compare float32 features
    n_trees, n = len(left), len(x)
    trees, rows = np.arange(n_trees)[:, None], np.arange(n)[None, :]
    node = np.zeros((n_trees, n), dtype=np.int64)  # every sample starts at every tree's root
    while True:
        inner = left[trees, node] != -1
        if not inner.any():
            break
        goes_left = x[rows, feature[trees, node].clip(min=0)] <= threshold[trees, node]
        node = np.where(inner, np.where(goes_left, left[trees, node], right[trees, node]), node)
    leaves = value[trees, node]  # (trees, n); trees are stored stage-major: tree = stage * K + k
    n_outputs = len(arrays["init_raw"])
    return leaves.reshape(n_trees // n_outputs, n_outputs, n).sum(axis=0)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _softmax(x: np.ndarray) -> np.ndarray:
    shifted = np.exp(x - x.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def check_features(features: np.ndarray, n_features: int | None = None) -> np.ndarray:
    """A finite float64 matrix (n, d), or an InputError saying what is wrong."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
        raise InputError(f"features: expected a 2-D array (samples, features), got shape {features.shape}")
    if n_features is not None and features.shape[1] != n_features:
        raise InputError(f"features: this head takes {n_features} features, got {features.shape[1]}")
    bad = ~np.isfinite(features)
    if bad.any():
        row, column = np.argwhere(bad)[0]
        raise InputError(f"features: {bad.sum()} non-finite values (NaN or inf), first at row {row}, column {column}")
    return features


def encode_labels(labels: Sequence[Any] | np.ndarray, n_rows: int | None = None) -> tuple[np.ndarray, list[str]]:
    """(class index of each label, sorted class names). Needs at least two classes."""
    values = np.asarray(labels)
    if values.ndim != 1:
        raise InputError(f"labels: expected one label per row, got shape {values.shape}")
    if n_rows is not None and len(values) != n_rows:
        raise InputError(f"labels: {len(values)} labels for {n_rows} rows of features")
    unique, index = np.unique(values, return_inverse=True)  # numeric order for integers
    classes = [str(value) for value in unique]
    if len(classes) < 2:
        found = f"only {classes[0]!r}" if classes else "none"
        raise InputError(f"labels: need at least two classes, found {found}")
    return index.astype(np.int64), classes


def label_indices(labels: Sequence[Any] | np.ndarray, classes: list[str]) -> np.ndarray:
    """Class index of each label in a fixed class list; a label not in it is an InputError."""
    position = {name: i for i, name in enumerate(classes)}
    names = [str(label) for label in np.asarray(labels).tolist()]
    unknown = sorted(set(names) - set(position))
    if unknown:
        raise InputError(f"labels: {unknown} not among the classes {classes}")
    return np.array([position[name] for name in names], dtype=np.int64)


def build_estimator(kind: ProbeKind = "logistic", seed: int = 0, **options: Any) -> Pipeline:
    """The unfitted scikit-learn pipeline behind a probe kind (defaults in DEFAULT_OPTIONS)."""
    check_choice("probe kind", kind, ProbeKind)
    settings = {**DEFAULT_OPTIONS[kind], **options}
    model = LogisticRegression if kind == "logistic" else GradientBoostingClassifier
    try:
        classifier = model(random_state=seed, **settings)
    except TypeError as error:
        raise InputError(f"{kind} probe: {error}") from None
    return make_pipeline(StandardScaler(), classifier)


def head_from_estimator(
    pipeline: Pipeline, kind: ProbeKind, classes: list[str], feature_names: list[str], info: dict[str, Any]
) -> Head:
    """Export a fitted `build_estimator` pipeline to a numpy Head."""
    scaler, classifier = pipeline[0], pipeline[-1]
    arrays = {"mean": scaler.mean_.astype(np.float64), "scale": scaler.scale_.astype(np.float64)}
    if kind == "logistic":
        arrays.update(coef=classifier.coef_.astype(np.float64), intercept=classifier.intercept_.astype(np.float64))
        return Head(kind, classes, feature_names, arrays, info)
    trees = [estimator.tree_ for estimator in classifier.estimators_.ravel()]  # stage-major
    n_nodes = max(tree.node_count for tree in trees)

    def stacked(get: Any, fill: float, dtype: Any) -> np.ndarray:
        table = np.full((len(trees), n_nodes), fill, dtype=dtype)
        for row, tree in enumerate(trees):
            table[row, : tree.node_count] = get(tree)
        return table

    arrays.update(
        children_left=stacked(lambda t: t.children_left, -1, np.int64),
        children_right=stacked(lambda t: t.children_right, -1, np.int64),
        feature=stacked(lambda t: t.feature, -2, np.int64),
        threshold=stacked(lambda t: t.threshold, 0.0, np.float64),
        value=stacked(lambda t: t.value[:, 0, 0], 0.0, np.float64),
    )
    # The initial raw score (log-odds or log-priors) is the same for every row: recover it from one.
    arrays["init_raw"] = np.zeros(classifier.n_trees_per_iteration_)
    zero_row = np.zeros((1, len(scaler.mean_)))
    decision = np.asarray(classifier.decision_function(zero_row), dtype=np.float64).reshape(-1)
    arrays["init_raw"] = decision - classifier.learning_rate * _tree_sums(arrays, zero_row)[:, 0]
    return Head(kind, classes, feature_names, arrays, {**info, "learning_rate": float(classifier.learning_rate)})


def fit_head(
    features: np.ndarray,
    labels: Sequence[Any] | np.ndarray,
    kind: ProbeKind = "logistic",
    feature_names: list[str] | None = None,
    seed: int = 0,
    **options: Any,
) -> Head:
    """Fit a probe (see PROBES) on features (n, d) and labels (n,); options go to the classifier."""
    features = check_features(features)
    index, classes = encode_labels(labels, len(features))
    names = feature_names if feature_names is not None else [f"f{i}" for i in range(features.shape[1])]
    if len(names) != features.shape[1]:
        raise InputError(f"feature_names: {len(names)} names for {features.shape[1]} features")
    pipeline = build_estimator(kind, seed, **options)
    pipeline.fit(features, index)
    info = {
        "n_train": len(index),
        "class_counts": {name: int((index == i).sum()) for i, name in enumerate(classes)},
        "options": {**DEFAULT_OPTIONS[kind], **options},
        "seed": seed,
        "sklearn_version": sklearn.__version__,
    }
    return head_from_estimator(pipeline, kind, classes, list(names), info)
