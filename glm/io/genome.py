"""FASTA access over Biopython: validated streaming of records, and random access by coordinates.

Coordinates are 0-based and half-open everywhere in this module. Plain and gzip-compressed files
are told apart by their first bytes, never by the file name. Records are named by the first word
of their header line, as Biopython's SeqRecord.id does.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from Bio.SeqIO.FastaIO import SimpleFastaParser

from glm.alphabet import find_invalid_base, reverse_complement
from glm.errors import InputError
from glm.io.files import first_line, open_text


def is_fasta(path: str | Path) -> bool:
    """True when the file's first non-blank line is a FASTA header ('>'), whatever its name."""
    return first_line(path)[1].startswith(">")


@dataclass
class Record:
    name: str
    sequence: str
    index: int  # 0-based position of the record in the file


def read_fasta(path: str | Path, unique_names: bool = True) -> Iterator[Record]:
    """Stream the records of a FASTA file, checking each one.

    Raises InputError (naming file and line) for: a missing or empty file, text before the first
    header, an empty record name, a duplicate name (unless unique_names is False: sets of
    labelled sequences often repeat a gene name), a record with no bases, and characters that
    are not nucleotides or IUPAC codes. Accepted as they are: Windows line endings, spaces inside
    sequence lines (Biopython drops them), U (the tokenizers read it as T). Only one record is
    held in memory at a time.
    """
    path = Path(path)
    _check_starts_with_header(path)
    seen: dict[str, int] = {}
    with open_text(path) as handle:
        for index, (title, sequence) in enumerate(SimpleFastaParser(handle)):
            name = title.split(maxsplit=1)[0] if title.strip() else ""
            if not name:
                raise InputError("header: record has no name after '>'", path, header_line(path, index))
            if unique_names and name in seen:
                first = header_line(path, seen[name])
                raise InputError(
                    f"header: duplicate record name {name!r} (first at line {first})", path, header_line(path, index)
                )
            seen[name] = index
            if not sequence:
                raise InputError(f"sequence: record {name!r} has no bases", path, header_line(path, index))
            bad = find_invalid_base(sequence)
            if bad is not None:
                bad_line, column = _locate_base(path, header_line(path, index), bad)
                raise InputError(
                    f"sequence: invalid character {sequence[bad]!r} in record {name!r} (column {column})",
                    path,
                    bad_line,
                )
            yield Record(name=name, sequence=sequence, index=index)


def _check_starts_with_header(path: Path) -> None:
    """Reject empty files and files whose first non-blank line is not a '>' header."""
    with open_text(path) as handle:
        for number, text in enumerate(handle, start=1):
            if text.strip():
                if not text.startswith(">"):
                    raise InputError("expected a FASTA header line starting with '>'", path, number)
                return
    raise InputError("empty file: expected FASTA records starting with '>'", path)


def header_line(path: str | Path, index: int) -> int:
    """1-based line number of the header of the index-th record (a rescan: for error messages)."""
    seen = -1
    with open_text(path) as handle:
        for number, text in enumerate(handle, start=1):
            if text.startswith(">"):
                seen += 1
                if seen == index:
                    return number
    raise AssertionError(f"record {index} not found in {path}")


def _locate_base(path: Path, header: int, index: int) -> tuple[int, int]:
    """(line, column) of the index-th base of the record whose header is on line `header`."""
    with open_text(path) as handle:
        for number, text in enumerate(handle, start=1):
            if number <= header:
                continue
            bases = text.rstrip().replace(" ", "").replace("\r", "")
            if index < len(bases):
                return number, index + 1
            index -= len(bases)
    return header, 0


class Genome:
    """Random access to the sequences of a FASTA file by name and 0-based half-open coordinates.

    The file is read once to learn the record names and lengths (and validate it). Sequences are
    then loaded on demand and kept in a small least-recently-used cache, so fetching many windows
    from one chromosome reads it once.
    """

    def __init__(self, path: str | Path, cache_records: int = 4):
        self.path = Path(path)
        self.lengths: dict[str, int] = {}
        self._cache: OrderedDict[str, str] = OrderedDict()
        self._cache_records = cache_records
        for record in read_fasta(self.path):
            self.lengths[record.name] = len(record.sequence)
            self._remember(record.name, record.sequence)

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
        sequence = self.sequence(name)
        length = len(sequence)
        inside = sequence[max(start, 0) : max(min(end, length), 0)]
        left = pad * min(max(-start, 0), end - start)
        right = pad * (end - start - len(left) - len(inside))
        window = left + inside + right
        return reverse_complement(window) if strand == "-" else window

    def sequence(self, name: str) -> str:
        """The whole sequence of one record."""
        if name in self._cache:
            self._cache.move_to_end(name)
            return self._cache[name]
        for record in read_fasta(self.path):
            if record.name == name:
                self._remember(name, record.sequence)
                return record.sequence
        raise InputError(f"record {name!r} disappeared from the file while reading", self.path)

    def _remember(self, name: str, sequence: str) -> None:
        self._cache[name] = sequence
        self._cache.move_to_end(name)
        while len(self._cache) > self._cache_records:
            self._cache.popitem(last=False)
