"""The scoring plan: every option of a scoring run, checked once and passed to every stage.

`make_plan` is the one declaration of the scoring options (with their defaults and docs);
`score_variants`, `score_file` and `variant_features` forward their keyword options to it, typed
as `**options: Unpack[ScoringOptions]` so editors and type checkers see each one. `ScoringOptions`
lists the same names and types (a test keeps the two equal), and `options_of` checks a call's names
against make_plan's signature. The facade (glm.api.GenomicLM) lists the options explicitly instead,
for help(); a test keeps its defaults equal to make_plan's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, TypedDict

from glm.config import InferencePrecision, Strands
from glm.fields import check_bounds
from glm.errors import InputError, check_choice, check_options
from glm.io.variants import OnRefMismatch
from glm.model.checkpoint import model_fingerprint
from glm.model.genome_tags import GenomeTags, genome_token
from glm.model.tokenizers import SEP, Tokenizer, require_dna
from glm.model.transformer import Transformer
from glm.scoring.heads import VariantHead, feature_columns
from glm.scoring.windows import check_window, default_window

METHODS = ("llr", "embedding")
CHUNK_SIZE = 10_000  # variants read and scored together


@dataclass(frozen=True)
class ScoringPlan:
    """Settings shared by reading, window building, the forward passes and the score columns."""

    window: int  # bases per scoring window
    methods: tuple[str, ...] = ("llr",)
    strands: Strands = "both"  # both: average the forward and reverse-complement scores
    layer: int = -1  # hidden layer of the embedding distances
    batch_size: int = 16  # windows per forward pass: a budget of batch_size full windows' tokens
    reuse: bool = True  # False: two full windows per variant (the naive reference path)
    keep_delta: bool = False  # keep the alt - ref pooled embedding (features for heads)
    progress: bool = False
    head: VariantHead | None = None  # a variant head: adds head_probability
    aliases: Mapping[str, str] = field(default_factory=dict)  # variant contig name -> genome contig name
    on_ref_mismatch: OnRefMismatch = "error"  # or "skip": such variants are reported, not scored
    chunk_size: int = CHUNK_SIZE  # variants read and scored together
    genome_token: int | None = None  # a tagged model's genome token: first in every window instead of SEP
    precision: InferencePrecision = "float32"  # or "bf16": autocast on any device

    @property
    def n_strands(self) -> int:
        return 2 if self.strands == "both" else 1

    @property
    def first_token(self) -> int:
        """The token before each window's bases: SEP, or the genome token of a tagged model."""
        return SEP if self.genome_token is None else self.genome_token

    def identity(self) -> dict[str, Any]:
        """What scores depend on, for the manifest of a run's parts (glm.io.shards): every option but
        progress, the head by its info."""
        chosen = {item.name: getattr(self, item.name) for item in fields(self) if item.name not in ("progress", "head")}
        return {**chosen, "head": self.head.info if self.head is not None else None}


class ScoringOptions(TypedDict, total=False):
    """The keyword options of the scoring functions: make_plan's keyword-only parameters, with their types."""

    method: str | Sequence[str]
    window: int | None
    strands: Strands
    layer: int
    batch_size: int
    aliases: Mapping[str, str] | None
    on_ref_mismatch: OnRefMismatch
    reuse: bool
    head: VariantHead | None
    progress: bool
    chunk_size: int
    keep_delta: bool
    genome_name: str | None
    genome_tags: GenomeTags | None
    precision: InferencePrecision


def make_plan(
    model: Transformer,
    tokenizer: Tokenizer,
    *,
    method: str | Sequence[str] = "llr",
    window: int | None = None,
    strands: Strands = "both",
    layer: int = -1,
    batch_size: int = 16,
    aliases: Mapping[str, str] | None = None,
    on_ref_mismatch: OnRefMismatch = "error",
    reuse: bool = True,
    head: VariantHead | None = None,
    progress: bool = False,
    chunk_size: int = CHUNK_SIZE,
    keep_delta: bool = False,
    genome_name: str | None = None,
    genome_tags: GenomeTags | None = None,
    precision: InferencePrecision = "float32",
) -> ScoringPlan:
    """A checked plan for this model; bad values are InputErrors.

    method: "llr", "embedding" or both as a list. window: bases per scoring window (default: the
    model's whole context). strands: "both" averages forward and reverse-complement scores,
    "forward" scores the given strand only. layer: hidden layer for the embedding distances (-1:
    the final one). batch_size: windows per forward pass. aliases / on_ref_mismatch: as in
    `read_variants`. reuse=False computes every window in full (slower, same scores). head: a
    variant head fitted on this model (glm.heads.variant_heads): adds a "head_probability" column
    (its positive class, `head.classes[-1]`) and scores with the window, layer and both strands it
    was fitted with (asking for another window, layer or strands="forward" is an InputError).
    chunk_size: variants read and scored together (windows are batched within a chunk, so another
    chunk_size changes scores only by float32 rounding). keep_delta: keep the
    embedding deltas (features for heads). genome_name: for a model trained with genome tokens,
    the genome whose token starts every window (required there; refused by an untagged model);
    genome_tags: that model's tags (GenomicLM passes its own). precision: "bf16" runs the forward
    passes in bf16 autocast (faster on a GPU; scores move a little, docs/VARIANTS.md: the measured
    difference), "float32" (the default) does not; log-probabilities are float32 from the logits either way.
    """
    require_dna(tokenizer, "variant scoring")
    methods = (method,) if isinstance(method, str) else tuple(method)
    if not methods or any(name not in METHODS for name in methods):
        raise InputError(f"method must be among {', '.join(METHODS)}, got {method!r}")
    if head is not None:
        window, layer, strands = _head_settings(head, model, window, layer, strands)
    check_choice("strands", strands, Strands)
    model.check_layer(layer)
    check_bounds("batch_size", batch_size, "[1, inf)")
    check_bounds("chunk_size", chunk_size, "[1, inf)")
    check_choice("on_ref_mismatch", on_ref_mismatch, OnRefMismatch)
    check_choice("precision", precision, InferencePrecision)
    window = default_window(model, tokenizer) if window is None else window
    check_window(window, model, tokenizer)
    token = genome_token(genome_tags, genome_name)
    return ScoringPlan(
        window=window,
        methods=methods,
        strands=strands,
        layer=layer,
        batch_size=batch_size,
        reuse=reuse,
        keep_delta=keep_delta or head is not None,
        progress=progress,
        head=head,
        aliases=dict(aliases or {}),
        on_ref_mismatch=on_ref_mismatch,
        chunk_size=chunk_size,
        genome_token=token,
        precision=precision,
    )


def _head_settings(
    head: VariantHead, model: Transformer, window: int | None, layer: int, strands: Strands
) -> tuple[int, int, Strands]:
    """(window, layer, strands) a variant head was fitted with; an InputError if it does not fit this model,
    or if the call asks for another window, layer (-1 is "not given") or strand than the head reads."""
    info = head.info
    if info.get("task") != "variant":
        raise InputError("head: not a variant head (fit one with `cli.py fit-head` or glm.heads.variant_heads)")
    if strands != "both":
        raise InputError(f"strands: a head reads the scores of both strands, got {strands!r}; leave strands out")
    if window is not None and window != info["window"]:
        raise InputError(f"window: this head was fitted with {info['window']}-base windows, got {window}")
    n_states = model.config.n_layers + 1  # hidden states: the embedding, then each block's output
    if layer != -1 and model.check_layer(layer) % n_states != int(info["layer"]) % n_states:
        raise InputError(f"layer: this head was fitted on layer {info['layer']}, got {layer}")
    if info.get("model_fingerprint") != model_fingerprint(model):
        raise InputError("head: it was fitted on the features of a different model; refit it for this one")
    feature_columns(head, model.config.width)  # every feature it reads is one scoring computes
    return int(info["window"]), int(info["layer"]), "both"


def options_of(options: Mapping[str, Any]) -> ScoringOptions:
    """The keyword options meant for make_plan, checked by name (a misspelt option is an InputError)."""
    check_options("scoring", options, make_plan)
    return ScoringOptions(**options)  # type: ignore[typeddict-item]
