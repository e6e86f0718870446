"""Figures as PNG files, drawn with matplotlib's object API (no pyplot: no global figure state).

Every plot_ function writes one file atomically and returns nothing; `Figure.savefig` picks the Agg
renderer from the file's suffix, so no backend has to be selected and no window ever opens.
`read_training_curves` is the data of a run's curves.png, read from its logs/version_N/metrics.csv.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn.metrics import auc, confusion_matrix, roc_curve

from glm.errors import InputError
from glm.io.files import atomic_file, open_text

CURVES_PNG = "curves.png"


def _save(figure: Figure, path: str | Path) -> None:
    with atomic_file(path) as partial:
        figure.savefig(partial, dpi=120, bbox_inches="tight", format=Path(path).suffix.lstrip(".") or "png")


def plot_roc(
    truth: np.ndarray, probabilities: np.ndarray, classes: list[str], path: str | Path, title: str = ""
) -> None:
    """ROC curve: one curve (binary, positive = classes[1]) or one-vs-rest per class; AUC in the legend.

    truth: the class index of each row (into `classes`); probabilities: (rows, classes).
    """
    truth = np.asarray(truth)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    figure = Figure(figsize=(4.8, 4.4))
    axes = figure.subplots()
    shown = [1] if len(classes) == 2 else range(len(classes))
    for column in shown:
        positive = truth == column
        if positive.all() or not positive.any():
            continue  # a class absent from (or alone in) the labels has no ROC curve
        false_positive, true_positive, _ = roc_curve(positive, probabilities[:, column])
        name = classes[column] if len(classes) > 2 else f"{classes[1]} vs {classes[0]}"
        axes.plot(false_positive, true_positive, label=f"{name} (AUC {auc(false_positive, true_positive):.3f})")
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    axes.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1.01), title=title)
    axes.legend(loc="lower right", fontsize="small")
    _save(figure, path)


def plot_confusion(
    truth: np.ndarray, predicted: np.ndarray, classes: list[str], path: str | Path, title: str = ""
) -> None:
    """Confusion matrix: rows are true classes, columns predicted classes (both as class indices), cells counts."""
    matrix = confusion_matrix(truth, predicted, labels=range(len(classes)))
    size = 1.2 + 0.7 * len(classes)
    figure = Figure(figsize=(size + 1.0, size))
    axes = figure.subplots()
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes, fraction=0.046)
    for row in range(len(classes)):
        for column in range(len(classes)):
            dark = matrix[row, column] > matrix.max() / 2
            axes.text(
                column, row, str(matrix[row, column]), ha="center", va="center", color="white" if dark else "black"
            )
    ticks = range(len(classes))
    axes.set(xticks=ticks, yticks=ticks, xticklabels=classes, yticklabels=classes, title=title)
    axes.set(xlabel="predicted", ylabel="true")
    _save(figure, path)


def plot_mutagenesis(
    positions: np.ndarray, reference: str, scores: np.ndarray, path: str | Path, title: str = "", label: str = "llr"
) -> None:
    """Saturation mutagenesis heatmap: positions x alternative bases (A, C, G, T), and the per-position minimum.

    positions: 1-based genome positions (n,); reference: the n reference bases; scores: (n, 4) with
    NaN where the alternative equals the reference (drawn blank). Colours are centred on 0 (red
    negative, blue positive); the lower track is the minimum over the three alternatives.
    """
    scores = np.asarray(scores, dtype=np.float64)
    limit = float(np.nanmax(np.abs(scores))) if np.isfinite(scores).any() else 1.0
    width = min(max(6.0, len(positions) / 25), 24.0)
    figure = Figure(figsize=(width, 3.6))
    top, bottom = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    extent = (positions[0] - 0.5, positions[-1] + 0.5, 3.5, -0.5)
    image = top.imshow(
        scores.T, aspect="auto", cmap="RdBu", vmin=-limit, vmax=limit, extent=extent, interpolation="nearest"
    )
    figure.colorbar(image, ax=[top, bottom], fraction=0.03, pad=0.01, label=label)
    top.set(yticks=range(4), yticklabels=list("ACGT"), ylabel="alternative")
    top.set_title(title, pad=14)
    minimum = np.nanmin(np.where(np.isfinite(scores), scores, np.inf), axis=1)
    minimum[~np.isfinite(minimum)] = np.nan
    bottom.plot(positions, minimum, color="black", linewidth=0.8)
    bottom.axhline(0, color="grey", linewidth=0.5, linestyle=":")
    bottom.set(xlabel="position", ylabel=f"min {label}")
    bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    if len(positions) <= 150:  # few enough to write each reference base above its column
        bases = top.secondary_xaxis("top")
        bases.set_xticks(positions, list(reference))
        bases.tick_params(labelsize=5 if len(positions) > 80 else 7, length=0)
    _save(figure, path)


@dataclass
class Curve:
    """One plotted line: x (units seen, or steps for runs logged before units were) and y."""

    x: np.ndarray
    y: np.ndarray


@dataclass
class TrainingCurves:
    """What curves.png shows: train and validation bits per unit and the learning rate, against units seen."""

    unit: str  # base, char, byte or sequence
    x_label: str
    train: Curve
    val: Curve
    lr: Curve


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None  # a line cut short while the run is writing it


def _metrics_rows(run_dir: Path) -> list[dict[str, str]]:
    """The rows of every logs/version_N/metrics.csv in N order; after a resume, the later version's rows
    replace the earlier ones from its first step on."""
    files = sorted(run_dir.glob("logs/version_*/metrics.csv"), key=lambda p: int(p.parent.name.split("_")[-1]))
    if not files:
        raise InputError("no logs/version_N/metrics.csv here: not a glm run directory, or no step logged yet", run_dir)
    rows: list[dict[str, str]] = []
    for path in files:
        with open_text(path) as handle:
            version = [
                row for row in _checked_rows(csv.DictReader(handle), path) if _number(row.get("step")) is not None
            ]
        if version:
            first = min(float(row["step"]) for row in version)
            rows = [row for row in rows if float(row["step"]) < first] + version
    return rows


def _checked_rows(reader: csv.DictReader, path: Path) -> Iterator[dict[str, str]]:
    """The rows of a metrics.csv; a row with more cells than the header names is an InputError naming its line."""
    for row in reader:
        if None in row:
            found = len(reader.fieldnames or []) + len(row[None])  # type: ignore[index]
            raise InputError(
                f"expected {len(reader.fieldnames or [])} comma-separated cells, found {found}", path, reader.line_num
            )
        yield row


def read_training_curves(run_dir: str | Path) -> TrainingCurves:
    """The curves of a run (pretraining or fine-tuning) from RUN/logs/version_N/metrics.csv, also mid-run.

    x is `train/<unit>s_seen` (logged by glm.training.lit); the validation points carry their own
    `val/<unit>s_seen` and the learning rate (logged at the training steps) takes the x of its step.
    """
    run_dir = Path(run_dir)
    rows = _metrics_rows(run_dir)
    columns = {key for row in rows for key in row}
    units = sorted(m.group(1) for key in columns if (m := re.fullmatch(r"train/bits_per_(\w+)", key)))
    if not units:
        raise InputError("metrics.csv has no train/bits_per_* column yet", run_dir)
    unit = units[0]
    lr_column = min((key for key in columns if key.startswith("lr-")), default=None)
    seen = f"{unit}s_seen"
    logged_seen = f"train/{seen}" in columns

    def points(y_key: str, x_key: str) -> list[tuple[float, float, float]]:
        """(step, x, y) of the rows holding y_key; x from x_key, or the step number without one."""
        found = []
        for row in rows:
            step, y = _number(row.get("step")), _number(row.get(y_key))
            if y is None:
                continue
            x = _number(row.get(x_key)) if logged_seen else step + 1
            found.append((step, x, y))
        return found

    def curve(found: list[tuple[float, float | None, float]]) -> Curve:
        kept = [(x, y) for _, x, y in found if x is not None]
        return Curve(np.array([x for x, _ in kept], dtype=np.float64), np.array([y for _, y in kept]))

    train = points(f"train/bits_per_{unit}", f"train/{seen}")
    val = points(f"val/bits_per_{unit}", f"val/{seen}")
    lr = points(lr_column, "") if lr_column else []
    if logged_seen and lr:  # the learning rate takes the x of the training row logged at its step
        x_of_step = {step: x for step, x, _ in train}
        lr = [(step, x_of_step.get(step), y) for step, _, y in lr]
    label = f"{unit}s seen" if logged_seen else "optimizer steps"
    return TrainingCurves(unit, label, curve(train), curve(val), curve(lr))


def plot_training_curves(curves: TrainingCurves, path: str | Path, title: str = "") -> None:
    """Train and validation bits per unit (top) and the learning rate (below) against units seen."""
    figure = Figure(figsize=(6.4, 5.0))
    top, bottom = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.plot(curves.train.x, curves.train.y, label="train", linewidth=1.0)
    if len(curves.val.x):
        top.plot(curves.val.x, curves.val.y, "o-", label="validation", markersize=3)
    top.set(ylabel=f"bits per {curves.unit}", title=title)
    top.grid(alpha=0.3)
    top.legend(loc="upper right", fontsize="small")
    bottom.plot(curves.lr.x, curves.lr.y, color="grey", linewidth=1.0)
    bottom.set(xlabel=curves.x_label, ylabel="learning rate")
    bottom.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
    _save(figure, path)
