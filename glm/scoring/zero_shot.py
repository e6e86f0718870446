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
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from glm.errors import InputError
from glm.io.files import ReadProgress
from glm.io.genome import Genome
from glm.io.variant_readers import Region, read_variant_chunks, read_variants
from glm.io.variants import Variant, VariantList
from glm.model.batching import sequence_tokens
from glm.model.tokenizers import KmerTokenizer, Tokenizer
from glm.model.transformer import Transformer
from glm.scoring.heads import feature_columns, feature_names
from glm.scoring.passes import Pair, score_pairs
from glm.scoring.plan import ScoringOptions, ScoringPlan, make_plan, options_of
from glm.scoring.table import VariantScores
from glm.scoring.windows import ReverseStrand, mirror_variant, reference_windows, window_fraction_n, window_grid

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack from Python 3.11

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
                refs.append(sequence_tokens(tokenizer, ref_window, plan.first_token))
            ref_ids, alt_ids = refs[ref_index[ref_window]], sequence_tokens(tokenizer, alt_window, plan.first_token)
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
) -> _Evaluation:
    genome = genome if isinstance(genome, Genome) else Genome(genome)
    if not isinstance(variants, VariantList):
        variants = read_variants(variants, genome, dict(plan.aliases), plan.on_ref_mismatch)
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
    **options: Unpack[ScoringOptions],
) -> VariantScores:
    """Score variants with one or more zero-shot methods ("llr", "embedding"); see the module docstring.

    variants: a VCF/TSV/CSV path, Python rows or a VariantList (read with `read_variants`).
    Options (method, window, strands, layer, batch_size, aliases, on_ref_mismatch, reuse, head,
    progress, chunk_size, genome_name with genome_tags) are those of glm.scoring.plan.make_plan,
    which documents each. The table holds every variant in input order;
    glm.scoring.stream.score_file writes the same table without holding it.
    """
    genome = genome if isinstance(genome, Genome) else Genome(genome)
    plan = make_plan(model, tokenizer, **options_of(options))
    parts = list(scored_chunks(model, tokenizer, variants, genome, plan))
    first = parts[0][0]
    found = VariantList((variant for chunk, _ in parts for variant in chunk), first.header_lines, first.source)
    columns = {name: np.concatenate([columns[name] for _, columns in parts]) for name in parts[0][1]}
    return VariantScores(found, columns, plan.chunk_size)


def scored_chunks(
    model: Transformer,
    tokenizer: Tokenizer,
    variants: VariantSource,
    genome: Genome,
    plan: ScoringPlan,
    regions: Sequence[Region] = (),
    progress: ReadProgress | None = None,
) -> Iterator[tuple[VariantList, dict[str, np.ndarray]]]:
    """(variants, score columns) for each chunk of plan.chunk_size variants, read (or sliced) and scored in turn.

    The one scoring path of `score_variants` and `score_file` (which scores only its own shards of
    `variant_chunks`, with `score_chunk`). Windows are batched within a chunk, so a different
    chunk_size (like a different batch_size) changes scores only by float32 rounding.
    """
    for chunk in variant_chunks(variants, genome, plan, regions, progress):
        yield score_chunk(model, tokenizer, chunk, genome, plan)


def variant_chunks(
    variants: VariantSource,
    genome: Genome,
    plan: ScoringPlan,
    regions: Sequence[Region] = (),
    progress: ReadProgress | None = None,
) -> Iterator[VariantList]:
    """The chunks of plan.chunk_size variants that `scored_chunks` scores, read (or sliced) in input order.

    `progress` goes to the file reader (glm.io.variant_readers.read_variant_chunks).
    """
    size = plan.chunk_size
    if isinstance(variants, VariantList):
        return (
            VariantList(variants[start : start + size], variants.header_lines, variants.source)
            for start in range(0, max(len(variants), 1), size)
        )
    return read_variant_chunks(variants, genome, dict(plan.aliases), plan.on_ref_mismatch, size, regions, progress)


def score_chunk(
    model: Transformer, tokenizer: Tokenizer, chunk: VariantList, genome: Genome, plan: ScoringPlan
) -> tuple[VariantList, dict[str, np.ndarray]]:
    """One chunk of variants scored: (the variants, with why each unscored one was not; the score columns)."""
    found = _evaluate(model, tokenizer, chunk, genome, plan)
    return found.variants, score_columns(found, plan)


def score_columns(found: _Evaluation, plan: ScoringPlan) -> dict[str, np.ndarray]:
    """The score columns of evaluated variants, in output order."""
    columns: dict[str, np.ndarray] = {}
    if "llr" in plan.methods:
        columns["llr"] = found.llr.mean(axis=1)
        if plan.n_strands == 2:
            columns["llr_forward"], columns["llr_reverse"] = found.llr[:, 0], found.llr[:, 1]
    if "embedding" in plan.methods:
        columns["embedding_cosine"] = found.cosine.mean(axis=1)
        columns["embedding_l2"] = found.l2.mean(axis=1)
    head = plan.head
    if head is not None:
        assert found.delta is not None, "a plan with a head keeps the embedding delta"
        features = found.features()[:, feature_columns(head, found.delta.shape[2])]  # the head's features, by name
        scored = np.isfinite(features).all(axis=1)
        columns["head_probability"] = np.full(len(features), np.nan)
        if scored.any():
            columns["head_probability"][scored] = head.predict_proba(features[scored])[:, -1]
    columns["window_n"] = found.fraction_n
    return columns


def variant_features(
    model: Transformer,
    tokenizer: Tokenizer,
    variants: VariantSource,
    genome: str | os.PathLike[str] | Genome,
    **options: Unpack[ScoringOptions],
) -> tuple[np.ndarray, list[str], VariantList]:
    """Features for supervised heads: both strands' llr, the embedding distances, the embedding delta.

    Returns (features (variants, 5 + width), feature names, the variants with their status); rows
    of unscored variants are NaN. The delta (alt minus ref pooled embedding) is averaged over strands.
    Options (window, layer, batch_size, aliases, on_ref_mismatch, progress) are make_plan's.
    """
    plan = make_plan(model, tokenizer, **options_of(options), strands="both", keep_delta=True)
    genome = genome if isinstance(genome, Genome) else Genome(genome)
    found = _evaluate(model, tokenizer, variants, genome, plan)
    return found.features(), feature_names(model.config.width), found.variants
