"""1-based coordinates at the file boundary, 0-based half-open inside: the one place they meet.

VCF and TSV positions and region strings (`chr17:43044295-43125483`) are 1-based and inclusive;
every position inside glm is 0-based and every interval half-open. Readers convert with
`to_zero_based`, writers and messages with `to_one_based`, and region strings go through
`parse_region` / `format_region`. Nothing else adds or subtracts the one.
"""

from __future__ import annotations

from collections.abc import Mapping

from glm.errors import InputError


def to_zero_based(pos1: int) -> int:
    """A 1-based position (VCF POS, a region start) -> the 0-based index of that base."""
    return pos1 - 1


def to_one_based(pos0: int) -> int:
    """A 0-based index -> the 1-based position written in files and messages."""
    return pos0 + 1


def format_region(contig: str, start: int, end: int) -> str:
    """0-based half-open [start, end) -> "contig:START-END", 1-based inclusive."""
    return f"{contig}:{to_one_based(start)}-{end}"


def parse_region(text: str, lengths: Mapping[str, int], source: str | None = None) -> tuple[str, int, int]:
    """A region string "chr:start-end" (1-based, inclusive) as (contig, start, end), 0-based half-open.

    `lengths` maps contig names to lengths (a Genome's `lengths`); `source` names the genome in
    messages. "chr" alone is the whole contig; commas in numbers are allowed ("chr1:1,000-2,000").
    """
    name, _, span = text.rpartition(":") if ":" in text else (text, "", "")
    if name not in lengths:
        names = list(lengths)
        shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
        raise InputError(f"region {text!r}: unknown contig {name!r}; contigs in this genome: {shown}", source)
    length = lengths[name]
    if not span:
        return name, 0, length
    first, dash, last = span.replace(",", "").partition("-")
    if not (dash and first.isdigit() and last.isdigit()):
        raise InputError(f"region {text!r}: expected CONTIG:START-END with 1-based inclusive positions")
    start, end = to_zero_based(int(first)), int(last)
    if not 0 <= start < end <= length:
        raise InputError(f"region {text!r}: must lie within 1-{length} of {name} and have START <= END")
    return name, start, end
