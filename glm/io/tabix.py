"""A BGZF VCF writer that indexes as it writes: `.tbi` (tabix), or `.csi` when a contig is too long.

The layout is htslib's: records are binned by their 0-based [start, end) span in a hierarchy of
bins (the smallest 2**14 bases, each level 8 times larger), each bin lists the BGZF virtual-offset
ranges ("chunks") holding its records, and a linear index gives, per 16 kb window, the first
record overlapping it. TBI has 6 levels, so it covers contigs up to 2**29 bases (512 Mb); CSI adds
levels as needed. An index needs the records sorted (contigs contiguous, positions not
decreasing); `IndexedBgzfWriter.unsorted` says where that failed, and then no index is written.

`read_tabix_index` reads either kind back (ours or htslib's) and `TabixIndex.ranges` gives the
virtual-offset ranges that hold every record overlapping some regions: the chunks of every bin
that can hold such a record, past the linear index's floor, merged so that each record is read
once and in file order (`read_ranges`). The ranges may hold other records too: the caller filters.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from Bio import bgzf

from glm.errors import InputError
from glm.io.files import atomic_file

INDEX_SUFFIXES = (".tbi", ".csi")  # the index beside a BGZF file: tabix, or CSI for long contigs

MIN_SHIFT = 14
TBI_DEPTH = 5
_VCF_CONF = struct.pack("<6i", 2, 1, 2, 0, ord("#"), 0)  # format VCF, columns seq/begin/end, meta '#', skip 0
# The empty block that ends a BGZF file (the SAM specification's; htslib checks for it).
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
IndexRecord = tuple[str, int, int, int, int]  # contig, 0-based start, end, virtual offsets of its line


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


def bins_overlapping(start: int, end: int, depth: int, min_shift: int = MIN_SHIFT) -> Iterator[int]:
    """Every bin that can hold a record overlapping [start, end), root first (htslib's reg2bins)."""
    end = max(end, start + 1) - 1
    for level in range(depth + 1):
        first, shift = ((1 << 3 * level) - 1) // 7, min_shift + 3 * (depth - level)
        yield from range(first + (start >> shift), first + (end >> shift) + 1)


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

    A file can be written in parts (glm.scoring.stream: one per shard, on several processes):
    a part is written with `index_stem=None`, which keeps its records' spans and offsets in
    `records` instead of indexing them, and `append(part, records)` copies it into the whole file,
    its offsets moved to where it lands. `end_block()` ends a BGZF block where a part would begin,
    so a file written in one go and one joined from parts hold the same bytes.
    """

    def __init__(self, path: Path, index_stem: Path | None, lengths: dict[str, int] | None = None, csi: bool = False):
        self._file = open(path, "wb")  # noqa: SIM115 - closed by close(), through the BGZF writer
        self._out = bgzf.BgzfWriter(fileobj=self._file)
        self._depth = depth_for(max((lengths or {}).values(), default=0))
        self._csi = csi or self._depth > TBI_DEPTH
        stem = index_stem or path
        self.index_path = stem.with_name(stem.name + (".csi" if self._csi else ".tbi"))
        self.records: list[IndexRecord] | None = [] if index_stem is None else None
        self._contigs: dict[str, _ContigIndex] = {}
        self._current: str | None = None
        self._last_start = 0
        self.unsorted = ""  # where the records stopped being sorted, if they did

    def header(self, line: str) -> None:
        self._out.write(line.encode() + b"\n")

    def record(self, line: str, contig: str, start: int, end: int) -> None:
        begin_offset = self._out.tell()
        self._out.write(line.encode() + b"\n")
        if self.records is not None:
            self.records.append((contig, start, end, begin_offset, self._out.tell()))
        else:
            self._index(contig, start, end, begin_offset, self._out.tell())

    def end_block(self) -> None:
        """End the BGZF block being filled (if any), so what follows starts a new one."""
        if self._out.tell() & 0xFFFF:  # bytes wait in the block (the offset within it is their count)
            self._out.flush()

    def append(self, part: Path, records: Iterable[IndexRecord]) -> None:
        """Copy a part written by an IndexedBgzfWriter(index_stem=None), indexing its `records` where it lands."""
        self.end_block()
        shift = self._out.tell()  # a block boundary: (file offset << 16) | 0
        data = part.read_bytes()
        assert data.endswith(BGZF_EOF), f"{part} is a whole BGZF file"
        self._file.write(data[: -len(BGZF_EOF)])
        for contig, start, end, begin_offset, end_offset in records:
            self._index(contig, start, end, begin_offset + shift, end_offset + shift)

    def _index(self, contig: str, start: int, end: int, begin_offset: int, end_offset: int) -> None:
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
        self._contigs[contig].add(bin_of(start, end, self._depth), start, end, begin_offset, end_offset)

    def close(self) -> Path | None:
        """Finish the BGZF file; write and return the index (None when the records were not sorted or
        this is a part)."""
        self._out.close()
        if self.unsorted or self.records is not None:
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


_REINDEX = "re-index it with `tabix -f -p vcf`, or delete it to read the whole file"


@dataclass
class TabixIndex:
    """A `.tbi` or `.csi` read back: per sequence name its bins' chunks (and for `.tbi` the linear index)."""

    path: Path
    min_shift: int
    depth: int
    bins: dict[str, dict[int, list[tuple[int, int]]]]
    linear: dict[str, list[int]]

    @property
    def names(self) -> list[str]:
        """The sequence names of the indexed file, in file order."""
        return list(self.bins)

    def ranges(self, regions: Iterable[tuple[str, int, int]]) -> list[tuple[int, int]]:
        """Sorted, disjoint [begin, end) virtual-offset ranges holding every record overlapping a region.

        Regions are (sequence name as indexed, 0-based start, end); names the index lacks hold nothing.
        """
        found = []
        for name, start, end in regions:
            bins, linear = self.bins.get(name, {}), self.linear.get(name)
            floor = linear[min(start >> self.min_shift, len(linear) - 1)] if linear else 0
            for number in bins_overlapping(start, end, self.depth, self.min_shift):
                found += [chunk for chunk in bins.get(number, ()) if chunk[1] > floor]
        merged: list[tuple[int, int]] = []
        for begin, end in sorted(found):
            if merged and begin <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((begin, end))
        return merged


def tabix_index_of(path: Path) -> Path | None:
    """The `.tbi` (or else `.csi`) beside a BGZF file, or None; one older than the file is an InputError."""
    for suffix in INDEX_SUFFIXES:
        index = path.with_name(path.name + suffix)
        if index.is_file():
            if index.stat().st_mtime_ns < path.stat().st_mtime_ns:
                raise InputError(
                    f"index: older than {path.name}, which changed after it was indexed; {_REINDEX}", index
                )
            return index
    return None


def read_tabix_index(path: Path, data_size: int) -> TabixIndex:
    """Read a `.tbi` or `.csi` made for a VCF of `data_size` compressed bytes; a corrupt one is an InputError."""
    try:
        reader = _Fields(gzip.decompress(path.read_bytes()))  # BGZF is gzip in many members
        magic = reader.take(4)
        if magic == b"TBI\1":
            min_shift, depth, n_names = MIN_SHIFT, TBI_DEPTH, reader.count()
            names = _sequence_names(reader)
        elif magic == b"CSI\1":
            min_shift, depth, aux = reader.count(), reader.count(), reader.count()
            names = _sequence_names(reader, reader.pos + aux)
            n_names = reader.count()
        else:
            raise ValueError("neither TBI nor CSI")
        if n_names != len(names) or not 10 <= min_shift <= 30 or not 0 <= depth <= 12:
            raise ValueError("inconsistent header")
        index = TabixIndex(path, min_shift, depth, {}, {})
        last_bin = ((1 << 3 * (depth + 1)) - 1) // 7 - 1  # htslib's pseudo-bin of counts comes after it
        for name in names:
            bins = index.bins[name] = {}
            for _ in range(reader.count()):
                number = reader.unsigned()
                if magic == b"CSI\1":
                    reader.take(8)  # the bin's loffset: only an optimisation, not used
                values = reader.offsets(2 * reader.count())
                if number > last_bin:
                    continue
                bins[number] = list(zip(values[::2], values[1::2]))
                if any(begin > end or end >> 16 > data_size for begin, end in bins[number]):
                    raise ValueError(f"a chunk of {name!r} points outside the VCF")
            if magic == b"TBI\1":
                index.linear[name] = list(reader.offsets(reader.count()))
    except (ValueError, OSError, EOFError, zlib.error, struct.error) as error:
        raise InputError(f"index: not a readable tabix (.tbi) or CSI index ({error}); {_REINDEX}", path) from None
    return index


# What Bio.bgzf raises on a bad block: bad magic (ValueError), a wrong size (RuntimeError), bad deflate data.
BGZF_ERRORS = (ValueError, RuntimeError, OSError, EOFError, zlib.error)


def read_ranges(path: Path, ranges: list[tuple[int, int]], index: Path) -> Iterator[bytes]:
    """The lines of a BGZF file that start inside each [begin, end) virtual-offset range, in order.

    An offset that is not in the file (the `index` does not fit it) is an InputError naming the index;
    a corrupt or truncated block met while reading is one naming the file.
    """
    with bgzf.BgzfReader(path, "rb") as handle:
        for begin, end in ranges:
            try:
                handle.seek(begin)
            except BGZF_ERRORS as error:
                raise InputError(f"index: offset {begin} is not in {path.name} ({error}); {_REINDEX}", index) from None
            while handle.tell() < end:
                try:
                    line = handle.readline()
                except BGZF_ERRORS as error:
                    raise InputError(f"not a complete BGZF file (corrupt block: {error})", path) from None
                if not line:
                    break
                yield line


class _Fields:
    """Little-endian fields read in turn from the bytes of an index."""

    def __init__(self, raw: bytes):
        self.raw, self.pos = raw, 0

    def take(self, size: int) -> bytes:
        if self.pos + size > len(self.raw):
            raise ValueError("truncated")
        self.pos += size
        return self.raw[self.pos - size : self.pos]

    def count(self) -> int:
        value = struct.unpack("<i", self.take(4))[0]
        if value < 0:
            raise ValueError("a negative count")
        return value

    def unsigned(self) -> int:
        return struct.unpack("<I", self.take(4))[0]

    def offsets(self, count: int) -> tuple[int, ...]:
        return struct.unpack(f"<{count}Q", self.take(8 * count))


def _sequence_names(reader: _Fields, end: int | None = None) -> list[str]:
    """The tabix header (a VCF's, else an error) and its sequence names (which end at byte `end` of a CSI)."""
    fmt, column_seq, column_begin = struct.unpack("<3i", reader.take(12))
    reader.take(12)  # end column, meta character, lines to skip
    if fmt & 0xFFFF != 2 or (column_seq, column_begin) != (1, 2):
        raise ValueError("not made for a VCF (tabix -p vcf)")
    names = reader.take(reader.count()).split(b"\0")
    if (end is not None and reader.pos != end) or names[-1]:
        raise ValueError("malformed sequence names")
    return [name.decode("ascii", "replace") for name in names[:-1]]
