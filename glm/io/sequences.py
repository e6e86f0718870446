"""Sets of sequences, labelled or not, read from tables and FASTA files; k-mer frequency features.

Inputs (plain or gzipped; the kind is read from the content, never from the file name):
  table         CSV or TSV (tab-separated when the header line has a tab) whose header names a
                `sequence` column and, for labelled sets, a `label` column; an optional `name`
                or `id` column names the rows (else `<file stem>_<row>`). GUE's
                `sequence,label` files and the UCI splice `label<TAB>id<TAB>sequence` file work as
                they are.
  FASTA         one sequence per record, unlabelled; records may share a name.
  LABEL=FASTA   every record of the file has the label LABEL: `TATA=tata.fa nonprom=non_prom.fa`
                gives a two-class set.
Every problem (a row with the wrong number of fields, an empty sequence or label, a character
that is not a base or IUPAC code) is an InputError naming the file and line.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from glm.alphabet import find_invalid_base
from glm.errors import InputError
from glm.io.files import atomic_file, first_line, open_text
from glm.io.fasta import read_fasta, record_name_problem

NAME_COLUMNS = ("name", "id")


@dataclass
class SequenceSet:
    """Named sequences with their labels (None for an unlabelled set)."""

    names: list[str] = field(default_factory=list)
    sequences: list[str] = field(default_factory=list)
    labels: list[str] | None = None
    origins: list[str] = field(default_factory=list)  # "file:line" of each sequence, for messages

    def __len__(self) -> int:
        return len(self.sequences)

    def subset(self, rows: Sequence[int] | np.ndarray) -> SequenceSet:
        """The sequences at `rows`, in that order."""
        rows = [int(row) for row in rows]
        return SequenceSet(
            names=[self.names[row] for row in rows],
            sequences=[self.sequences[row] for row in rows],
            labels=None if self.labels is None else [self.labels[row] for row in rows],
            origins=[self.origins[row] for row in rows],
        )

    def extend(self, other: SequenceSet) -> None:
        if len(self) and (self.labels is None) != (other.labels is None):
            raise InputError(f"{other.origins[0]}: mixing labelled and unlabelled inputs")
        self.names += other.names
        self.sequences += other.sequences
        self.origins += other.origins
        if other.labels is not None:
            self.labels = (self.labels or []) + other.labels


def file_stem(path: Path) -> str:
    """train.csv.gz -> train."""
    name = path.name
    for suffix in (".gz", ".csv", ".tsv", ".txt", ".fasta", ".fna", ".fa"):
        name = name.removesuffix(suffix)
    return name or "seq"


def read_sequences(inputs: str | Path | Sequence[str | Path], labelled: bool = False) -> SequenceSet:
    """Read one or more inputs (see the module docstring) into one SequenceSet.

    labelled=True requires a label for every sequence (a `label` column or LABEL=FASTA).
    """
    items = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    result = SequenceSet()
    for item in items:
        result.extend(_read_one(str(item)))
    if not len(result):
        raise InputError(f"no sequences in {', '.join(map(str, items))}")
    if labelled and result.labels is None:
        raise InputError(
            f"{items[0]}: no labels (give a table with a 'label' column, or LABEL=FILE for a FASTA file per class)"
        )
    return result


def _read_one(item: str) -> SequenceSet:
    label, _, path_text = item.partition("=") if "=" in item and not Path(item).exists() else ("", "", item)
    path = Path(path_text)
    if first_line(path)[1].startswith(">"):
        return _read_fasta(path, label or None)
    if label:
        raise InputError("LABEL=FILE is for FASTA files; a table carries its labels in a 'label' column", path)
    return _read_table(path)


def _read_fasta(path: Path, label: str | None) -> SequenceSet:
    result = SequenceSet(labels=[] if label is not None else None)
    for record in read_fasta(path, unique_names=False):
        result.names.append(record.name)
        result.sequences.append(record.sequence)
        result.origins.append(f"{path}:record {record.index + 1}")
        if label is not None:
            result.labels.append(label)
    return result


def _read_table(path: Path) -> SequenceSet:
    header_number, header_text = first_line(path)
    delimiter = "\t" if "\t" in header_text else ","
    with open_text(path) as handle:
        rows = csv.reader(handle, delimiter=delimiter)
        header: list[str] | None = None
        result = SequenceSet()
        stem = file_stem(path)
        for row in rows:
            line = rows.line_num
            if not any(cell.strip() for cell in row):
                continue  # blank lines
            if header is None:
                header = [cell.strip().lower() for cell in row]
                columns = _columns(header, path, line)
                if "label" in columns:
                    result.labels = []
                continue
            if len(row) != len(header):
                raise InputError(
                    f"expected {len(header)} fields ({delimiter!r}-separated), found {len(row)}", path, line
                )
            sequence = row[columns["sequence"]].strip()
            if not sequence:
                raise InputError("sequence: empty", path, line)
            bad = find_invalid_base(sequence)
            if bad is not None:
                message = f"sequence: invalid character {sequence[bad]!r} (position {bad + 1})"
                raise InputError(message, path, line)
            name = row[columns["name"]].strip() if "name" in columns else f"{stem}_{len(result) + 1}"
            result.names.append(name)
            result.sequences.append(sequence)
            result.origins.append(f"{path}:{line}")
            if result.labels is not None:
                label = row[columns["label"]].strip()
                if not label:
                    raise InputError("label: empty", path, line)
                result.labels.append(label)
    if header is None:
        raise InputError("empty file", path, header_number)
    return result


def _columns(header: list[str], path: Path, line: int) -> dict[str, int]:
    """Positions of the sequence, label and name columns in a table's header row."""
    if "sequence" not in header:
        raise InputError(f"header: no 'sequence' column (found {', '.join(header)})", path, line)
    columns = {"sequence": header.index("sequence")}
    if "label" in header:
        columns["label"] = header.index("label")
    for name in NAME_COLUMNS:
        if name in header:
            columns["name"] = header.index(name)
            break
    return columns


def write_fasta(sequences: SequenceSet, path: str | Path) -> None:
    """Write the sequences as FASTA records (one line each), atomically.

    Every name must pass the FASTA scanner's rule (glm.io.fasta.record_name_problem), so that what is
    written reads back, under the same names: an InputError names the row, before anything is written.
    """
    seen: dict[str, str] = {}
    for name, origin in zip(sequences.names, sequences.origins):
        problem = record_name_problem(name, seen)
        if problem:
            raise InputError(f"name: {problem}; FASTA names must be unique single words", origin)
        seen[name] = origin
    with atomic_file(path) as partial, open(partial, "w") as handle:
        for name, sequence in zip(sequences.names, sequences.sequences):
            handle.write(f">{name}\n{sequence}\n")


def write_names(path: str | Path, sequences: SequenceSet) -> None:
    """A TSV naming the rows of an array computed from `sequences`: index, name (and label when labelled)."""
    labelled = sequences.labels is not None
    lines = ["index\tname" + ("\tlabel" if labelled else "")]
    for index, name in enumerate(sequences.names):
        lines.append(f"{index}\t{name}" + (f"\t{sequences.labels[index]}" if labelled else ""))  # type: ignore[index]
    with atomic_file(path) as partial:
        partial.write_text("\n".join(lines) + "\n")
