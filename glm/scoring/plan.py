"""The scoring plan: how a set of variants is scored, checked once and passed to every stage."""

from __future__ import annotations

from dataclasses import dataclass

from glm.config import Strands, check_choice
from glm.errors import InputError
from glm.model.tokenizers import KmerTokenizer, Tokenizer
from glm.model.transformer import Transformer
from glm.scoring.windows import check_window, default_window


@dataclass(frozen=True)
class ScoringPlan:
    """Settings shared by window building and the forward passes (see `make_plan`)."""

    window: int  # bases per scoring window
    strands: Strands = "both"  # both: average the forward and reverse-complement scores
    layer: int = -1  # hidden layer of the embedding distances
    batch_size: int = 16  # windows per forward pass
    reuse: bool = True  # False: two full windows per variant (the naive reference path)
    keep_delta: bool = False  # keep the alt - ref pooled embedding (features for heads)
    progress: bool = False

    @property
    def n_strands(self) -> int:
        return 2 if self.strands == "both" else 1


def make_plan(
    model: Transformer,
    tokenizer: Tokenizer,
    window: int | None = None,
    strands: Strands = "both",
    layer: int = -1,
    batch_size: int = 16,
    reuse: bool = True,
    keep_delta: bool = False,
    progress: bool = False,
) -> ScoringPlan:
    """A checked plan for this model: window defaults to the model's whole context; bad values are InputErrors."""
    if not isinstance(tokenizer, KmerTokenizer):
        raise InputError(f"variant scoring needs a DNA model (k-mer tokenizer); this model reads {tokenizer.unit}s")
    check_choice("strands", strands, Strands)
    model.check_layer(layer)
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}")
    window = default_window(model, tokenizer) if window is None else window
    check_window(window, model, tokenizer)
    return ScoringPlan(window, strands, layer, batch_size, reuse, keep_delta, progress)
