"""Reading variants: VCF(.gz), TSV/CSV and Python rows -> a VariantList checked against the genome.

The input format is told from the file's content, never its name. Every row becomes `Variant`
records with 0-based positions; alleles we cannot score (symbolic, breakend, `*`) get a per-row
`status` instead of failing. Then contigs are reconciled and REF alleles checked (glm.io.variants).
"""

from __future__ import annotations

import csv
import os
import re
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from glm.errors import InputError, check_choice
from glm.io.fasta_index import compression
from glm.io.files import ReadProgress, open_text
from glm.io.genome import Genome
from glm.io.tabix import read_ranges, read_tabix_index, tabix_index_of
from glm.io.variant_writer import batched
from glm.io.variant_rows import REQUIRED, Row, cell_text, column_roles, row_to_variants
from glm.io.variants import (
    INFO_HEADER,
    OnRefMismatch,
    PYTHON_SOURCE,
    VCF_FIXED_COLUMNS,
    Variant,
    VariantList,
    check_bounds_and_ref,
    contig_list,
    decode_info,
    genome_contig,
    reconcile_contigs,
)


# Accepted (lowercase) names of the core columns of a TSV/CSV, and of the keys of Python dicts.


def read_variants(
    source: str | os.PathLike[str] | Iterable[Mapping[str, Any] | Sequence[Any]],
    genome: Genome,
    aliases: dict[str, str] | None = None,
    on_ref_mismatch: OnRefMismatch = "error",
) -> VariantList:
    """Read, validate and reconcile variants from a file or from Python rows.

    `source` is a path to a VCF (plain, gzip or bgzip), TSV or CSV, told apart by content: a
    `##fileformat=VCF` line or a `#CHROM` header means VCF, otherwise a table whose header names
    chrom/chr/chromosome/contig, pos/position, ref/reference and alt/alternate columns (any case;
    tab or comma separated, sniffed from the header; an `id` column is used as the ID, the others
    are kept in `fields`). It may also be an iterable of dicts with those keys (extra keys kept in
    `fields`) or of tuples (chrom, pos, ref, alt, *extra), extra items kept as "column5", ...;
    a pandas DataFrame is read row by row. Positions in every input are 1-based.

    Multi-allelic VCF lines give one Variant per ALT (INFO values declared Number=A or R are split
    to match). Alleles are uppercased; REF/ALT characters other than ACGTN are an error, except
    symbolic (`<DEL>`), breakend and `*` ALTs (and ALT "."), which are kept with a "not supported"
    status. Contigs are matched to `genome.names` exactly, then through `aliases`, then by adding
    or removing a "chr" prefix. Each REF is compared with the genome (case-insensitive; N in the
    genome is a mismatch): on_ref_mismatch="error" raises one InputError with the count and first
    examples, "skip" keeps the mismatches with a status so they are reported but not scored.
    FORMAT and sample columns of a VCF are not kept.
    """
    chunks = read_variant_chunks(source, genome, aliases, on_ref_mismatch, chunk_size=None)
    return next(chunks)


Region = tuple[str, int, int]  # a genome contig name, 0-based half-open


def read_variant_chunks(
    source: str | os.PathLike[str] | Iterable[Mapping[str, Any] | Sequence[Any]],
    genome: Genome,
    aliases: dict[str, str] | None = None,
    on_ref_mismatch: OnRefMismatch = "error",
    chunk_size: int | None = 10_000,
    regions: Sequence[Region] = (),
    progress: ReadProgress | None = None,
) -> Iterator[VariantList]:
    """`read_variants` in pieces: VariantLists of at most `chunk_size` variants (None: one), in input order.

    Memory holds one chunk. Each chunk is reconciled and REF-checked as `read_variants` does (so
    a REF error counts the mismatches of its chunk). With `regions` (genome contig names, 0-based
    half-open), only variants whose REF span overlaps one of them are kept (chunks are cut after
    that filter); an input with none left is an error. A BGZF VCF with a tabix index beside it
    (`.tbi` or `.csi`) is then read only where the index places such records (the same rows, in
    the same order: rows outside the regions are not read, so not checked); otherwise every row
    is read and filtered.

    `progress`, when the file is read whole (not Python rows, not through an index), is updated
    with the bytes of the file consumed before each chunk is yielded and once more at the end
    (the end of the file is seen only after the last chunk).
    """
    check_choice("on_ref_mismatch", on_ref_mismatch, OnRefMismatch)
    aliases = dict(aliases or {})
    for name, target in aliases.items():
        if target not in genome:
            raise InputError(
                f"aliases: {name!r} maps to {target!r}, which is not a contig of the genome; {contig_list(genome)}"
            )
    header_lines: list[str] = []
    path = Path(source) if isinstance(source, (str, os.PathLike)) else None
    source_name = str(path) if path else PYTHON_SOURCE
    by_contig: dict[str, list[tuple[int, int]]] = {}
    for contig, start, end in regions:
        by_contig.setdefault(contig, []).append((start, end))
    read, yielded, indexed = 0, False, None
    handle: IO[str] | None = None  # the input, when read whole: its position is the progress

    def kept(variants: Iterator[Variant]) -> Iterator[Variant]:
        nonlocal read
        for batch in batched(variants, chunk_size):
            read += len(batch)
            reconcile_contigs(batch, genome, aliases)
            yield from (v for v in batch if _inside(v, by_contig.get(v.contig, ()))) if by_contig else batch

    try:
        if path is None:
            variants = _read_python(source)  # type: ignore[arg-type]
        elif _sniff_is_vcf(path):
            indexed = _indexed_lines(path, by_contig, genome, aliases) if by_contig else None
            if indexed is None:
                handle = open_text(path)
                variants = _read_vcf(path, header_lines, _lines(handle))
            else:
                variants = _read_vcf(path, header_lines, indexed)
        else:
            handle = open_text(path)
            variants = _read_table(path, _lines(handle))
        for chunk in batched(kept(variants), chunk_size):
            check_bounds_and_ref(chunk, genome, on_ref_mismatch)
            yielded = True
            if progress is not None and handle is not None:
                progress.update(handle)
            yield VariantList(chunk, header_lines, source_name)
        if progress is not None and handle is not None:
            progress.update(handle)
    except (OSError, EOFError, zlib.error) as error:  # unreadable, truncated or corrupt gzip
        raise InputError(f"cannot read: {error}", path) from error
    finally:
        if handle is not None:
            handle.close()
    if not yielded:
        found_rows = read or indexed is not None  # an index without records stopped earlier
        raise InputError(
            "no variants in the regions given" if found_rows else "no variants: the input has no variant rows",
            source_name,
        )


def _indexed_lines(
    path: Path, regions: dict[str, list[tuple[int, int]]], genome: Genome, aliases: dict[str, str]
) -> Iterator[tuple[int | None, str]] | None:
    """The header lines, then the records the tabix index of `path` places in `regions` (None: no index).

    The index's sequence names are matched to the genome first, so a contig the genome lacks is an
    error as it is when every row is read. Records come without line numbers (None).
    """
    index_path = tabix_index_of(path) if compression(path) == "bgzf" else None
    if index_path is None:
        return None
    index = read_tabix_index(index_path, path.stat().st_size)
    if not index.names:
        raise InputError("no variants: the input has no variant rows", path)
    queries = []
    for name in index.names:
        contig = genome_contig(name, genome, aliases, f"{path} (a sequence of its index {index_path.name})")
        queries += [(name, start, end) for start, end in regions.get(contig, ())]
    ranges = index.ranges(queries)

    def lines() -> Iterator[tuple[int | None, str]]:
        with open_text(path) as handle:
            for number, text in _lines(handle):
                if text.strip() and not text.startswith("#"):
                    break
                yield number, text
        for line in read_ranges(path, ranges, index_path):
            yield None, line.decode("ascii", "replace").rstrip("\r\n")

    return lines()


def _inside(variant: Variant, spans: Iterable[tuple[int, int]]) -> bool:
    end = variant.pos + max(len(variant.ref), 1)
    return any(variant.pos < stop and end > start for start, stop in spans)


def _sniff_is_vcf(path: Path) -> bool:
    """True for a VCF (a ##fileformat=VCF line or a #CHROM header), False for a table."""
    with open_text(path) as handle:
        for text in handle:
            text = text.rstrip("\r\n")
            if text.startswith("##fileformat=VCF"):
                return True
            if text.startswith("##") or not text.strip():
                continue
            return text.startswith("#CHROM")
    raise InputError("empty file: no variants", path)


def _lines(handle: IO[str]) -> Iterator[tuple[int, str]]:
    """(1-based line number, text without its line ending) for each line."""
    for number, text in enumerate(handle, start=1):
        yield number, text.rstrip("\r\n")


def _read_vcf(path: Path, header_lines: list[str], lines: Iterable[tuple[int | None, str]]) -> Iterator[Variant]:
    """The variants of a VCF from its (line number or None, text) `lines`."""
    columns: list[str] | None = None
    info_numbers: dict[str, str] = {}
    for number, text in lines:
        if not text.strip():
            continue
        if text.startswith("##"):
            header_lines.append(text)
            match = INFO_HEADER.match(text)
            if match:
                declared = re.search(r"Number=([^,>]+)", match.group(2))
                info_numbers[match.group(1)] = declared.group(1) if declared else "."
            continue
        if text.startswith("#"):
            columns = _vcf_header(path, number, text)
            continue
        if columns is None:
            raise InputError("header: no #CHROM header line before the first record", path, number)
        cells = text.split("\t")
        source = str(path) if number is not None else f"{path} record {cells[0]}:{cells[1] if len(cells) > 1 else '?'}"
        if len(cells) != len(columns):
            raise InputError(
                f"columns: expected {len(columns)} tab-separated columns (as in the #CHROM header), found {len(cells)}",
                source,
                number,
            )
        row = Row(chrom=cells[0], pos=cells[1], ref=cells[3], alt=cells[4], id=cells[2] or ".", fields={}, line=number)
        if len(columns) > 5:
            row.fields["QUAL"] = cells[5]
        if len(columns) > 6:
            row.fields["FILTER"] = cells[6]
        if len(columns) > 7:
            _parse_info(cells[7], info_numbers, row)
        yield from row_to_variants(row, source)


def _vcf_header(path: Path, number: int, text: str) -> list[str]:
    columns = text[1:].split("\t")
    expected = VCF_FIXED_COLUMNS[: max(5, min(len(columns), 8))]
    if len(columns) < 5 or tuple(columns[: len(expected)]) != expected:
        raise InputError(
            f"header: expected the tab-separated columns #{' '.join(VCF_FIXED_COLUMNS)}, found {text!r}", path, number
        )
    return columns


def _parse_info(info: str, numbers: dict[str, str], row: Row) -> None:
    """INFO -> row.fields in order (flags as "true"); per-ALT values (Number=A/R) kept aside for the split."""
    if info == ".":
        return
    n_alts = row.alt.count(",") + 1
    for entry in info.split(";"):
        if not entry:
            continue
        key, has_value, value = entry.partition("=")
        if not has_value:
            row.fields[key] = "true"
            continue
        value = decode_info(value)
        row.fields[key] = value
        values = value.split(",")
        if n_alts > 1 and numbers.get(key) == "A" and len(values) == n_alts:
            row.per_allele[key] = values
        elif n_alts > 1 and numbers.get(key) == "R" and len(values) == n_alts + 1:
            row.per_allele[key] = [f"{values[0]},{alt_value}" for alt_value in values[1:]]


def _read_table(path: Path, lines: Iterator[tuple[int, str]]) -> Iterator[Variant]:
    """The variants of a TSV/CSV from its (line number, text) `lines`."""
    header: str | None = None
    header_number = 0
    for number, text in lines:
        if text.strip() and not text.startswith("##"):
            header_number, header = number, text
            break
    if header is None:
        raise InputError("empty file: no variants", path)
    delimiter = "\t" if "\t" in header else ","
    names = [name.strip() for name in _split(header, delimiter)]
    if names and names[0].startswith("#"):
        names[0] = names[0][1:].strip()
    roles = column_roles(names, str(path), header_number)
    for number, text in lines:
        if not text.strip():
            continue
        cells = [cell.strip() for cell in _split(text, delimiter)]
        if len(cells) != len(names):
            what = "tab" if delimiter == "\t" else "comma"
            raise InputError(
                f"columns: expected {len(names)} {what}-separated columns (as in the header on line "
                f"{header_number}), found {len(cells)}",
                path,
                number,
            )
        by_role = {role: cells[index] for role, index in roles.items()}
        extra = {name: cells[index] for index, name in enumerate(names) if index not in roles.values()}
        row = Row(
            chrom=by_role["chrom"],
            pos=by_role["pos"],
            ref=by_role["ref"],
            alt=by_role["alt"],
            id=by_role.get("id") or ".",
            fields=extra,
            line=number,
        )
        yield from row_to_variants(row, str(path))


def _split(text: str, delimiter: str) -> list[str]:
    # CSV cells may be quoted ("a, b"); tab-separated cells are taken literally.
    return next(csv.reader([text])) if delimiter == "," else text.split("\t")


def _read_python(rows: Iterable[Any]) -> Iterator[Variant]:
    if hasattr(rows, "to_dict") and hasattr(rows, "columns"):  # a pandas DataFrame iterates over its column names
        rows = rows.to_dict("records")
    for index, item in enumerate(rows):
        if isinstance(item, Mapping):
            keys = list(item)
            roles = column_roles([str(key) for key in keys], PYTHON_SOURCE, index, what="key")
            used = {keys[position] for position in roles.values()}
            values = {role: item[keys[position]] for role, position in roles.items()}
            extra = {str(key): cell_text(value) for key, value in item.items() if key not in used}
        elif isinstance(item, Sequence) and not isinstance(item, (str, bytes)):
            if len(item) < 4:
                raise InputError(f"expected (chrom, pos, ref, alt, ...), got {len(item)} items", PYTHON_SOURCE, index)
            values = dict(zip(REQUIRED, item[:4]))
            extra = {f"column{number}": cell_text(value) for number, value in enumerate(item[4:], start=5)}
        else:
            raise InputError(f"expected a dict or a tuple, got {type(item).__name__}", PYTHON_SOURCE, index)
        for role in REQUIRED:
            if values[role] is None:
                raise InputError(f"{role}: missing value", PYTHON_SOURCE, index)
        row = Row(
            chrom=cell_text(values["chrom"]),
            pos=values["pos"],
            ref=cell_text(values["ref"]),
            alt=cell_text(values["alt"]),
            id=cell_text(values.get("id")) or ".",
            fields=extra,
            line=index,
        )
        yield from row_to_variants(row, PYTHON_SOURCE)
