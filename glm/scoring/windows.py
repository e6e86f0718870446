"""Scoring windows: the equal-length reference and alternative windows of a variant, on either strand.

`reference_windows` places the event near the middle of a window of the genome, in the k-mer
phase that lets the two windows share every token before the variant. The reverse strand is a
view of the genome (`ReverseStrand`) on which a mirrored variant (`mirror_variant`) gets its
windows built exactly as on the forward strand, which is what makes strand-averaged scores
invariant to reverse-complementing the genome and the variant.
"""

from __future__ import annotations

import dataclasses

from glm.alphabet import reverse_complement
from glm.errors import InputError
from glm.io.genome import Genome
from glm.io.variants import Variant, contig_list
from glm.model.tokenizers import KmerTokenizer
from glm.model.transformer import Transformer

GRID_FRACTION = 8  # windows snap to a grid of window / 8 bases, so neighbouring variants share them


def default_window(model: Transformer, tokenizer: KmerTokenizer) -> int:
    """The longest window (bases) whose tokens, after the leading SEP, fit the model's context."""
    return tokenizer.k + (model.config.context - 2) * tokenizer.stride


def check_window(window: int, model: Transformer, tokenizer: KmerTokenizer) -> None:
    longest = default_window(model, tokenizer)
    if not tokenizer.k <= window <= longest:
        raise InputError(
            f"window: {window} bases does not fit this model; use {tokenizer.k} to {longest} bases "
            f"(context {model.config.context} tokens of {tokenizer.stride} bases)"
        )


def window_grid(window: int, tokenizer: KmerTokenizer) -> int:
    """The grid (bases, a multiple of the stride) that window starts snap to: about window / GRID_FRACTION."""
    return max(tokenizer.stride, window // GRID_FRACTION // tokenizer.stride * tokenizer.stride)


class ReverseStrand:
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


def reference_windows(
    variant: Variant, genome: Genome, window: int, k: int, grid: int | None = None
) -> tuple[str, str, int]:
    """(ref_window, alt_window, variant_offset): equal-length forward-strand windows for scoring.

    `variant_offset` is where REF starts in the window. The window start is chosen so that:
      1. the whole event fits: offset + max(len(ref), len(alt)) <= window (else an InputError:
         the indel is longer than the scoring window);
      2. the window lies inside the contig whenever the contig is at least `window` long: near a
         contig end the window shifts rather than being padded. Only an insertion at the very end
         of a contig, whose ALT would not fit, reaches past the end (padded with N). A contig
         shorter than the window is included whole and padded with N on both sides;
      3. the offset is a multiple of k where 1 and 2 allow it, so ref and alt are tokenized in the
         same k-mer phase and share every token before the variant;
      4. the event sits as near the middle as 1-3 allow. With a `grid` (a multiple of k), the
         start instead snaps down to the grid (plus the variant's phase, pos mod k), so that all
         variants within one grid cell and phase share one reference window; the event then sits
         within grid/2 bases of the middle. A scorer that runs each distinct reference window once
         gains from this.
    The alt window is the ref window with REF replaced by ALT, then length-matched to `window`:
    after a deletion (ALT shorter) the genome bases that follow the ref window are appended (N past
    the contig end); after an insertion the excess is trimmed from the right end. So both windows
    share the identical prefix up to the offset and both contain their whole allele. Bases keep the
    genome's case (soft-masking); the ALT allele is uppercase.
    """
    if window < 1 or k < 1:
        raise ValueError(f"window ({window}) and k ({k}) must be positive")
    if variant.kind == "unsupported":
        reason = variant.status or f"ALT {variant.alt!r} is not a sequence allele"
        raise InputError(f"ALT: cannot build a scoring window: {reason}", variant.source, variant.line)
    contig = variant.contig or variant.chrom
    if contig not in genome:
        raise InputError(
            f"CHROM: contig {contig!r} is not in the genome; {contig_list(genome)}", variant.source, variant.line
        )
    length = genome.lengths[contig]
    span = max(len(variant.ref), len(variant.alt))
    if span > window:
        raise InputError(
            f"ALT: indel longer than the scoring window ({span} bases in REF/ALT, window {window})",
            variant.source,
            variant.line,
        )

    # Starts that keep the event inside the window; and those that keep the window inside the
    # contig, or (short contig) that cover the whole contig.
    fit_low, fit_high = variant.pos + span - window, variant.pos
    edge_low, edge_high = min(0, length - window), max(0, length - window)
    low, high = max(fit_low, edge_low), min(fit_high, edge_high)
    if low > high:  # an insertion at the contig end: containing the event wins; pad as little as phase allows
        low, high = fit_low, min(fit_high, fit_low + k - 1)
    if grid is not None and grid > k:
        if grid % k:
            raise ValueError(f"grid ({grid}) must be a multiple of k ({k})")
        ideal = variant.pos - ((window - span) // 2 - grid // 2) // k * k
        cell = ideal - ideal % grid
        ideal = cell + (variant.pos - cell) % k
    else:
        ideal = variant.pos - ((window - span) // 2) // k * k
    clamped = min(max(ideal, low), high)
    below = clamped - (clamped - variant.pos) % k  # the nearest starts with offset a multiple of k
    phased = [start for start in (below, below + k) if low <= start <= high]
    start = min(phased, key=lambda start: abs(start - clamped)) if phased else clamped
    offset = variant.pos - start
    assert offset >= 0 and offset + span <= window

    ref_window = genome.fetch(contig, start, start + window)
    alt_window = ref_window[:offset] + variant.alt.upper() + ref_window[offset + len(variant.ref) :]
    if len(alt_window) < window:
        alt_window += genome.fetch(contig, start + window, start + window + window - len(alt_window))
    alt_window = alt_window[:window]
    assert len(ref_window) == len(alt_window) == window
    return ref_window, alt_window, offset


def window_fraction_n(sequence: str) -> float:
    """Fraction of N (either case) in a window: callers flag windows that are mostly padding or gaps."""
    if not sequence:
        return 0.0
    return (sequence.count("N") + sequence.count("n")) / len(sequence)
