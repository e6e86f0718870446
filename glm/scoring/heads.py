"""What scoring needs of a variant head, as a Protocol: scoring applies a head without importing glm.heads.

glm.heads.probes.Head satisfies `VariantHead` structurally (glm.heads.variant_heads fits one). The
head names the features it reads; scoring builds them by name from the columns it computes
(`feature_names`), so a head never depends on their order.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from glm.errors import InputError

# The zero-shot scores among a variant's features, before the embedding delta (glm.scoring.zero_shot).
FEATURE_SCORES = ("llr_forward", "llr_reverse", "llr", "embedding_cosine", "embedding_l2")


@runtime_checkable
class VariantHead(Protocol):
    """A probe on variant features: scoring adds its last class's probability as head_probability."""

    info: dict[str, Any]  # task ("variant"), model_fingerprint, window and layer it was fitted with
    feature_names: list[str]  # the features it reads, in the order predict_proba takes them
    classes: list[str]  # predict_proba's columns; the last one is the positive class

    def predict_proba(self, features: np.ndarray) -> np.ndarray: ...


def feature_names(width: int) -> list[str]:
    """The variant features scoring computes for a model of this width: FEATURE_SCORES, then the delta."""
    return [*FEATURE_SCORES, *(f"delta_{i}" for i in range(width))]


def feature_columns(head: VariantHead, width: int) -> list[int]:
    """The column of `feature_names(width)` for each feature the head reads, in the head's order."""
    column = {name: index for index, name in enumerate(feature_names(width))}
    unknown = [name for name in head.feature_names if name not in column]
    if unknown:
        raise InputError(f"head: reads features that scoring does not compute: {', '.join(unknown[:3])}")
    return [column[name] for name in head.feature_names]
