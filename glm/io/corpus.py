"""A corpus: the genomes one run trains on, from FASTA files, folders of them, or a manifest.

    python cli.py pretrain a.fa b.fna.gz more/ --corpus corpus.tsv

A folder stands for every FASTA file in it (told by content, sorted by name). A manifest is a
tab-separated table with a header naming `path` and optionally `name`, `weight` and `group`;
relative paths are relative to the manifest. A genome's name defaults to its file name without
the FASTA and gzip suffixes. Names must be unique; weights, when given, must be finite and above 0.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from glm.errors import InputError
from glm.io.files import first_line, open_text

FASTA_SUFFIXES = (".gz", ".bgz", ".fasta", ".fas", ".fna", ".fa", ".txt")


@dataclass(frozen=True)
class CorpusEntry:
    """One genome of a corpus."""

    path: Path
    name: str
    weight: float | None = None  # a manifest's sampling weight; None: by size (see --genome-temperature)
    group: str | None = None


def genome_name(path: Path) -> str:
    """data/lambda_virus.fa.gz -> lambda_virus."""
    name = path.name
    for suffix in FASTA_SUFFIXES:
        name = name.removesuffix(suffix)
    return name or path.name


def read_corpus(inputs: list[str | Path], manifest: str | Path | None = None) -> list[CorpusEntry]:
    """The genomes named by `inputs` (files or folders) and the rows of `manifest`, in that order."""
    entries: list[CorpusEntry] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".") and _is_fasta(p))
            if not found:
                raise InputError("no FASTA files in this folder", path)
            entries += [CorpusEntry(p, genome_name(p)) for p in found]
        else:
            entries.append(CorpusEntry(path, genome_name(path)))
    if manifest is not None:
        entries += _read_manifest(Path(manifest))
    if not entries:
        raise InputError("no genomes: give FASTA files, folders of them, or --corpus MANIFEST")
    seen: dict[str, CorpusEntry] = {}
    for entry in entries:
        if entry.name in seen:
            raise InputError(
                f"genome name {entry.name!r} is used twice ({seen[entry.name].path} and {entry.path}); "
                "name them in a manifest (--corpus) to tell them apart"
            )
        seen[entry.name] = entry
    return entries


def _is_fasta(path: Path) -> bool:
    try:
        return first_line(path)[1].startswith(">")
    except InputError:
        return False


def _read_manifest(path: Path) -> list[CorpusEntry]:
    entries = []
    with open_text(path) as handle:
        rows = csv.reader(handle, delimiter="\t")
        header: list[str] | None = None
        for row in rows:
            line = rows.line_num
            if not any(cell.strip() for cell in row) or (row[0].startswith("#") and header is not None):
                continue
            if header is None:
                header = [cell.strip().lstrip("#").lower() for cell in row]
                if "path" not in header:
                    raise InputError(f"header: no 'path' column (found {', '.join(header)})", path, line)
                continue
            if len(row) != len(header):
                raise InputError(f"expected {len(header)} tab-separated fields, found {len(row)}", path, line)
            cells = dict(zip(header, (cell.strip() for cell in row)))
            genome = (
                (path.parent / cells["path"]).resolve()
                if not Path(cells["path"]).is_absolute()
                else Path(cells["path"])
            )
            if not genome.is_file():
                raise InputError(f"path: no such file {cells['path']!r}", path, line)
            weight = None
            if cells.get("weight"):
                try:
                    weight = float(cells["weight"])
                except ValueError:
                    raise InputError(f"weight: expected a number, got {cells['weight']!r}", path, line) from None
                if not 0 < weight < math.inf:  # NaN fails both; inf would make every other weight 0
                    raise InputError(f"weight: must be a finite number above 0, got {cells['weight']}", path, line)
            entries.append(
                CorpusEntry(genome, cells.get("name") or genome_name(genome), weight, cells.get("group") or None)
            )
    if header is None:
        raise InputError("empty manifest", path)
    return entries
