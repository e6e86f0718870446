"""Zero-shot variant effect scores from a causal DNA language model: one scorer, several methods.

For each variant and strand, `reference_windows` gives a reference window and an alternative
window of the same length (the event placed near the middle, both in the same k-mer phase; for
indels the alternative window is trimmed or extended on its far end to the same length). Then:

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
reference window, and each distinct reference window is run once. Its keys and values are cached;
an alternative window shares every token before the variant with its reference window, so only
its suffix is run, attending to the cached prefix. `reuse=False` runs two full windows per
variant instead (the naive path, kept as the reference the fast path is tested against).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from glm.checkpoint import model_fingerprint
from glm.errors import InputError
from glm.genome import Genome, reverse_complement
from glm.model import KVCache, Transformer
from glm.tokenizers import NOT_A_TARGET, SEP, KmerTokenizer, Tokenizer
from glm.variants import Variant, VariantList, read_variants, reference_windows, window_fraction_n, write_variants

if TYPE_CHECKING:
    from glm.heads import Head

METHODS = ("llr", "embedding")
STRANDS = ("forward", "both")
GRID_FRACTION = 8  # windows snap to a grid of window / 8 bases, so neighbouring variants share them

DESCRIPTIONS = {
    "llr": "glm log-likelihood ratio log P(alt window) - log P(ref window) in nats, mean of both strands; "
    "negative = alt less likely (predicted more damaging)",
    "llr_forward": "glm log-likelihood ratio on the forward strand (nats)",
    "llr_reverse": "glm log-likelihood ratio on the reverse strand (nats)",
    "embedding_cosine": "glm cosine distance (1 - cosine similarity) between mean-pooled ref and alt window "
    "embeddings; larger = more different",
    "embedding_l2": "glm L2 distance between mean-pooled ref and alt window embeddings",
    "head_probability": "probability of the positive class from a supervised glm head",
    "window_n": "fraction of N in the reference window (above 0.5: the score rests on little sequence)",
}


class _ReverseStrand:
    """A genome read on its reverse strand: base i of a contig here is base length-1-i there, complemented."""

    def __init__(self, genome: Genome):
        self.genome = genome
        self.lengths = genome.lengths
        self.names = genome.names

    def __contains__(self, name: str) -> bool:
        return name in self.genome

    def fetch(self, name: str, start: int, end: int) -> str:
        length = self.lengths[name]
        return self.genome.fetch(name, length - end, length - start, strand="-")


def mirror_variant(variant: Variant, length: int) -> Variant:
    """The same variant described on the reverse-complemented contig of `length` bases."""
    return dataclasses.replace(
        variant,
        pos=length - variant.pos - len(variant.ref),
        ref=reverse_complement(variant.ref),
        alt=reverse_complement(variant.alt),
    )


@dataclass
class _Pair:
    """One (variant, strand): which distinct reference window it uses and its alternative tokens."""

    variant: int  # index in the variant list
    strand: int  # 0 forward, 1 reverse
    ref: int  # index of its reference window among the distinct ones
    alt_ids: np.ndarray  # SEP + tokens of the alternative window
    shared: int  # leading tokens identical in the ref and alt token lists (>= 1: the SEP)


@dataclass
class _PairResults:
    llr: np.ndarray  # (pairs,)
    cosine: np.ndarray  # (pairs,)
    l2: np.ndarray  # (pairs,)
    delta: np.ndarray | None  # (pairs, width): alt minus ref pooled embedding, when asked for


def default_window(model: Transformer, tokenizer: KmerTokenizer) -> int:
    """The longest window (bases) whose tokens, after the leading SEP, fit the model's context."""
    return tokenizer.k + (model.config.context - 2) * tokenizer.stride


def _check_window(window: int, model: Transformer, tokenizer: KmerTokenizer) -> None:
    longest = default_window(model, tokenizer)
    if not tokenizer.k <= window <= longest:
        raise InputError(
            f"window: {window} bases does not fit this model; use {tokenizer.k} to {longest} bases "
            f"(context {model.config.context} tokens of {tokenizer.stride} bases)"
        )


def _tokens(tokenizer: Tokenizer, sequence: str) -> np.ndarray:
    return np.concatenate([[SEP], tokenizer.encode(sequence).ids])


def _build_pairs(
    variants: Sequence[Variant], genome: Genome, tokenizer: KmerTokenizer, window: int, strands: str
) -> tuple[list[np.ndarray], list[_Pair], list[str], np.ndarray]:
    """Windows and tokens for every scorable (variant, strand).

    Returns the distinct reference token lists, the pairs, a status per variant ("" or why it was
    not scored) and the fraction of N in each variant's forward reference window (NaN if unscored).
    """
    views = [genome, _ReverseStrand(genome)][: 2 if strands == "both" else 1]
    grid = max(tokenizer.stride, window // GRID_FRACTION // tokenizer.stride * tokenizer.stride)
    refs: list[np.ndarray] = []
    ref_index: dict[str, int] = {}
    pairs: list[_Pair] = []
    statuses = [variant.status for variant in variants]
    fraction_n = np.full(len(variants), np.nan)
    for index, variant in enumerate(variants):
        if variant.status:
            continue
        try:
            built = []
            for strand, view in enumerate(views):
                oriented = variant if strand == 0 else mirror_variant(variant, genome.lengths[variant.contig])
                built.append(reference_windows(oriented, view, window, tokenizer.stride, grid))  # type: ignore[arg-type]
        except InputError as error:  # an indel longer than the window: reported on its row
            statuses[index] = error.message
            continue
        fraction_n[index] = window_fraction_n(built[0][0])
        for strand, (ref_window, alt_window, _) in enumerate(built):
            if ref_window not in ref_index:
                ref_index[ref_window] = len(refs)
                refs.append(_tokens(tokenizer, ref_window))
            ref_ids, alt_ids = refs[ref_index[ref_window]], _tokens(tokenizer, alt_window)
            assert len(ref_ids) == len(alt_ids), "equal-length windows tokenize to equal lengths"
            differs = np.flatnonzero(ref_ids != alt_ids)
            shared = int(differs[0]) if len(differs) else len(ref_ids)
            pairs.append(_Pair(index, strand, ref_index[ref_window], alt_ids, shared))
    return refs, pairs, statuses, fraction_n


def _log_probs(model: Transformer, states: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log P(target) at each position from the final hidden states that predict them; PAD/UNK/SEP -> 0."""
    logits = model.head(states).float()
    log_probs = -F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    scored = ~torch.isin(targets, torch.tensor(NOT_A_TARGET, device=targets.device))
    return log_probs * scored


def _distances(ref: torch.Tensor, alt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(1 - cosine similarity, L2 distance) between rows of two (n, width) float64 tensors."""
    return 1 - F.cosine_similarity(ref, alt, dim=-1), (alt - ref).norm(dim=-1)


@torch.inference_mode()
def _score_pairs_reusing(
    model: Transformer,
    refs: list[np.ndarray],
    pairs: list[_Pair],
    layer: int,
    batch_size: int,
    keep_delta: bool,
    progress: bool,
) -> _PairResults:
    """Each distinct reference window once (keys/values cached), then each alternative's suffix only."""
    device = next(model.parameters()).device
    results = _empty_results(len(pairs), model.config.width, keep_delta)
    by_ref: dict[int, list[int]] = {}
    for number, pair in enumerate(pairs):
        by_ref.setdefault(pair.ref, []).append(number)
    order = list(by_ref)
    with tqdm(total=len(pairs), desc="scoring", unit="window", disable=not progress) as bar:
        for first in range(0, len(order), batch_size):
            batch_refs = order[first : first + batch_size]
            ids = torch.from_numpy(np.stack([refs[ref] for ref in batch_refs])).to(device)  # (refs, T)
            cache = model.new_cache()
            states = model.hidden_states(ids, cache)
            ref_log_probs = _log_probs(model, states[-1][:, :-1], ids[:, 1:]).double()  # token t at column t-1
            pooled_states = states[layer].double()
            prefix_sums = torch.cumsum(pooled_states, dim=1)  # (refs, T, width): sum of positions 0..t
            n_pooled = ids.shape[1] - 1  # positions 1 .. T-1 (the SEP at 0 is not pooled)
            ref_pooled = (prefix_sums[:, -1] - pooled_states[:, 0]) / n_pooled
            row_of = {ref: row for row, ref in enumerate(batch_refs)}
            jobs = sorted((pairs[n].shared, n) for ref in batch_refs for n in by_ref[ref])
            for chunk_start in range(0, len(jobs), batch_size):
                chunk = [n for _, n in jobs[chunk_start : chunk_start + batch_size]]
                rows = torch.tensor([row_of[pairs[n].ref] for n in chunk], device=device)
                _score_suffixes(
                    model, pairs, chunk, rows, cache, ref_log_probs, prefix_sums, ref_pooled, layer, results
                )
                bar.update(len(chunk))
    return results


def _score_suffixes(
    model: Transformer,
    pairs: list[_Pair],
    chunk: list[int],
    rows: torch.Tensor,
    ref_cache: KVCache,
    ref_log_probs: torch.Tensor,
    prefix_sums: torch.Tensor,
    ref_pooled: torch.Tensor,
    layer: int,
    results: _PairResults,
) -> None:
    """Run the alternative windows of `chunk` from their first differing token, on the cached prefix.

    All rows restart at one position `start` (the earliest first difference in the chunk, minus one
    so that the token there is predicted): positions before it are identical in ref and alt.
    """
    device = rows.device
    n_tokens = len(pairs[chunk[0]].alt_ids)
    start = min(pairs[n].shared for n in chunk) - 1
    ref_log_probs, prefix_sums, ref_pooled = ref_log_probs[rows], prefix_sums[rows], ref_pooled[rows]
    if start == n_tokens - 1:  # every alt equals its reference: nothing changes
        _store(results, chunk, torch.zeros(len(chunk), dtype=torch.float64), ref_pooled, ref_pooled)
        return
    cache = model.new_cache()
    for index, entry in enumerate(ref_cache.layers):
        keys, values = entry  # (refs, heads, T, head_dim)
        cache.layers[index] = (keys[rows, :, :start], values[rows, :, :start])
    alt_ids = torch.from_numpy(np.stack([pairs[n].alt_ids for n in chunk])).to(device)
    states = model.hidden_states(alt_ids[:, start:], cache)  # positions start .. T-1
    alt_log_probs = _log_probs(model, states[-1][:, :-1], alt_ids[:, start + 1 :]).double()
    llr = alt_log_probs.sum(1) - ref_log_probs[:, start:].sum(1)
    suffix = states[layer].double()[:, 1:] if start == 0 else states[layer].double()
    prefix = prefix_sums[:, start - 1] - prefix_sums[:, 0] if start > 1 else 0.0  # positions 1 .. start-1
    alt_pooled = (prefix + suffix.sum(1)) / (n_tokens - 1)
    _store(results, chunk, llr, ref_pooled, alt_pooled)


@torch.inference_mode()
def _score_pairs_naive(
    model: Transformer,
    refs: list[np.ndarray],
    pairs: list[_Pair],
    layer: int,
    batch_size: int,
    keep_delta: bool,
    progress: bool,
) -> _PairResults:
    """Two full forward passes per pair, nothing shared: the reference for the fast path."""
    device = next(model.parameters()).device
    results = _empty_results(len(pairs), model.config.width, keep_delta)
    half = max(batch_size // 2, 1)
    for first in tqdm(range(0, len(pairs), half), desc="scoring", unit="batch", disable=not progress):
        chunk = list(range(first, min(first + half, len(pairs))))
        windows = [refs[pairs[n].ref] for n in chunk] + [pairs[n].alt_ids for n in chunk]
        ids = torch.from_numpy(np.stack(windows)).to(device)
        states = model.hidden_states(ids)
        totals = _log_probs(model, states[-1][:, :-1], ids[:, 1:]).double().sum(1)
        pooled = states[layer].double()[:, 1:].mean(1)
        n = len(chunk)
        _store(results, chunk, totals[n:] - totals[:n], pooled[:n], pooled[n:])
    return results


def _empty_results(n_pairs: int, width: int, keep_delta: bool) -> _PairResults:
    empty = np.zeros(n_pairs)
    return _PairResults(empty.copy(), empty.copy(), empty.copy(), np.zeros((n_pairs, width)) if keep_delta else None)


def _store(
    results: _PairResults, chunk: list[int], llr: torch.Tensor, ref_pooled: torch.Tensor, alt_pooled: torch.Tensor
) -> None:
    cosine, l2 = _distances(ref_pooled, alt_pooled)
    results.llr[chunk] = llr.cpu().numpy()
    results.cosine[chunk] = cosine.cpu().numpy()
    results.l2[chunk] = l2.cpu().numpy()
    if results.delta is not None:
        results.delta[chunk] = (alt_pooled - ref_pooled).cpu().numpy()


@dataclass
class _Evaluation:
    """Per-variant, per-strand results (NaN where a variant was not scored)."""

    variants: VariantList
    llr: np.ndarray  # (variants, strands)
    cosine: np.ndarray
    l2: np.ndarray
    delta: np.ndarray | None  # (variants, strands, width)
    fraction_n: np.ndarray  # (variants,)


def _evaluate(
    model: Transformer,
    tokenizer: Tokenizer,
    variants: Any,
    genome: str | os.PathLike[str] | Genome,
    window: int | None,
    strands: str,
    layer: int,
    batch_size: int,
    reuse: bool,
    keep_delta: bool,
    aliases: Mapping[str, str] | None,
    on_ref_mismatch: str,
    progress: bool,
) -> _Evaluation:
    if not isinstance(tokenizer, KmerTokenizer):
        raise InputError(f"variant scoring needs a DNA model (k-mer tokenizer); this model reads {tokenizer.unit}s")
    if strands not in STRANDS:
        raise InputError(f"strands must be one of {', '.join(STRANDS)}, got {strands!r}")
    n_states = model.config.n_layers + 1
    if not -n_states <= layer < n_states:
        raise InputError(f"layer must be in [{-n_states}, {n_states - 1}] for this model, got {layer}")
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}")
    window = default_window(model, tokenizer) if window is None else window
    _check_window(window, model, tokenizer)
    genome = genome if isinstance(genome, Genome) else Genome(genome)
    if not isinstance(variants, VariantList):
        variants = read_variants(variants, genome, dict(aliases or {}), on_ref_mismatch)

    refs, pairs, statuses, fraction_n = _build_pairs(variants, genome, tokenizer, window, strands)
    scorer = _score_pairs_reusing if reuse else _score_pairs_naive
    results = scorer(model, refs, pairs, layer, batch_size, keep_delta, progress)

    n_strands = 2 if strands == "both" else 1
    shape = (len(variants), n_strands)
    llr, cosine, l2 = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
    delta = np.full((*shape, model.config.width), np.nan) if keep_delta else None
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


class VariantScores:
    """Scores of variants in input order: the variants (fields and status kept) and one column per score.

    `scores["llr"]` is a numpy array; `scores.to_pandas()` a DataFrame (pandas needed);
    `scores.write("out.vcf.gz")` writes TSV, VCF or gzip VCF with the scores as INFO fields.
    Variants that were not scored have NaN scores and say why in their `status`.
    """

    def __init__(self, variants: VariantList, columns: dict[str, np.ndarray]):
        self.variants = variants
        self.columns = columns

    def __len__(self) -> int:
        return len(self.variants)

    def __getitem__(self, column: str) -> np.ndarray:
        return self.columns[column]

    def __repr__(self) -> str:
        scored = sum(not variant.status for variant in self.variants)
        return f"VariantScores({len(self)} variants, {scored} scored, columns: {', '.join(self.columns)})"

    def rows(self) -> list[dict[str, Any]]:
        """One dict per variant: chrom, pos (1-based), id, ref, alt, the extra fields, the scores, status."""
        table = []
        for index, variant in enumerate(self.variants):
            row: dict[str, Any] = {
                "chrom": variant.chrom,
                "pos": variant.pos + 1,
                "id": variant.id,
                "ref": variant.ref,
                "alt": variant.alt,
            }
            row.update(variant.fields)
            row.update({name: float(values[index]) for name, values in self.columns.items()})
            row["status"] = variant.status
            table.append(row)
        return table

    def to_pandas(self) -> Any:
        """The table as a pandas DataFrame (pandas is optional: `pip install pandas`)."""
        try:
            import pandas  # noqa: PLC0415 - optional dependency
        except ImportError:
            raise InputError("to_pandas needs pandas: pip install pandas") from None
        return pandas.DataFrame(self.rows())

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write TSV, VCF or gzip VCF (chosen by the suffix: .tsv, .vcf, .vcf.gz); atomic."""
        descriptions = {name: DESCRIPTIONS.get(name, f"glm score {name}") for name in self.columns}
        return write_variants(self.variants, self.columns, path, descriptions=descriptions)


def score_variants(
    model: Transformer,
    tokenizer: Tokenizer,
    variants: str | os.PathLike[str] | VariantList | Iterable[Any],
    genome: str | os.PathLike[str] | Genome,
    method: str | Sequence[str] = "llr",
    window: int | None = None,
    strands: str = "both",
    layer: int = -1,
    batch_size: int = 16,
    aliases: Mapping[str, str] | None = None,
    on_ref_mismatch: str = "error",
    reuse: bool = True,
    head: Head | None = None,
    progress: bool = False,
) -> VariantScores:
    """Score variants with one or more zero-shot methods ("llr", "embedding"); see the module docstring.

    variants: a VCF/TSV/CSV path, Python rows or a VariantList (read with `read_variants`).
    window: bases per scoring window (default: the model's whole context). strands: "both"
    averages forward and reverse-complement scores, "forward" scores the given strand only.
    layer: hidden layer for the embedding distances (-1: the final one). batch_size: windows per
    forward pass. aliases / on_ref_mismatch: as in `read_variants`. reuse=False computes every
    window in full (slower, same scores). head: a variant head fitted on this model (see
    glm.variant_heads); adds a "head_probability" column (probability of its positive class,
    `head.classes[-1]`) and scores with the window, layer and both strands it was fitted with.
    """
    methods = [method] if isinstance(method, str) else list(method)
    unknown = [name for name in methods if name not in METHODS]
    if unknown or not methods:
        raise InputError(f"method must be among {', '.join(METHODS)}, got {method!r}")
    if head is not None:
        window, layer, strands = _head_settings(head, model, window)
    found = _evaluate(
        model,
        tokenizer,
        variants,
        genome,
        window,
        strands,
        layer,
        batch_size,
        reuse,
        head is not None,
        aliases,
        on_ref_mismatch,
        progress,
    )
    columns: dict[str, np.ndarray] = {}
    if "llr" in methods:
        columns["llr"] = found.llr.mean(axis=1)
        if strands == "both":
            columns["llr_forward"], columns["llr_reverse"] = found.llr[:, 0], found.llr[:, 1]
    if "embedding" in methods:
        columns["embedding_cosine"] = found.cosine.mean(axis=1)
        columns["embedding_l2"] = found.l2.mean(axis=1)
    if head is not None:
        features = _features(found)[:, : len(head.feature_names)]  # a scores-only head uses the first columns
        scored = np.isfinite(features).all(axis=1)
        columns["head_probability"] = np.full(len(features), np.nan)
        if scored.any():
            columns["head_probability"][scored] = head.predict_proba(features[scored])[:, -1]
    columns["window_n"] = found.fraction_n
    return VariantScores(found.variants, columns)


def _head_settings(head: Head, model: Transformer, window: int | None) -> tuple[int, int, str]:
    """(window, layer, strands) a variant head was fitted with; an InputError if it does not fit this model."""
    info = head.info
    if info.get("task") != "variant":
        raise InputError("head: not a variant head (fit one with `cli.py fit-head` or glm.variant_heads)")
    if info.get("model_fingerprint") != model_fingerprint(model):
        raise InputError("head: it was fitted on the features of a different model; refit it for this one")
    if window is not None and window != info["window"]:
        raise InputError(f"window: this head was fitted with {info['window']}-base windows, got {window}")
    return int(info["window"]), int(info["layer"]), "both"


def _features(found: _Evaluation) -> np.ndarray:
    """Rows of FEATURE_SCORES then the strand-averaged embedding delta (NaN rows for unscored variants)."""
    assert found.delta is not None
    return np.column_stack(
        [found.llr, found.llr.mean(axis=1), found.cosine.mean(axis=1), found.l2.mean(axis=1), found.delta.mean(axis=1)]
    )


FEATURE_SCORES = ("llr_forward", "llr_reverse", "llr", "embedding_cosine", "embedding_l2")


def variant_features(
    model: Transformer,
    tokenizer: Tokenizer,
    variants: str | os.PathLike[str] | VariantList | Iterable[Any],
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
    found = _evaluate(
        model,
        tokenizer,
        variants,
        genome,
        window,
        "both",
        layer,
        batch_size,
        True,
        True,
        aliases,
        on_ref_mismatch,
        progress,
    )
    names = [*FEATURE_SCORES, *(f"delta_{i}" for i in range(model.config.width))]
    return _features(found), names, found.variants


def mutagenesis_variants(genome: Genome, contig: str, start: int, end: int) -> VariantList:
    """Every SNV of bases [start, end) of a contig (0-based): three per base; bases other than ACGT are skipped."""
    source = f"<mutagenesis {contig}:{start + 1}-{end}>"
    variants = [
        Variant(contig, start + offset, base, alt, line=start + offset + 1, source=source, contig=contig)
        for offset, base in enumerate(genome.fetch(contig, start, end).upper())
        if base in "ACGT"
        for alt in "ACGT"
        if alt != base
    ]
    if not variants:
        raise InputError(f"region {contig}:{start + 1}-{end} has no A, C, G or T to mutate")
    return VariantList(variants, source=source)


def mutagenesis_matrix(scores: VariantScores, column: str = "llr") -> tuple[np.ndarray, str, np.ndarray]:
    """(1-based positions, reference bases, (positions, 4) scores for alt A/C/G/T) of a mutagenesis table.

    Positions run without gaps from the first to the last variant; cells without a variant
    (the reference base itself, or a base that was not mutated) are NaN, their reference "N".
    """
    variants = scores.variants
    first = min(variant.pos for variant in variants)
    last = max(variant.pos for variant in variants)
    matrix = np.full((last - first + 1, 4), np.nan)
    reference = ["N"] * (last - first + 1)
    for variant, value in zip(variants, scores[column]):
        matrix[variant.pos - first, "ACGT".index(variant.alt)] = value
        reference[variant.pos - first] = variant.ref
    return np.arange(first, last + 1) + 1, "".join(reference), matrix
