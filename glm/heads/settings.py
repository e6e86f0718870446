"""Settings of the heads' fitting functions, each field declared once with its help and bounds.

Kept apart from the fitting code so that the command line reads them (glm.arguments turns the
`option` fields into options) without importing scikit-learn.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass

from glm.config import ProbeKind, VariantFeatures
from glm.fields import check_fields, option

BOOTSTRAP_ROUNDS = 1000  # resamples behind every 95% interval (glm.heads.evaluation)


@dataclass(frozen=True)
class VariantHeadSettings:
    """What a variant head learns from labelled variants, and how it is cross-validated."""

    label: str = option(MISSING, "column holding each variant's class")  # MISSING: required
    group: str | None = option(None, "column of groups (gene, exon, block) kept whole within a test fold")
    kind: ProbeKind = option("logistic", "probe")
    features: VariantFeatures = option(
        "all", "all: the five scores and the embedding delta; scores: the five scores only (few labels)"
    )
    folds: int = option(5, "cross-validation folds", bounds="[2, inf)")
    seed: int = option(0, "fold assignment, probe and bootstrap seed", bounds="[0, inf)")
    baselines: list[str] | None = option(
        None,
        "numeric column to compare with on the same variants, higher = positive class (e.g. CADD; "
        "--baseline=-COL when lower is; repeatable)",
        flag="baseline",
    )
    # How the features are computed; the command line sets these through options it shares with `score`.
    window: int | None = option(
        None, "bases per scoring window (None: the model's context)", cli=False, bounds="[1, inf)"
    )
    layer: int = option(-1, "hidden layer of the embedding delta", cli=False)
    batch_size: int = option(16, "windows per forward pass", cli=False, bounds="[1, inf)")
    bootstrap_rounds: int = option(BOOTSTRAP_ROUNDS, "resamples per interval", cli=False, bounds="[1, inf)")

    def __post_init__(self) -> None:
        check_fields(self)
