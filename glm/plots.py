"""Figures as PNG files, drawn with matplotlib's object API (no pyplot: no global figure state).

Every function writes one file atomically and returns nothing; `Figure.savefig` picks the Agg
renderer from the file's suffix, so no backend has to be selected and no window ever opens.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn.metrics import auc, confusion_matrix, roc_curve

from glm.io.files import atomic_file


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
