"""A BGZF VCF writer that indexes as it writes: `.tbi` (tabix), or `.csi` when a contig is too long.

The layout is htslib's: records are binned by their 0-based [start, end) span in a hierarchy of
bins (the smallest 2**14 bases, each level 8 times larger), each bin lists the BGZF virtual-offset
ranges ("chunks") holding its records, and a linear index gives, per 16 kb window, the first
record overlapping it. TBI has 6 levels, so it covers contigs up to 2**29 bases (512 Mb); CSI adds
levels as needed. An index needs the records sorted (contigs contiguous, positions not
decreasing); `IndexedBgzfWriter.unsorted` says where that failed, and then no index is written.
"""

from __future__ import annotations

import struct
from pathlib import Path

from Bio import bgzf

from glm.io.files import atomic_file

MIN_SHIFT = 14
TBI_DEPTH = 5
_VCF_CONF = struct.pack("<6i", 2, 1, 2, 0, ord("#"), 0)  # format VCF, columns seq/begin/end, meta '#', skip 0


def bin_of(start: int, end: int, depth: int) -> int:
    """The smallest bin holding [start, end) (htslib's reg2bin)."""
    end -= 1
    shift, first = MIN_SHIFT, ((1 << depth * 3) - 1) // 7
    for level in range(depth, 0, -1):
        if start >> shift == end >> shift:
            return first + (start >> shift)
        first -= 1 << (level - 1) * 3
        shift += 3
    return 0


def depth_for(longest: int) -> int:
    """Levels below the root that bins need for a contig of `longest` bases (5 = the TBI layout)."""
    depth = TBI_DEPTH
    while longest > 1 << (MIN_SHIFT + 3 * depth):
        depth += 1
    return depth


class _ContigIndex:
    def __init__(self) -> None:
        self.bins: dict[int, list[list[int]]] = {}
        self.linear: list[int] = []

    def add(self, bin_number: int, start: int, end: int, begin_offset: int, end_offset: int) -> None:
        chunks = self.bins.setdefault(bin_number, [])
        if chunks and chunks[-1][1] == begin_offset:
            chunks[-1][1] = end_offset  # the next record of this bin follows on: one longer chunk
        else:
            chunks.append([begin_offset, end_offset])
        last_window = (end - 1) >> MIN_SHIFT
        if len(self.linear) <= last_window:
            self.linear += [0] * (last_window + 1 - len(self.linear))
        for window in range(start >> MIN_SHIFT, last_window + 1):
            if not self.linear[window]:
                self.linear[window] = begin_offset

    def filled_linear(self) -> list[int]:
        """The linear index with empty windows taking the offset of the window before them."""
        filled = list(self.linear)
        for window in range(1, len(filled)):
            filled[window] = filled[window] or filled[window - 1]
        return filled


class IndexedBgzfWriter:
    """Write text lines to a BGZF file, indexing each record line by (contig, start, end).

    Use `header(line)` for header lines and `record(line, contig, start, end)` for data lines, then
    `close()`: it writes the index named after `index_stem` (`.tbi`, or `.csi` when `csi` or a
    contig in `lengths` exceeds 512 Mb) unless the records were not sorted. The BGZF file is
    written to `path` directly (wrap it in atomic_file); the index atomically.
    """

    def __init__(self, path: Path, index_stem: Path, lengths: dict[str, int] | None = None, csi: bool = False):
        self._out = bgzf.BgzfWriter(path, "wb")
        self._depth = depth_for(max((lengths or {}).values(), default=0))
        self._csi = csi or self._depth > TBI_DEPTH
        self.index_path = index_stem.with_name(index_stem.name + (".csi" if self._csi else ".tbi"))
        self._contigs: dict[str, _ContigIndex] = {}
        self._current: str | None = None
        self._last_start = 0
        self.unsorted = ""  # where the records stopped being sorted, if they did

    def header(self, line: str) -> None:
        self._out.write(line.encode() + b"\n")

    def record(self, line: str, contig: str, start: int, end: int) -> None:
        begin_offset = self._out.tell()
        self._out.write(line.encode() + b"\n")
        if self.unsorted:
            return
        if contig != self._current:
            if contig in self._contigs:
                self.unsorted = f"contig {contig!r} appears again after other contigs"
                return
            self._contigs[contig], self._current, self._last_start = _ContigIndex(), contig, 0
        if start < self._last_start:
            self.unsorted = f"{contig}:{start + 1} comes after {contig}:{self._last_start + 1}"
            return
        self._last_start = start
        end = max(end, start + 1)
        if end > 1 << (MIN_SHIFT + 3 * self._depth):
            self.unsorted = f"{contig}:{start + 1} is past the longest contig the index was sized for"
            return
        self._contigs[contig].add(bin_of(start, end, self._depth), start, end, begin_offset, self._out.tell())

    def close(self) -> Path | None:
        """Finish the BGZF file; write and return the index (None when the records were not sorted)."""
        self._out.close()
        if self.unsorted:
            return None
        with atomic_file(self.index_path) as partial:
            index = bgzf.BgzfWriter(partial, "wb")
            index.write(self._csi_bytes() if self._csi else self._tbi_bytes())
            index.close()
        return self.index_path

    def _names(self) -> bytes:
        names = b"".join(name.encode() + b"\0" for name in self._contigs)
        return _VCF_CONF + struct.pack("<i", len(names)) + names

    def _tbi_bytes(self) -> bytes:
        parts = [b"TBI\1", struct.pack("<i", len(self._contigs)), self._names()]
        for contig in self._contigs.values():
            parts.append(struct.pack("<i", len(contig.bins)))
            for number, chunks in contig.bins.items():
                parts.append(struct.pack("<Ii", number, len(chunks)))
                parts += [struct.pack("<QQ", *chunk) for chunk in chunks]
            linear = contig.filled_linear()
            parts.append(struct.pack(f"<i{len(linear)}Q", len(linear), *linear))
        return b"".join(parts)

    def _csi_bytes(self) -> bytes:
        names = self._names()
        parts = [b"CSI\1", struct.pack("<3i", MIN_SHIFT, self._depth, len(names)), names]
        parts.append(struct.pack("<i", len(self._contigs)))
        for contig in self._contigs.values():
            linear = contig.filled_linear()
            parts.append(struct.pack("<i", len(contig.bins)))
            for number, chunks in contig.bins.items():
                window = self._first_window(number)
                smallest = min(chunk[0] for chunk in chunks)
                loffset = min(linear[window], smallest) if window < len(linear) else smallest
                parts.append(struct.pack("<IQi", number, loffset, len(chunks)))
                parts += [struct.pack("<QQ", *chunk) for chunk in chunks]
        return b"".join(parts)

    def _first_window(self, number: int) -> int:
        """The first 16 kb window a bin covers."""
        first, level = 0, 0
        while number >= first + (1 << 3 * level):
            first += 1 << 3 * level
            level += 1
        return (number - first) << 3 * (self._depth - level)
