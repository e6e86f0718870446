"""Variant effect scoring: windows, the scoring plan, forward passes, zero-shot scores, score tables.

from glm.scoring import score_variants, VariantScores
"""

from glm.scoring.heads import FEATURE_SCORES
from glm.scoring.plan import METHODS
from glm.scoring.table import VariantScores, mutagenesis_matrix, mutagenesis_variants
from glm.scoring.zero_shot import score_variants, variant_features

__all__ = [
    "FEATURE_SCORES",
    "METHODS",
    "VariantScores",
    "mutagenesis_matrix",
    "mutagenesis_variants",
    "score_variants",
    "variant_features",
]
