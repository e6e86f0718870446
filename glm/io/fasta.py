"""FASTA content: the validating scan of a FASTA file's records, and streaming them (`read_fasta`).

Plain, gzip and BGZF files are told apart by their first bytes, never by the file name. Records
are named by the first word of their header line, as Biopython's SeqRecord.id does; the one
name rule (`record_name_problem`) is shared with glm's FASTA writers. The scan reports each
record's layout (offset, line width, regular or not), which glm.io.genome turns into a `.fai`.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from glm.alphabet import BASE_CODE, INVALID
from glm.errors import InputError
from glm.io.files import UTF8_BOM, first_line, open_binary

BASE_BYTES = bytes(code for code in range(256) if BASE_CODE[code] != INVALID)  # nucleotides and IUPAC codes
_BASE_LINES = BASE_BYTES + b"\n"


def is_fasta(path: str | Path) -> bool:
    """True when the file's first non-blank line is a FASTA header ('>'), whatever its name."""
    return first_line(path)[1].startswith(">")


@dataclass
class Record:
    name: str
    sequence: str
    index: int  # 0-based position of the record in the file


@dataclass
class ScannedRecord:
    """One record as the validating scan saw it: its layout in the (decompressed) file."""

    name: str
    line: int  # 1-based line of the header
    offset: int  # byte of the first base
    length: int = 0
    line_bases: int = 0
    line_bytes: int = 0
    regular: bool = True  # every line but the last has line_bases bases and the same ending
    pieces: list[bytes] | None = field(default=None, repr=False)  # the bases, when kept


def scan_fasta(
    path: str | Path,
    unique_names: bool = True,
    keep: bool = False,
    sink: Callable[[bytes], None] | None = None,
    shown_as: str | Path | None = None,
) -> Iterator[ScannedRecord]:
    """Stream and check the records of a FASTA file, in bounded memory.

    Raises InputError (naming file and line) for: a missing or empty file, text before the first
    header, an empty record name, a duplicate name (unless unique_names is False: sets of
    labelled sequences often repeat a gene name), a record with no bases, and characters that
    are not nucleotides or IUPAC codes. Accepted as they are: Windows and CR-only line endings, a
    UTF-8 byte-order mark, spaces inside sequence lines (dropped), U (the tokenizers read it as T).
    keep=True collects each record's bases in `pieces`; `sink` receives every header line and the
    bases (spaces removed), in file order. `shown_as` names the file in messages.
    """
    path = Path(path)
    scan = _Scan(shown_as or path, unique_names, keep, sink)
    try:
        with open_binary(path) as handle:
            for block in _line_blocks(handle):
                yield from scan.block(block)
    except (OSError, EOFError, zlib.error) as error:  # unreadable, truncated or corrupt gzip
        raise InputError(f"cannot read: {error}", scan.shown) from error
    if scan.current is None:
        raise InputError("empty file: expected FASTA records starting with '>'", scan.shown)
    yield _finished(scan.current, scan.shown)


def _line_blocks(handle: IO[bytes], size: int = 1 << 22) -> Iterator[bytes]:
    """The file in pieces of about `size` bytes, each ending at a line end (the last: at the file's end).

    A file whose first piece has carriage returns but no line feed has CR-only (classic Mac) line
    endings: its CRs are read as line feeds, byte for byte, so offsets into the file stay true.
    """
    carry, cr_only = b"", None
    while data := handle.read(size):
        if cr_only is None:
            cr_only = b"\r" in data and b"\n" not in data
        if cr_only:
            data = data.replace(b"\r", b"\n")
        data = carry + data
        cut = data.rfind(b"\n") + 1
        carry = data[cut:]
        if cut:
            yield data[:cut]
    if carry:
        yield carry


class _Scan:
    """The state of `scan_fasta`: the record being read, and where in the file the scan is.

    Lines are checked one at a time, except runs of lines that can only be more bases of the
    current record, each as long as its first line: those are checked whole, in C (`_full_lines`).
    """

    def __init__(self, shown: str | Path, unique_names: bool, keep: bool, sink: Callable[[bytes], None] | None):
        self.shown, self.unique_names, self.keep, self.sink = shown, unique_names, keep, sink
        self.seen: dict[str, str] = {}
        self.current: ScannedRecord | None = None
        self.ended = False  # the current record had a short line: another line of bases makes it irregular
        self.offset = self.number = 0  # bytes and lines read

    def block(self, block: bytes) -> Iterator[ScannedRecord]:
        """Scan whole lines; yields each record that a header in them finishes."""
        if not self.offset and not self.number and block.startswith(UTF8_BOM):  # as Windows editors write
            self.offset, block = len(UTF8_BOM), block[len(UTF8_BOM) :]
        while block:
            lines = self._full_lines(block)
            if lines:
                self._bases(block.replace(b"\n", b"") if self.keep or self.sink else b"", len(block), lines)
                return
            text, stream = block, io.BytesIO(block)
            block = b""
            for line in stream:
                if line[:1] == b">":
                    if self.current is not None:
                        yield _finished(self.current, self.shown)
                    self._start_record(line)
                elif self._line(line) and text.find(b">", stream.tell()) < 0:
                    block = stream.read()  # the record's first line set its width: the rest may be one run
                    break

    def _full_lines(self, block: bytes) -> int:
        """How many lines `block` holds if all are valid bases exactly as long as the record's first line, else 0."""
        current = self.current
        if current is None or self.ended or not current.line_bases or current.line_bytes != current.line_bases + 1:
            return 0
        width = current.line_bytes
        lines = len(block) // width
        if lines * width != len(block) or block[width - 1 :: width] != b"\n" * lines or block.count(b"\n") != lines:
            return 0
        return 0 if block.translate(None, _BASE_LINES) else lines

    def _start_record(self, line: bytes) -> None:
        self.number += 1
        self.offset += len(line)
        self.current, self.ended = (
            _header(line, self.number, self.offset, self.seen, self.unique_names, self.shown),
            False,
        )
        self.current.pieces = [] if self.keep else None
        if self.sink:
            self.sink(line.rstrip(b"\r\n"))

    def _line(self, line: bytes) -> bool:
        """Check one line that is not a header; True when it is the first line of bases of its record."""
        self.number += 1
        size, bases, current = len(line), line.rstrip(), self.current
        if current is None:
            if bases:
                raise InputError("expected a FASTA header line starting with '>'", self.shown, self.number)
            self.offset += size
            return False
        if not bases:
            self.ended = True
            self.offset += size
            return False
        if b" " in bases:
            bases, current.regular = bases.replace(b" ", b""), False
        bad = bases.translate(None, BASE_BYTES)
        if bad:
            character = chr(bad[0]) if bad[0] < 128 else "\ufffd"
            column = bases.index(bad[:1]) + 1
            message = f"sequence: invalid character {character!r} in record {current.name!r} (column {column})"
            raise InputError(message, self.shown, self.number)
        first = current.line_bases == 0
        if first:
            current.line_bases, current.line_bytes = len(bases), size
        elif (
            self.ended or len(bases) > current.line_bases or size - len(bases) > current.line_bytes - current.line_bases
        ):
            current.regular = False
        if len(bases) < current.line_bases or size - len(bases) != current.line_bytes - current.line_bases:
            self.ended = True
        self._bases(bases, size, 0)
        return first

    def _bases(self, bases: bytes, size: int, lines: int) -> None:
        """Add bases to the record (`lines` whole lines of them, or 0: one line that `_line` counted)."""
        current = self.current
        assert current is not None
        self.offset += size
        self.number += lines
        current.length += lines * current.line_bases if lines else len(bases)
        if current.pieces is not None:
            current.pieces.append(bases)
        if self.sink:
            self.sink(bases)


def _header(
    line: bytes, number: int, offset: int, seen: dict[str, str], unique_names: bool, shown: str | Path
) -> ScannedRecord:
    title = line[1:].decode("ascii", errors="replace").strip()
    name = title.split(maxsplit=1)[0] if title else ""
    problem = record_name_problem(name, seen if unique_names else {})
    if problem:
        raise InputError(f"header: {problem}", shown, number)
    seen.setdefault(name, f"line {number}")
    return ScannedRecord(name=name, line=number, offset=offset)


def record_name_problem(name: str, seen: Mapping[str, str]) -> str | None:
    """What is wrong with `name` as a FASTA record name, or None: the one rule of the scanner and of
    glm's FASTA writers. A name is not empty, holds no white space (a header's name ends at the first)
    and is not in `seen` (name -> where it first was)."""
    if not name:
        return "record has no name"
    if len(name.split()) != 1 or name != name.strip():
        return f"record name {name!r} holds white space (a FASTA name ends at the first)"
    if name in seen:
        return f"duplicate record name {name!r} (first at {seen[name]})"
    return None


def _finished(record: ScannedRecord, shown: str | Path) -> ScannedRecord:
    if not record.length:
        raise InputError(f"sequence: record {record.name!r} has no bases", shown, record.line)
    return record


def read_fasta(path: str | Path, unique_names: bool = True) -> Iterator[Record]:
    """Stream the records of a FASTA file, checked as `scan_fasta` does; one record in memory at a time."""
    for index, scanned in enumerate(scan_fasta(path, unique_names, keep=True)):
        yield Record(scanned.name, b"".join(scanned.pieces or []).decode("ascii"), index)


def header_line(path: str | Path, index: int) -> int:
    """1-based line number of the header of the index-th record (a rescan: for messages)."""
    number, seen = 0, 0
    with open_binary(path) as handle:
        for block in _line_blocks(handle):  # lines as the scan reads them (CR-only endings too)
            for text in io.BytesIO(block):
                number += 1
                if text.removeprefix(UTF8_BOM)[:1] == b">":
                    if seen == index:
                        return number
                    seen += 1
    raise AssertionError(f"record {index} not found in {path}")
