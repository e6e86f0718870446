"""FASTA indexes as samtools writes them: `.fai` (records, lengths, byte layout) and `.gzi` (BGZF blocks).

A `.fai` line is NAME, LENGTH, OFFSET (byte of the first base), LINEBASES, LINEWIDTH (bases and
bytes per full line), tab-separated. For a BGZF file the offsets are in the decompressed text and
the `.gzi` maps them to compressed blocks: a little-endian uint64 count, then (compressed,
decompressed) uint64 offset pairs of every block after the first. Reading a window touches only
its bytes (plain) or the blocks holding them (BGZF, through Biopython's Bio.bgzf).

Indexes live beside the FASTA when its folder is writable and in the cache (glm.io.files.cache_root)
otherwise. An index older than its FASTA is stale and rebuilt; one that does not parse, or whose
offsets point past the file, is an InputError naming it.
"""

from __future__ import annotations

import bisect
import hashlib
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from Bio import bgzf

from glm.errors import InputError
from glm.io.files import GZIP_MAGIC, atomic_file, cache_root

_WHITESPACE = b" \t\r\n"
HEADER_BYTES = 256  # a gap between two indexed records longer than this is read and checked (check_fai_covers)
TAIL_BYTES = 1 << 16  # what is read after the last indexed record's bases
STALE = "it does not fit the FASTA: delete it and glm rebuilds it"


@dataclass(frozen=True)
class FaiEntry:
    """One record of a `.fai`: where its bases are and how its lines are laid out."""

    name: str
    length: int
    offset: int
    line_bases: int
    line_bytes: int

    def byte(self, position: int) -> int:
        """Byte offset (in the decompressed file) of base `position` (0 <= position <= length)."""
        return self.offset + position // self.line_bases * self.line_bytes + position % self.line_bases


def compression(path: Path) -> str:
    """ "plain", "bgzf" (gzip members with the BC extra field: seekable) or "gzip" (not seekable)."""
    with open(path, "rb") as handle:
        head = handle.read(18)
    if head[:2] != GZIP_MAGIC:
        return "plain"
    has_extra = len(head) >= 16 and head[3] & 4
    return "bgzf" if has_extra and head[12:14] == b"BC" else "gzip"


def index_for(fasta: Path, suffix: str) -> tuple[Path | None, list[Path]]:
    """(a fresh existing index or None, where a new one may go, in order) for `fasta` + `suffix`.

    A fresh index is at least as new as the FASTA; it is looked for beside the file, then in the
    cache. A new one goes beside the file, or to the cache when that cannot be written.
    """
    beside = fasta.with_name(fasta.name + suffix)
    key = hashlib.blake2b(str(fasta.resolve()).encode(), digest_size=8).hexdigest()
    cached = cache_root() / "fasta-index" / key / beside.name
    modified = fasta.stat().st_mtime_ns
    for candidate in (beside, cached):
        if candidate.is_file() and candidate.stat().st_mtime_ns >= modified:
            return candidate, [candidate]
    return None, [beside, cached] if os.access(fasta.parent, os.W_OK) else [cached]


def write_index(places: list[Path], write: Callable[[Path], None]) -> None:
    """Write an index to the first of `places` that can be written (the last one's error is raised)."""
    for place in places[:-1]:
        try:
            return write(place)
        except (OSError, InputError):
            continue
    write(places[-1])


def read_fai(path: Path, size: int | None = None) -> list[FaiEntry]:
    """The entries of a `.fai`; a malformed line (or, given the file `size`, an offset past it) is an InputError."""
    entries = []
    hint = "a corrupt index: delete it and glm rebuilds it"
    with open(path, encoding="ascii", errors="replace") as handle:
        for number, text in enumerate(handle, start=1):
            cells = text.rstrip("\r\n").split("\t")
            if len(cells) < 5 or not all(cell.isdigit() for cell in cells[1:5]):
                raise InputError(f"index: expected NAME LENGTH OFFSET LINEBASES LINEWIDTH ({hint})", path, number)
            entry = FaiEntry(cells[0], *(int(cell) for cell in cells[1:5]))
            if entry.line_bases < 1 or entry.line_bytes < entry.line_bases or entry.length < 1:
                raise InputError(f"index: impossible line layout for {entry.name!r} ({hint})", path, number)
            if size is not None and entry.byte(entry.length - 1) >= size:
                raise InputError(f"index: record {entry.name!r} ends past the end of the FASTA ({hint})", path, number)
            entries.append(entry)
    if not entries:
        raise InputError(f"index: no records ({hint})", path)
    return entries


def check_fai_covers(entries: list[FaiEntry], source: PlainBytes | BgzfBytes, path: Path) -> None:
    """An InputError unless the `.fai` at `path` accounts for every record of its FASTA (`source`).

    After the last record's bases only white space may follow, and between two records only one
    header line (read where the gap is longer than HEADER_BYTES): an index listing only some
    records (made for a subset, or from an older file) would otherwise drop the others silently.
    """
    ends = [entry.byte(entry.length - 1) + 1 for entry in entries]
    for number, (entry, end) in enumerate(zip(entries[1:], ends), start=2):
        if entry.offset <= end:
            raise InputError(
                f"index: record {entry.name!r} starts before the one above it ends ({STALE})", path, number
            )
        gap = entry.offset - end
        if gap > HEADER_BYTES and _more_than_headers(source.read(end, min(gap, TAIL_BYTES)), 1):
            raise InputError(
                f"index: the FASTA holds bases or records it does not list before {entry.name!r} ({STALE})",
                path,
                number,
            )
    if _more_than_headers(source.read(ends[-1], TAIL_BYTES), 0):
        message = f"index: the FASTA holds bases or records it does not list after {entries[-1].name!r} ({STALE})"
        raise InputError(message, path, len(entries))


def _more_than_headers(data: bytes, headers: int) -> bool:
    """True when `data` holds more than `headers` header lines and white space (a record's bases, or more headers)."""
    lines = [line for line in data.splitlines() if line.strip()]
    return len(lines) > headers or any(line.lstrip()[:1] != b">" for line in lines)


def write_fai(path: Path, entries: list[FaiEntry]) -> None:
    """Write a `.fai` atomically."""
    with atomic_file(path) as partial:
        partial.write_text(
            "".join(f"{e.name}\t{e.length}\t{e.offset}\t{e.line_bases}\t{e.line_bytes}\n" for e in entries)
        )


def build_gzi(fasta: Path) -> list[tuple[int, int]]:
    """(compressed, decompressed) start offsets of every BGZF block of `fasta`, the first (0, 0) included."""
    blocks = []
    with open(fasta, "rb") as handle:
        for start, _, data_start, _ in bgzf.BgzfBlocks(handle):
            blocks.append((start, data_start))
    return blocks


def write_gzi(path: Path, blocks: list[tuple[int, int]]) -> None:
    """Write a `.gzi` atomically (samtools' layout: the first block is implicit)."""
    rest = blocks[1:]
    with atomic_file(path) as partial:
        partial.write_bytes(struct.pack(f"<Q{2 * len(rest)}Q", len(rest), *(n for pair in rest for n in pair)))


def read_gzi(path: Path) -> list[tuple[int, int]]:
    """The block offsets of a `.gzi`, (0, 0) first; a truncated file is an InputError naming it."""
    raw = path.read_bytes()
    count = struct.unpack_from("<Q", raw)[0] if len(raw) >= 8 else -1
    if count < 0 or len(raw) != 8 + 16 * count:
        raise InputError("index: not a BGZF .gzi index (a corrupt index: delete it and glm rebuilds it)", path)
    values = struct.unpack_from(f"<{2 * count}Q", raw, 8)
    return [(0, 0), *zip(values[::2], values[1::2])]


class PlainBytes:
    """Byte ranges of a plain file, read with pread (no shared file position; safe to pickle)."""

    def __init__(self, path: Path):
        self.path = path
        self._descriptor: int | None = None

    def read(self, offset: int, size: int) -> bytes:
        if self._descriptor is None:
            self._descriptor = os.open(self.path, os.O_RDONLY)
        return os.pread(self._descriptor, size, offset)

    def __getstate__(self) -> dict:
        return {"path": self.path, "_descriptor": None}

    def __del__(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)


class BgzfBytes:
    """Byte ranges of the decompressed text of a BGZF file, through its block offsets."""

    def __init__(self, path: Path, blocks: list[tuple[int, int]]):
        self.path = path
        self._compressed = [block[0] for block in blocks]
        self._decompressed = [block[1] for block in blocks]
        self._reader: bgzf.BgzfReader | None = None

    def read(self, offset: int, size: int) -> bytes:
        if self._reader is None:
            self._reader = bgzf.BgzfReader(self.path, "rb")
        block = bisect.bisect_right(self._decompressed, offset) - 1
        within = offset - self._decompressed[block]
        self._reader.seek(bgzf.make_virtual_offset(self._compressed[block], within))
        return self._reader.read(size)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_reader": None}


def window_bytes(entry: FaiEntry, source: PlainBytes | BgzfBytes, start: int, end: int) -> bytes:
    """Bases [start, end) of one record (0 <= start <= end <= length), line breaks removed."""
    if start >= end:
        return b""
    first, last = entry.byte(start), entry.byte(end - 1) + 1
    return source.read(first, last - first).translate(None, _WHITESPACE)
