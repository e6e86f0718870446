"""Indexed random access to a FASTA file by coordinates (`Genome`, `RecordView`).

Coordinates are 0-based and half-open everywhere in this module. `Genome` reads through a
samtools-style `.fai` (and `.gzi` for BGZF; glm.io.fasta_index), built on first use while the
file is validated (glm.io.fasta.scan_fasta), so opening an indexed genome reads only the index
and a window costs only its own bytes. A FASTA that cannot be read in place by offset (plain
gzip, or lines of uneven length within a record) is copied once, decompressed and re-wrapped at
`COPY_LINE_BASES`, into the cache and indexed there; `bgzip` the file to avoid the copy.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

from glm.alphabet import reverse_complement
from glm.errors import InputError
from glm.io.fasta import BASE_BYTES, scan_fasta
from glm.io.fasta_index import (
    BgzfBytes,
    FaiEntry,
    PlainBytes,
    build_gzi,
    check_fai_covers,
    compression,
    index_for,
    read_fai,
    read_gzi,
    window_bytes,
    write_fai,
    write_gzi,
    write_index,
)
from glm.io.files import atomic_file, cache_root
from glm.io.paths import check_input_file

COPY_LINE_BASES = 60


class _Rewrapper:
    """A sink for `scan_fasta` that writes a regular FASTA (COPY_LINE_BASES a line) and its .fai entries."""

    def __init__(self, handle):
        self.handle, self.entries, self.offset = handle, [], 0
        self.pending = bytearray()

    def __call__(self, piece: bytes) -> None:
        if piece[:1] == b">":
            self.flush(everything=True)
            self._write(piece + b"\n")
            name = piece[1:].decode("ascii", errors="replace").split(maxsplit=1)[0]
            self.entries.append(FaiEntry(name, 0, self.offset, COPY_LINE_BASES, COPY_LINE_BASES + 1))
            return
        last = self.entries[-1]
        self.entries[-1] = FaiEntry(last.name, last.length + len(piece), last.offset, last.line_bases, last.line_bytes)
        self.pending += piece
        if len(self.pending) >= COPY_LINE_BASES * 4096:
            self.flush(everything=False)

    def flush(self, everything: bool) -> None:
        full = len(self.pending) // COPY_LINE_BASES * COPY_LINE_BASES
        end = len(self.pending) if everything else full
        lines = [bytes(self.pending[i : i + COPY_LINE_BASES]) for i in range(0, end, COPY_LINE_BASES)]
        if lines:
            self._write(b"\n".join(lines) + b"\n")
        del self.pending[:end]

    def _write(self, data: bytes) -> None:
        self.handle.write(data)
        self.offset += len(data)


def _copy_place(path: Path) -> Path:
    """Where the regular copy of this version of `path` goes in the cache."""
    stat = path.stat()
    key = hashlib.blake2b(f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}".encode(), digest_size=8)
    name = path.name[: -len(".gz")] if path.name.endswith(".gz") else path.name
    return cache_root() / "fasta-copy" / f"{key.hexdigest()}-{name}"


def _regular_copy(path: Path) -> tuple[Path, list[FaiEntry], PlainBytes]:
    """A decompressed, regularly wrapped copy of `path` in the cache and its index (made once per file version;
    a damaged copy is made again, with a one-line notice: a cache entry is never trusted)."""
    copy = _copy_place(path)
    fai = copy.with_name(copy.name + ".fai")
    if copy.is_file() and fai.is_file():
        try:
            entries = read_fai(fai, copy.stat().st_size)
            check_fai_covers(entries, PlainBytes(copy), fai)
            return copy, entries, PlainBytes(copy)
        except InputError as error:
            warnings.warn(f"{error}: a damaged cache entry; making the copy again", stacklevel=4)
    with atomic_file(copy) as partial, open(partial, "wb") as handle:
        writer = _Rewrapper(handle)
        for _ in scan_fasta(path, sink=writer):  # the scan validates; the writer receives every line
            continue
        writer.flush(everything=True)
    write_fai(fai, writer.entries)
    return copy, read_fai(fai, copy.stat().st_size), PlainBytes(copy)


def _open_indexed(path: Path) -> tuple[Path, list[FaiEntry], PlainBytes | BgzfBytes]:
    """(the file read, its index entries, its byte reader), building or copying as needed.

    An existing .fai is checked against the file (check_fai_covers): one listing only some records is an error.
    """
    kind = compression(path)
    if kind == "gzip" or _copy_place(path).is_file():
        return _regular_copy(path)
    fresh, places = index_for(path, ".fai")
    if fresh is not None:
        entries = read_fai(fresh, path.stat().st_size if kind == "plain" else None)
    else:
        scanned = list(scan_fasta(path))
        if not all(record.regular for record in scanned):
            return _regular_copy(path)
        entries = [FaiEntry(r.name, r.length, r.offset, r.line_bases, r.line_bytes) for r in scanned]
        write_index(places, lambda place: write_fai(place, entries))
    reader = PlainBytes(path) if kind == "plain" else BgzfBytes(path, _bgzf_blocks(path))
    if fresh is not None:
        check_fai_covers(entries, reader, fresh)
    return path, entries, reader


def _bgzf_blocks(path: Path) -> list[tuple[int, int]]:
    """The BGZF block offsets of `path`, from its .gzi (built and written on first use)."""
    fresh, places = index_for(path, ".gzi")
    if fresh is not None:
        return read_gzi(fresh)
    blocks = build_gzi(path)
    write_index(places, lambda place: write_gzi(place, blocks))
    return blocks


class Genome:
    """Random access to the sequences of a FASTA file by name and 0-based half-open coordinates.

    Opening reads the `.fai` index (building it, and validating the file, on first use); each
    fetch then reads only the bytes of its window, so memory does not grow with the genome.
    """

    def __init__(self, path: str | Path):
        self.path = check_input_file(path)
        self._file, entries, self._bytes = _open_indexed(self.path)
        self._entries = {entry.name: entry for entry in entries}
        self.lengths: dict[str, int] = {entry.name: entry.length for entry in entries}

    @property
    def names(self) -> list[str]:
        return list(self.lengths)

    def __contains__(self, name: str) -> bool:
        return name in self.lengths

    def __len__(self) -> int:
        return len(self.lengths)

    def __repr__(self) -> str:
        return f"Genome({str(self.path)!r}, {len(self)} records, {sum(self.lengths.values()):,} bases)"

    def fetch(self, name: str, start: int, end: int, strand: str = "+", pad: str = "N") -> str:
        """Bases [start, end) of record `name`; positions past either end are filled with `pad`.

        strand "-" returns the reverse complement of the same interval.
        """
        if name not in self.lengths:
            shown = ", ".join(self.names[:10]) + (", ..." if len(self) > 10 else "")
            raise InputError(f"unknown record {name!r}; records in this genome: {shown}", self.path)
        if end < start:
            raise InputError(f"fetch: end ({end}) is before start ({start})", self.path)
        if strand not in ("+", "-"):
            raise InputError(f"fetch: strand must be '+' or '-', got {strand!r}", self.path)
        entry = self._entries[name]
        first, last = max(start, 0), max(min(end, entry.length), 0)
        raw = window_bytes(entry, self._bytes, first, max(first, last))
        if len(raw) != max(last - first, 0) or raw.translate(None, BASE_BYTES):
            raise InputError(
                f"index: the bases of {name!r} are not where its .fai says (the FASTA changed after its index, "
                "or the index is corrupt): delete the index and glm rebuilds it",
                self._file,
            )
        inside = raw.decode("ascii")
        left = pad * min(max(-start, 0), end - start)
        right = pad * (end - start - len(left) - len(inside))
        window = left + inside + right
        return reverse_complement(window) if strand == "-" else window

    def sequence(self, name: str) -> str:
        """The whole sequence of one record."""
        return self.fetch(name, 0, self.lengths[name]) if name in self.lengths else self.fetch(name, 0, 0)


class RecordView:
    """Bases [start, end) of one genome record, read on demand: len() and slices (as str), nothing held."""

    def __init__(self, genome: Genome, name: str, start: int = 0, end: int | None = None):
        self.genome, self.name, self.start = genome, name, start
        self.end = genome.lengths[name] if end is None else end

    def __len__(self) -> int:
        return self.end - self.start

    def __getitem__(self, part: slice) -> str:
        first, last, _ = part.indices(len(self))
        return self.genome.fetch(self.name, self.start + first, self.start + max(first, last))

    def view(self, start: int, end: int) -> RecordView:
        """The bases [start, end) of this view, as a view."""
        return RecordView(self.genome, self.name, self.start + start, self.start + end)
