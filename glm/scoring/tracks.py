"""Per-base tracks of a region: log P(base | context) from one pass per window, or the llr of every SNV.

Two methods, each a few float32 values per base (NaN where a base cannot be scored):

- "logprob" (cheap): one forward pass per window over the reference gives, at every position, the
  model's distribution of the next k-mer token. For k > 1 the distribution of one base is that
  token distribution marginalised in the base's phase: P(base j = b | the token's bases 0..j-1,
  the context) sums the k-mers with those first bases and b at j over the ones with those first
  bases (`kmer_base_log_probs`), so the log-probabilities of a token's reference bases add up to
  the token's. Tracks `logp_A`, `logp_C`, `logp_G`, `logp_T` and `logp_ref` (of the reference base).
  `logp_X - logp_ref` is a cheap stand-in for the llr of the SNV to X.
- "llr" (exact): the scorer's llr of each of the three SNVs (glm.scoring.zero_shot, shared windows
  and prefix reuse). Tracks `llr_A` .. `llr_T` (0 at the reference base) and `llr_mean` (of the three).

With strands "both" (the plan's default) both methods average the forward strand and the reverse
strand, read as a genome of its own (glm.scoring.windows.ReverseStrand).

Windows of the logprob method lie on a grid fixed by the contig, not by the region: window i of
a strand starts at base i * step (step: half a window, in whole tokens) and keeps the bases of
its second half (window 0 keeps all of its bases), so every base is predicted from at least half
a window of context once the contig allows it, and a base gets the same value whatever region
asked for it. A base is absent when it is N (or IUPAC), when a base before it in its own token
is, or when its token is not a whole k-mer (the last length mod k bases of a contig, on each
strand); with both strands a base needs both.

`piece_spans` cuts each region into pieces of PIECE bases on a grid of the contig, and each piece
is computed on its own (`track_piece`), so the values do not depend on how the pieces are shared.
`write_tracks` makes each piece a shard (glm.io.shards): process r of W computes pieces r, r + W,
... into `OUT.parts/` (a .npy of its values each), and rank 0 joins them in order into the track
files; one process goes through the same parts, so the files are the same bytes on any number of
processes, and `resume` keeps the pieces a killed run finished (the manifest must match: genome,
model, options, method, regions, piece size, output kind).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from glm.alphabet import AMBIGUOUS, base_codes
from glm.config import TrackMethod
from glm.errors import check_choice
from glm.io.coordinates import format_region
from glm.io.genome import Genome
from glm.io.progress import progress_bar
from glm.io.shards import ONE_PROCESS, PartsFolder, Ranks, file_identity
from glm.io.tracks import TRACK_NAMES, TrackWriter, track_format
from glm.model.batching import pad_batch, with_separator
from glm.model.checkpoint import inference_autocast, model_fingerprint
from glm.model.likelihood import float32_logits
from glm.model.tokenizers import KmerTokenizer
from glm.model.transformer import Transformer
from glm.scoring.plan import ScoringPlan
from glm.scoring.table import mutagenesis_variants
from glm.scoring.windows import ReverseStrand
from glm.scoring.zero_shot import scored_chunks
from glm.version import __version__

DESCRIPTIONS = {
    "logp": "log P({base} | context) in nats from one pass per window",
    "logp_ref": "log P(reference base | context) in nats",
    "llr": "llr of the SNV to {base} (log P(alt window) - log P(ref window), nats; 0 at REF)",
    "llr_mean": "mean llr of the three SNVs at the base (nats)",
}
PIECE = 1 << 16  # bases computed together; pieces lie on a grid of the contig
KEPT = 100_000  # a first region up to this long keeps its values in the report (for a figure)
LOGIT_BUDGET = 1 << 22  # logits (rows x vocabulary) held at once by the logprob method
PART = ".npy"  # a piece's values in OUT.parts/
Span = tuple[str, int, int]  # contig, 0-based start, end


@dataclass
class TrackPiece:
    """Values of bases [start, start + len(values)) of a contig: (bases, tracks) float32, NaN where absent."""

    contig: str
    start: int
    values: np.ndarray


def track_description(name: str) -> str:
    """What a track holds, in a line."""
    if name in DESCRIPTIONS:
        return DESCRIPTIONS[name]
    prefix, _, base = name.partition("_")
    return DESCRIPTIONS[prefix].format(base=base)


def piece_spans(regions: Sequence[Span], piece: int = PIECE) -> Iterator[Span]:
    """The pieces of the regions, in order: each region cut at the multiples of `piece` of its contig."""
    for contig, start, end in regions:
        for cell in range(start - start % piece, end, piece):
            yield contig, max(cell, start), min(cell + piece, end)


def track_piece(
    model: Transformer, tokenizer: KmerTokenizer, genome: Genome, span: Span, method: TrackMethod, plan: ScoringPlan
) -> np.ndarray:
    """(bases, tracks) float32 values of the bases of `span` (contig, start, end), NaN where absent."""
    check_choice("method", method, TrackMethod)
    compute = _logprob_piece if method == "logprob" else _llr_piece
    return compute(model, tokenizer, genome, *span, plan)


def track_pieces(
    model: Transformer,
    tokenizer: KmerTokenizer,
    genome: Genome,
    regions: Sequence[Span],
    method: TrackMethod,
    plan: ScoringPlan,
    piece: int = PIECE,
) -> Iterator[TrackPiece]:
    """The tracks of `method` ("logprob" or "llr") over regions (contig, 0-based start, end), piece by piece.

    Regions are visited as given (sort and merge them first for a bigWig: `sorted_regions`).
    """
    for span in piece_spans(regions, piece):
        yield TrackPiece(span[0], span[1], track_piece(model, tokenizer, genome, span, method, plan))


@dataclass
class TrackReport:
    """What write_tracks wrote: the files, the regions, and how many bases got a value."""

    files: list[str]
    regions: list[tuple[str, int, int]]
    bases: int
    scored: int
    first_values: np.ndarray | None = None  # (bases, tracks) of the first region, when at most KEPT bases

    def summary(self) -> str:
        shown = ", ".join(format_region(*region) for region in self.regions[:3]) + (
            ", ..." if len(self.regions) > 3 else ""
        )
        if not self.scored:
            lines = [f"no base of {shown} can be scored (N, or contig edges that do not fit): no intervals written"]
        else:
            lines = [f"{self.scored:,} of {self.bases:,} bases of {shown} scored (the others: N or contig edges)"]
        return "\n".join(lines + [f"  -> {name}" for name in self.files])


def write_tracks(
    model: Transformer,
    tokenizer: KmerTokenizer,
    genome: Genome,
    regions: Sequence[Span],
    out: str,
    method: TrackMethod,
    plan: ScoringPlan,
    model_name: str,
    *,
    ranks: Ranks = ONE_PROCESS,
    resume: bool = False,
    piece: int = PIECE,
) -> TrackReport | None:
    """Compute the tracks of `method` over the regions and write them (bigWig or bedGraph by out's suffix).

    One file per track (glm.io.tracks.track_paths); model_name goes into each track's description.
    `ranks`: the processes sharing the pieces (glm.training.processes; this one alone by default);
    `resume`: keep the pieces an interrupted run finished in OUT.parts/. Rank 0 writes the files
    and returns the report; the other ranks return None.
    """
    check_choice("method", method, TrackMethod)
    names = TRACK_NAMES[method]
    strands = "mean of both strands" if plan.n_strands == 2 else "forward strand"
    descriptions = {name: f"glm {track_description(name)}, {strands}; model {model_name}" for name in names}
    regions = sorted_regions(regions, genome)
    # Every rank makes the writer (pyBigWig and the outputs checked) before the work, so all stop alike.
    writer = TrackWriter(out, names, descriptions, genome.lengths)
    identity = {
        "genome": file_identity(genome.path),
        "model": model_fingerprint(model),
        "options": {**plan.identity(), "method": method, "piece": piece},
        "regions": [list(region) for region in regions],
        "output kind": track_format(out),
        "glm version": __version__,
    }
    folder = PartsFolder(Path(out), identity, ranks, resume)
    spans = list(piece_spans(regions, piece))

    def compute(_: int, span: Span, path: Path) -> None:
        with open(path, "wb") as handle:
            np.save(handle, track_piece(model, tokenizer, genome, span, method, plan))

    with folder.removed_on_bad_input():
        folder.compute(_followed(spans, plan.progress and ranks.rank == 0), PART, compute)
        if ranks.rank != 0:
            return None
        report = _join(folder, spans, writer, regions)
    folder.remove()
    return report


def _followed(spans: Sequence[Span], enabled: bool) -> Iterator[Span]:
    """The spans, a progress bar of their bases advancing as each is done (or found done)."""
    total = sum(end - start for _, start, end in spans)
    with progress_bar(total, "track", "bases", enabled=enabled, scale=True) as bar:
        for span in spans:
            yield span
            bar.update(span[2] - span[1])


def _join(folder: PartsFolder, spans: Iterable[Span], writer: TrackWriter, regions: list[Span]) -> TrackReport:
    """The parts, in order, into the track files; the report keeps the first region's values (up to KEPT bases)."""
    first_length = regions[0][2] - regions[0][1] if regions else 0
    kept: list[np.ndarray] = []
    with writer:
        for number, (contig, start, _) in enumerate(spans):
            values = np.load(folder.part(number, PART))
            writer.add(contig, start, values)
            if first_length <= KEPT and sum(map(len, kept)) < first_length:
                kept.append(values)
    first = np.concatenate(kept) if kept else None
    total = sum(end - start for _, start, end in regions)
    return TrackReport([str(path) for path in writer.written], regions, total, writer.intervals, first)


def sorted_regions(regions: Sequence[Span], genome: Genome) -> list[Span]:
    """Regions in the genome's contig order and by start, overlapping or touching ones merged."""
    order = {name: index for index, name in enumerate(genome.names)}
    merged: list[Span] = []
    for contig, start, end in sorted(regions, key=lambda region: (order[region[0]], region[1])):
        if merged and merged[-1][0] == contig and start <= merged[-1][2]:
            merged[-1] = (contig, merged[-1][1], max(merged[-1][2], end))
        else:
            merged.append((contig, start, end))
    return merged


def _logprob_piece(
    model: Transformer, tokenizer: KmerTokenizer, genome: Genome, contig: str, start: int, end: int, plan: ScoringPlan
) -> np.ndarray:
    """(end - start, 5): logp_A .. logp_T and logp_ref, the strands averaged as the plan says."""
    forward = strand_log_probs(model, tokenizer, genome, contig, start, end, plan)
    if plan.n_strands == 2:
        length = genome.lengths[contig]
        reverse = strand_log_probs(model, tokenizer, ReverseStrand(genome), contig, length - end, length - start, plan)
        forward = (forward + reverse[::-1, ::-1]) / 2  # position p is length-1-p there, base b is 3-b
    codes = base_codes(genome.fetch(contig, start, end)).astype(np.int64)
    reference = np.full(len(codes), np.nan, dtype=np.float32)
    known = codes < 4
    reference[known] = forward[np.flatnonzero(known), codes[known]]
    return np.column_stack([forward, reference]).astype(np.float32)


@dataclass(frozen=True)
class _Grid:
    """The logprob windows of a strand: window i covers bases [i * step, i * step + bases)."""

    bases: int  # bases per window: whole tokens
    step: int  # bases between window starts: half the window's tokens

    @classmethod
    def of(cls, window: int, tokenizer: KmerTokenizer) -> _Grid:
        k, stride = tokenizer.k, tokenizer.stride
        n_tokens = (window - k) // stride + 1
        return cls(k + (n_tokens - 1) * stride, max(n_tokens // 2, 1) * stride)

    def keeper(self, position: int) -> int:
        """The window that keeps a base: the first whose second half holds it (window 0 keeps its whole span)."""
        return 0 if position < self.bases else (position - self.bases) // self.step + 1

    def kept(self, index: int) -> tuple[int, int]:
        first = index * self.step
        return (first if index == 0 else first + self.bases - self.step), first + self.bases


def strand_log_probs(
    model: Transformer,
    tokenizer: KmerTokenizer,
    view: Genome | ReverseStrand,
    contig: str,
    start: int,
    end: int,
    plan: ScoringPlan,
) -> np.ndarray:
    """(end - start, 4) float32 log P(base b at p | the bases before p on this strand), NaN where absent."""
    grid = _Grid.of(plan.window, tokenizer)
    values = np.full((end - start, 4), np.nan, dtype=np.float32)
    windows = range(grid.keeper(start), grid.keeper(end - 1) + 1)
    device = next(model.parameters()).device
    with torch.inference_mode(), inference_autocast(device, plan.precision):
        for first in range(0, len(windows), plan.batch_size):
            chosen = windows[first : first + plan.batch_size]
            batch = [_window_targets(tokenizer, view, contig, grid, index, (start, end), plan) for index in chosen]
            _fill(model, tokenizer, [job for job in batch if job is not None], values, start)
    return values


@dataclass
class _Targets:
    """One window and which of its tokens' bases it keeps."""

    ids: np.ndarray  # first token, then the window's tokens
    tokens: np.ndarray  # (n,) token indices whose bases are kept (0-based in the window's tokens)
    codes: np.ndarray  # (n, k) base codes of those tokens (0-3; AMBIGUOUS)
    keep: np.ndarray  # (n, k) bool: base j of token i is kept and scorable
    positions: np.ndarray  # (n, k) strand positions of those bases


def _window_targets(
    tokenizer: KmerTokenizer,
    view: Genome | ReverseStrand,
    contig: str,
    grid: _Grid,
    index: int,
    span: tuple[int, int],
    plan: ScoringPlan,
) -> _Targets | None:
    """The tokens of window `index` that introduce bases it keeps within [start, end); None if it keeps none."""
    k, stride = tokenizer.k, tokenizer.stride
    first = index * grid.step
    bases = view.fetch(contig, first, min(first + grid.bases, view.lengths[contig]))
    codes = base_codes(bases)
    n_full = (len(codes) - k) // stride + 1 if len(codes) >= k else 0  # a tail shorter than k is never scored
    kept_from, kept_to = grid.kept(index)
    kept_from, kept_to = max(kept_from, span[0]), min(kept_to, span[1])
    tokens = np.arange(n_full)
    phase = np.arange(k)
    offsets = tokens[:, None] * stride + phase  # (tokens, k) base offsets in the window
    new = (phase >= k - stride) | (tokens[:, None] == 0)  # bases a token adds to those before it
    keep = new & (offsets + first >= kept_from) & (offsets + first < kept_to)
    token_codes = codes[offsets] if n_full else np.zeros((0, k), dtype=np.uint8)
    known = np.cumprod(token_codes != AMBIGUOUS, axis=1).astype(bool)  # the base and those before it in its token
    keep &= known
    wanted = np.flatnonzero(keep.any(axis=1))
    if not len(wanted):
        return None
    ids = with_separator(tokenizer.encode(bases).ids[: wanted[-1] + 1], plan.first_token)
    return _Targets(ids, wanted, token_codes[wanted], keep[wanted], offsets[wanted] + first)


def _fill(model: Transformer, tokenizer: KmerTokenizer, batch: list[_Targets], values: np.ndarray, start: int) -> None:
    """Run one batch of windows and write the per-base log-probabilities of their kept bases into `values`."""
    if not batch:
        return
    device = next(model.parameters()).device
    pieces = [job.ids[:-1] for job in batch]  # the state at position t predicts token t (after the first token)
    ids = torch.from_numpy(pad_batch(pieces)).to(device)
    final = model.hidden_states(ids)[-1]  # (windows, T, width)
    rows = torch.from_numpy(np.concatenate([np.full(len(job.tokens), n) for n, job in enumerate(batch)])).to(device)
    columns = torch.from_numpy(np.concatenate([job.tokens for job in batch])).to(device)
    states = final[rows, columns]  # (targets, width)
    codes = torch.from_numpy(np.concatenate([job.codes for job in batch]).astype(np.int64) % 4).to(device)
    kmers = tokenizer.kmer_ids()
    per_slice = max(LOGIT_BUDGET // model.config.vocab_size, 1)
    parts = []
    for row in range(0, len(states), per_slice):
        logits = float32_logits(model, states[row : row + per_slice])[:, kmers.start : kmers.stop]
        parts.append(kmer_base_log_probs(logits, codes[row : row + per_slice]))
    result = torch.cat(parts).cpu().numpy()  # (targets, k, 4): one copy back per batch of windows
    keep = np.concatenate([job.keep for job in batch])
    positions = np.concatenate([job.positions for job in batch])
    values[positions[keep] - start] = result[keep]


def kmer_base_log_probs(kmer_logits: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """(n, k, 4): log P(base j = b | bases 0..j-1 of the token) for each phase j, from k-mer logits.

    kmer_logits: (n, 4**k) logits of the full k-mers (first base the most significant digit);
    codes: (n, k) the token's bases (0-3). Phase j conditions on codes[:, :j] and marginalises
    the bases after j: a (n, 4**(j+1)) table of summed masses, read at the token's own prefix.
    """
    n, k = codes.shape
    rows = torch.arange(n, device=codes.device)
    digits = 4 ** torch.arange(k - 1, -1, -1, device=codes.device)
    masses, phases = kmer_logits, []
    for phase in range(k - 1, -1, -1):
        prefix = (codes[:, :phase] * digits[k - phase :]).sum(1)  # bases 0..phase-1 as a number
        blocks = masses.reshape(n, 4**phase, 4)
        phases.append(torch.log_softmax(blocks[rows, prefix], dim=-1))
        masses = torch.logsumexp(blocks, dim=-1)  # (n, 4**phase): base `phase` marginalised
    return torch.stack(phases[::-1], dim=1)


def _llr_piece(
    model: Transformer, tokenizer: KmerTokenizer, genome: Genome, contig: str, start: int, end: int, plan: ScoringPlan
) -> np.ndarray:
    """(end - start, 5): the llr of the SNV to A, C, G, T (0 at the reference base) and their mean."""
    values = np.full((end - start, 5), np.nan, dtype=np.float32)
    codes = base_codes(genome.fetch(contig, start, end)).astype(np.int64)
    known = np.flatnonzero(codes < 4)
    if not len(known):
        return values
    values[known, codes[known]] = 0.0
    variants = mutagenesis_variants(genome, contig, start, end)
    llr_sum = np.zeros(end - start)
    for chunk, columns in scored_chunks(model, tokenizer, variants, genome, plan):
        where = np.array([variant.pos - start for variant in chunk])
        alts = np.array(["ACGT".index(variant.alt) for variant in chunk])
        values[where, alts] = columns["llr"]
        np.add.at(llr_sum, where, columns["llr"])
    values[known, 4] = llr_sum[known] / 3
    return values
