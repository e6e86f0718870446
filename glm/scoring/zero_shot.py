"""Zero-shot variant effect scores from a causal DNA language model: one scorer, several methods.

For each variant and strand, `reference_windows` (glm.scoring.windows) gives a reference window
and an alternative window of the same length (the event placed near the middle, both in the same
k-mer phase; for indels the alternative window is trimmed or extended on its far end). Then:

- `llr`: log P(alt window) - log P(ref window), in nats, summed over every scored token (tokens
  holding an N are never targets). **Negative means the alternative sequence is less likely under
  the model than the reference (predicted more damaging); 0 means no change.**
- `embedding`: distances between the mean-pooled hidden states of the two windows (one layer,
  final by default): `embedding_cosine` (1 - cosine similarity) and `embedding_l2`. Larger means
  more different; both are >= 0.

With strands="both" (the default) every score is the mean of the forward-strand score and the
reverse-strand score, where the reverse-strand windows are built on the reverse-complemented
contig exactly as the forward ones are on the forward contig. So the score of a variant does not
change when the genome and the variant are reverse complemented.

Speed: windows snap to a grid (an eighth of the window) so neighbouring variants share their
reference window, and each distinct reference window is run once (glm.scoring.passes).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from glm.config import Strands
from glm.errors import InputError
from glm.io.genome import Genome
from glm.io.variant_readers import Region, read_variant_chunks, read_variants
from glm.io.variants import Variant, VariantList
from glm.model.batching import sequence_tokens
from glm.model.checkpoint import model_fingerprint
from glm.model.tokenizers import KmerTokenizer, Tokenizer
from glm.model.transformer import Transformer
from glm.scoring.passes import Pair, score_pairs
from glm.scoring.plan import ScoringPlan, make_plan
from glm.scoring.table import VariantScores
from glm.scoring.windows import ReverseStrand, mirror_variant, reference_windows, window_fraction_n, window_grid

if TYPE_CHECKING:
    from glm.heads.probes import Head

METHODS = ("llr", "embedding")
FEATURE_SCORES = ("llr_forward", "llr_reverse", "llr", "embedding_cosine", "embedding_l2")
CHUNK_SIZE = 10_000  # variants read and scored together
VariantSource = str | os.PathLike[str] | VariantList | Iterable[Any]


def build_pairs(
    variants: Sequence[Variant], genome: Genome, tokenizer: KmerTokenizer, plan: ScoringPlan
) -> tuple[list[np.ndarray], list[Pair], list[str], np.ndarray]:
    """Windows and tokens for every scorable (variant, strand).

    Returns the distinct reference token lists, the pairs, a status per variant ("" or why it was
    not scored) and the fraction of N in each variant's forward reference window (NaN if unscored).
    """
    views = [genome, ReverseStrand(genome)][: plan.n_strands]
    grid = window_grid(plan.window, tokenizer)
    refs: list[np.ndarray] = []
    ref_index: dict[str, int] = {}
    pairs: list[Pair] = []
    statuses = [variant.status for variant in variants]
    fraction_n = np.full(len(variants), np.nan)
    for index, variant in enumerate(variants):
        if variant.status:
            continue
        try:
            built = []
            for strand, view in enumerate(views):
                oriented = variant if strand == 0 else mirror_variant(variant, genome.lengths[variant.contig])
                built.append(reference_windows(oriented, view, plan.window, tokenizer.stride, grid))  # type: ignore[arg-type]
        except InputError as error:  # an indel longer than the window: reported on its row
            statuses[index] = error.message
            continue
        fraction_n[index] = window_fraction_n(built[0][0])
        for strand, (ref_window, alt_window, _) in enumerate(built):
            if ref_window not in ref_index:
                ref_index[ref_window] = len(refs)
                refs.append(sequence_tokens(tokenizer, ref_window))
            ref_ids, alt_ids = refs[ref_index[ref_window]], sequence_tokens(tokenizer, alt_window)
            assert len(ref_ids) == len(alt_ids), "equal-length windows tokenize to equal lengths"
            differs = np.flatnonzero(ref_ids != alt_ids)
            shared = int(differs[0]) if len(differs) else len(ref_ids)
            pairs.append(Pair(index, strand, ref_index[ref_window], alt_ids, shared))
    return refs, pairs, statuses, fraction_n


@dataclass
class _Evaluation:
    """Per-variant, per-strand results (NaN where a variant was not scored)."""

    variants: VariantList
    llr: np.ndarray  # (variants, strands)
    cosine: np.ndarray
    l2: np.ndarray
    delta: np.ndarray | None  # (variants, strands, width)
    fraction_n: np.ndarray  # (variants,)

    def features(self) -> np.ndarray:
        """Rows of FEATURE_SCORES then the strand-averaged embedding delta (NaN rows for unscored variants)."""
        assert self.delta is not None
        return np.column_stack(
            [self.llr, self.llr.mean(axis=1), self.cosine.mean(axis=1), self.l2.mean(axis=1), self.delta.mean(axis=1)]
        )


def _evaluate(
    model: Transformer,
    tokenizer: KmerTokenizer,
    variants: VariantSource,
    genome: str | os.PathLike[str] | Genome,
    plan: ScoringPlan,
    aliases: Mapping[str, str] | None,
    on_ref_mismatch: str,
) -> _Evaluation:
    genome = genome if isinstance(genome, Genome) else Genome(genome)
    if not isinstance(variants, VariantList):
        variants = read_variants(variants, genome, dict(aliases or {}), on_ref_mismatch)
    refs, pairs, statuses, fraction_n = build_pairs(variants, genome, tokenizer, plan)
    results = score_pairs(model, refs, pairs, plan)

    shape = (len(variants), plan.n_strands)
    llr, cosine, l2 = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
    delta = np.full((*shape, model.config.width), np.nan) if plan.keep_delta else None
    for number, pair in enumerate(pairs):
        where = (pair.variant, pair.strand)
        llr[where], cosine[where], l2[where] = results.llr[number], results.cosine[number], results.l2[number]
        if delta is not None:
            delta[where] = results.delta[number]  # type: ignore[index]
    reported = VariantList(
        (
            dataclasses.replace(variant, status=status) if status != variant.status else variant
            for variant, status in zip(variants, statuses)
        ),
        variants.header_lines,
        variants.source,
    )
    return _Evaluation(reported, llr, cosine, l2, delta, fraction_n)


def score_variants(
    model: Transformer,
    tokenizer: Tokenizer,
    variants: VariantSource,
    genome: str | os.PathLike[str] | Genome,
    method: str | Sequence[str] = "llr",
    window: int | None = None,
    strands: Strands = "both",
    layer: int = -1,
    batch_size: int = 16,
    aliases: Mapping[str, str] | None = None,
    on_ref_mismatch: str = "error",
    reuse: bool = True,
    head: Head | None = None,
    progress: bool = False,
    chunk_size: int = CHUNK_SIZE,
) -> VariantScores:
    """Score variants with one or more zero-shot methods ("llr", "embedding"); see the module docstring.

    variants: a VCF/TSV/CSV path, Python rows or a VariantList (read with `read_variants`).
    window: bases per scoring window (default: the model's whole context). strands: "both"
    averages forward and reverse-complement scores, "forward" scores the given strand only.
    layer: hidden layer for the embedding distances (-1: the final one). batch_size: windows per
    forward pass. aliases / on_ref_mismatch: as in `read_variants`. reuse=False computes every
    window in full (slower, same scores). head: a variant head fitted on this model (see
    glm.heads.variant_heads); adds a "head_probability" column (probability of its positive
    class, `head.classes[-1]`) and scores with the window, layer and both strands it was fitted with.
    chunk_size: variants scored together (`scored_chunks`); glm.scoring.stream.score_file with the
    same chunk_size writes the same table without holding it.
    """
    genome = genome if isinstance(genome, Genome) else Genome(genome)
    methods, plan = _settings(model, tokenizer, method, window, strands, layer, batch_size, reuse, head, progress)
    parts = list(
        scored_chunks(model, tokenizer, variants, genome, methods, plan, head, aliases, on_ref_mismatch, chunk_size)
    )
    first = parts[0][0]
    found = VariantList((variant for chunk, _ in parts for variant in chunk), first.header_lines, first.source)
    return VariantScores(found, {name: np.concatenate([columns[name] for _, columns in parts]) for name in parts[0][1]})


def scored_chunks(
    model: Transformer,
    tokenizer: Tokenizer,
    variants: VariantSource,
    genome: Genome,
    methods: Sequence[str],
    plan: ScoringPlan,
    head: Head | None,
    aliases: Mapping[str, str] | None,
    on_ref_mismatch: str,
    chunk_size: int,
    regions: Sequence[Region] = (),
) -> Iterator[tuple[VariantList, dict[str, np.ndarray]]]:
    """(variants, score columns) for each chunk of `chunk_size` variants, read (or sliced) and scored in turn.

    The one scoring path of `score_variants` and `score_file`. Windows are batched within a chunk,
    so a different chunk_size (like a different batch_size) changes scores only by float32 rounding.
    """
    if isinstance(variants, VariantList):
        chunks: Iterable[VariantList] = (
            VariantList(variants[start : start + chunk_size], variants.header_lines, variants.source)
            for start in range(0, max(len(variants), 1), chunk_size)
        )
    else:
        chunks = read_variant_chunks(variants, genome, dict(aliases or {}), on_ref_mismatch, chunk_size, regions)
    for chunk in chunks:
        found = _evaluate(model, tokenizer, chunk, genome, plan, aliases, on_ref_mismatch)
        yield found.variants, score_columns(found, methods, plan, head)


def _settings(
    model: Transformer,
    tokenizer: Tokenizer,
    method: str | Sequence[str],
    window: int | None,
    strands: Strands,
    layer: int,
    batch_size: int,
    reuse: bool,
    head: Head | None,
    progress: bool,
) -> tuple[list[str], ScoringPlan]:
    """The checked methods and the ScoringPlan of one scoring run (a head fixes window, layer, strands)."""
    methods = [method] if isinstance(method, str) else list(method)
    unknown = [name for name in methods if name not in METHODS]
    if unknown or not methods:
        raise InputError(f"method must be among {', '.join(METHODS)}, got {method!r}")
    if head is not None:
        window, layer, strands = _head_settings(head, model, window)
    plan = make_plan(
        model,
        tokenizer,
        window=window,
        strands=strands,
        layer=layer,
        batch_size=batch_size,
        reuse=reuse,
        keep_delta=head is not None,
        progress=progress,
    )
    return methods, plan


def score_columns(
    found: _Evaluation, methods: Sequence[str], plan: ScoringPlan, head: Head | None
) -> dict[str, np.ndarray]:
    """The score columns of evaluated variants, in output order."""
    columns: dict[str, np.ndarray] = {}
    if "llr" in methods:
        columns["llr"] = found.llr.mean(axis=1)
        if plan.n_strands == 2:
            columns["llr_forward"], columns["llr_reverse"] = found.llr[:, 0], found.llr[:, 1]
    if "embedding" in methods:
        columns["embedding_cosine"] = found.cosine.mean(axis=1)
        columns["embedding_l2"] = found.l2.mean(axis=1)
    if head is not None:
        features = found.features()[:, : len(head.feature_names)]  # a scores-only head uses the first columns
        scored = np.isfinite(features).all(axis=1)
        columns["head_probability"] = np.full(len(features), np.nan)
        if scored.any():
            columns["head_probability"][scored] = head.predict_proba(features[scored])[:, -1]
    columns["window_n"] = found.fraction_n
    return columns


def _head_settings(head: Head, model: Transformer, window: int | None) -> tuple[int, int, Strands]:
    """(window, layer, strands) a variant head was fitted with; an InputError if it does not fit this model."""
    info = head.info
    if info.get("task") != "variant":
        raise InputError("head: not a variant head (fit one with `cli.py fit-head` or glm.heads.variant_heads)")
    if info.get("model_fingerprint") != model_fingerprint(model):
        raise InputError("head: it was fitted on the features of a different model; refit it for this one")
    if window is not None and window != info["window"]:
        raise InputError(f"window: this head was fitted with {info['window']}-base windows, got {window}")
    return int(info["window"]), int(info["layer"]), "both"


def variant_features(
    model: Transformer,
    tokenizer: Tokenizer,
    variants: VariantSource,
    genome: str | os.PathLike[str] | Genome,
    window: int | None = None,
    layer: int = -1,
    batch_size: int = 16,
    aliases: Mapping[str, str] | None = None,
    on_ref_mismatch: str = "error",
    progress: bool = False,
) -> tuple[np.ndarray, list[str], VariantList]:
    """Features for supervised heads: both strands' llr, the embedding distances, the embedding delta.

    Returns (features (variants, 5 + width), feature names, the variants with their status); rows
    of unscored variants are NaN. The delta (alt minus ref pooled embedding) is averaged over strands.
    """
    plan = make_plan(
        model, tokenizer, window=window, layer=layer, batch_size=batch_size, keep_delta=True, progress=progress
    )
    found = _evaluate(model, tokenizer, variants, genome, plan, aliases, on_ref_mismatch)  # type: ignore[arg-type]
    names = [*FEATURE_SCORES, *(f"delta_{i}" for i in range(model.config.width))]
    return found.features(), names, found.variants
