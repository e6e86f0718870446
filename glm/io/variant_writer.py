"""Writing variants and their scores: TSV, VCF or BGZF VCF with a tabix index, chosen by the suffix; atomic."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from glm.errors import InputError
from glm.io.coordinates import to_one_based
from glm.io.files import atomic_file
from glm.io.tabix import IndexedBgzfWriter, IndexRecord
from glm.io.variants import INFO_HEADER, VCF_FIXED_COLUMNS, Variant, encode_info

OUTPUT_SUFFIXES = (".tsv", ".vcf", ".vcf.gz")
_INFO_KEY_UNSAFE = re.compile(r"[^0-9A-Za-z_.]")
T = TypeVar("T")


def vcf_info_name(score: str) -> str:
    """The INFO ID a score column gets in VCF output: "llr" -> "GLM_LLR" (kept if it starts with GLM_)."""
    name = _INFO_KEY_UNSAFE.sub("_", score)
    return name if name.upper().startswith("GLM_") else f"GLM_{name.upper()}"


def write_variants(
    variants: Sequence[Variant],
    scores: Mapping[str, Sequence[float]] | None,
    path: str | os.PathLike[str],
    header_lines: Sequence[str] | None = None,
    descriptions: Mapping[str, str] | None = None,
    block_rows: int | None = None,
) -> Path:
    """Write variants and their score columns to TSV, VCF or BGZF VCF, chosen by the suffix of `path`.

    All at once through a `VariantWriter` (see it for the formats and `block_rows`); `header_lines`
    default to those the variants were read with. Returns the path.
    """
    if header_lines is None:
        header_lines = getattr(variants, "header_lines", [])
    with VariantWriter(path, header_lines, descriptions, block_rows=block_rows) as writer:
        writer.add(variants, dict(scores or {}))
    return writer.path


def output_kind(path: Path) -> str:
    """ ".tsv", ".vcf" or ".vcf.gz", from the end of an output name (any case); another is an InputError."""
    lowered = path.name.lower()
    kind = next((suffix for suffix in (".vcf.gz", ".vcf", ".tsv") if lowered.endswith(suffix)), None)
    if kind is None:
        raise InputError(f"output: unsupported file suffix; use one of {', '.join(OUTPUT_SUFFIXES)}", path)
    return kind


@dataclass
class RowLayout:
    """What the header and the columns of a variant file depend on, gathered over every row.

    The score columns, the extra fields in first-seen order, whether any row has a status, the
    input's header lines and the scores' descriptions. Rows are kept as JSON-able lists (`rows`);
    layouts of consecutive pieces merge (`merge`) into the layout of the whole.
    """

    scores: list[str] | None = None
    fields: dict[str, None] = field(default_factory=dict)
    with_status: bool = False
    header_lines: list[str] = field(default_factory=list)
    descriptions: dict[str, str] = field(default_factory=dict)

    def rows(self, variants: Sequence[Variant], scores: Mapping[str, Sequence[float]]) -> Iterator[list]:
        """The rows of `variants` with one value per variant of each score column, noted in this layout."""
        if self.scores is None:
            self.scores = list(scores)
        assert list(scores) == self.scores, "every chunk has the same score columns"
        columns = [[float(value) for value in scores[name]] for name in self.scores]
        for name, values in zip(self.scores, columns):
            if len(values) != len(variants):
                raise ValueError(f"score column {name!r} has {len(values)} values for {len(variants)} variants")
        for index, variant in enumerate(variants):
            self.fields.update(dict.fromkeys(variant.fields))
            self.with_status = self.with_status or bool(variant.status)
            row = [variant.chrom, variant.pos, variant.id, variant.ref, variant.alt, variant.fields, variant.status]
            yield [*row, [values[index] for values in columns]]

    def merge(self, later: RowLayout) -> None:
        """Take in the layout of the rows that come after these."""
        if self.scores is None:
            self.scores, self.header_lines, self.descriptions = later.scores, later.header_lines, later.descriptions
        self.fields.update(later.fields)
        self.with_status = self.with_status or later.with_status

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "fields": list(self.fields)}

    @classmethod
    def from_json(cls, saved: Mapping[str, Any]) -> RowLayout:
        return cls(**{**saved, "fields": dict.fromkeys(saved["fields"])})


class VariantWriter:
    """Write variants and their scores chunk by chunk; the file appears, complete, on `close()`.

    TSV: columns chrom, pos (1-based), id, ref, alt, the extra fields (union over rows, in first-seen
    order), the score columns (NaN as "nan"), and a status column when any row has a status.
    VCF: `header_lines` are re-emitted; scores become INFO fields `vcf_info_name(score)` declared
    Number=1,Type=Float (NaN as "."), a status becomes INFO GLM_STATUS, fields QUAL and FILTER fill
    their columns and other fields go to INFO (declared when the header did not). One line per
    Variant, so split multi-allelic records stay split. `.vcf.gz` is BGZF with a tabix index beside
    it (`.tbi`, or `.csi` for a contig over 512 Mb; `lengths` gives the contig lengths) when the
    rows are sorted; `unindexed` then says why there is none. A BGZF block ends after the header
    and after every `block_rows` rows (None: only after the header), where glm.scoring.stream
    joins the parts of a file scored in shards of that many variants: the bytes are the same.
    Rows wait in a spool file beside `path` (the header depends on every row), and the output is
    written under a temporary name and renamed into place, so an interrupted write never leaves a
    partial file under the final name. Memory does not grow with the number of rows.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        header_lines: Sequence[str] = (),
        descriptions: Mapping[str, str] | None = None,
        lengths: Mapping[str, int] | None = None,
        block_rows: int | None = None,
    ):
        self.path = Path(path)
        self.kind = output_kind(self.path)
        if not self.path.parent.is_dir():
            raise InputError("output: directory does not exist", self.path.parent)
        self.layout = RowLayout(header_lines=list(header_lines), descriptions=dict(descriptions or {}))
        self.lengths, self.block_rows = dict(lengths or {}), block_rows
        self.index: Path | None = None
        self.unindexed = ""
        self._spool = tempfile.TemporaryFile("w+", encoding="utf-8", dir=self.path.parent)  # noqa: SIM115 - closed by __exit__

    def __enter__(self) -> VariantWriter:
        return self

    def __exit__(self, kind: type | None, *rest: object) -> None:
        if kind is None:
            self.close()
        else:
            self._spool.close()

    def add(self, variants: Sequence[Variant], scores: Mapping[str, Sequence[float]]) -> None:
        """Queue rows: `scores` holds one value per variant for each score column (same columns each call)."""
        self._spool.writelines(json.dumps(row) + "\n" for row in self.layout.rows(variants, scores))

    def close(self) -> Path:
        """Write the file (and its index, for `.vcf.gz`) from the queued rows; returns the path."""
        self._spool.seek(0)
        header, line_of = row_format(self.kind, self.layout)
        rows = (line_of(json.loads(line)) for line in self._spool)

        def fill(sink: IndexedBgzfWriter | _TextWriter) -> None:
            for line in header:
                sink.header(line)
            for group in batched(rows, self.block_rows):
                sink.end_block()
                for record in group:
                    sink.record(*record)

        with self._spool:
            self.index, self.unindexed = _write_file(self.path, self.kind, self.lengths, fill)
        return self.path


def batched(items: Iterable[T], size: int | None) -> Iterator[list[T]]:
    """Lists of `size` items (None: all of them in one), the last one shorter."""
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def write_part(kind: str, layout: RowLayout, rows: Iterable[list], path: Path) -> list[IndexRecord] | None:
    """Rows of one piece of a variant file, formatted by the whole file's `layout`, to `path`.

    For `.vcf.gz` the part is whole BGZF blocks and the records' spans and offsets are returned for
    `join_parts`; other kinds are plain text (None). No header: `join_parts` writes it.
    """
    _, line_of = row_format(kind, layout)
    sink = _sink(kind, path, None, {})
    for row in rows:
        sink.record(*line_of(row))
    sink.close()
    return sink.records


def join_parts(
    out: Path,
    kind: str,
    layout: RowLayout,
    parts: Iterable[tuple[Path, list[IndexRecord] | None]],
    lengths: Mapping[str, int],
) -> tuple[Path | None, str]:
    """The header of `layout` and the parts written by `write_part`, in order, as the variant file `out`.

    The same bytes as a VariantWriter given the same rows with `block_rows` rows per part. Returns
    (the index, or None; why the rows could not be indexed, or ""), as VariantWriter's `index`
    and `unindexed`.
    """
    header, _ = row_format(kind, layout)

    def fill(sink: IndexedBgzfWriter | _TextWriter) -> None:
        for line in header:
            sink.header(line)
        for part, records in parts:
            sink.append(part, records or [])

    return _write_file(out, kind, dict(lengths), fill)


class _TextWriter:
    """IndexedBgzfWriter's calls for TSV and plain VCF: lines in order, no blocks and no index."""

    unsorted = ""
    records = None

    def __init__(self, path: Path):
        self._file = open(path, "wb")  # noqa: SIM115 - closed by close()

    def header(self, line: str) -> None:
        self._file.write(line.encode() + b"\n")

    def record(self, line: str, *span: object) -> None:
        self._file.write(line.encode() + b"\n")

    def end_block(self) -> None:
        """Nothing to end: plain text has no blocks."""

    def append(self, part: Path, records: object) -> None:
        self._file.write(part.read_bytes())

    def close(self) -> None:
        self._file.close()


def _sink(kind: str, path: Path, index_stem: Path | None, lengths: dict[str, int]) -> IndexedBgzfWriter | _TextWriter:
    return IndexedBgzfWriter(path, index_stem, lengths) if kind == ".vcf.gz" else _TextWriter(path)


def _write_file(
    path: Path, kind: str, lengths: dict[str, int], fill: Callable[[IndexedBgzfWriter | _TextWriter], None]
) -> tuple[Path | None, str]:
    """Write `path` atomically through `fill`, then its index beside it: (index or None, why unindexed)."""
    with atomic_file(path) as temporary:
        for old in (".tbi", ".csi"):
            path.with_name(path.name + old).unlink(missing_ok=True)
        sink = _sink(kind, temporary, temporary, lengths)
        fill(sink)
        index, unindexed = sink.close(), sink.unsorted
    if index is None:
        return None, unindexed
    final = path.with_name(path.name + index.suffix)  # renamed after the data file, and written after it: never older
    os.replace(index, final)
    return final, unindexed


def _format_score(value: float, missing: str) -> str:
    return missing if math.isnan(value) else format(value, ".9g")  # 9 digits hold a float32 exactly


def _clean(cells: Iterable[str]) -> str:
    return "\t".join(re.sub(r"[\t\r\n]", " ", cell) for cell in cells)


def row_format(kind: str, layout: RowLayout) -> tuple[list[str], Callable[[list], tuple[str, str, int, int]]]:
    """(the header lines of a variant file, a function: row -> (line, chrom, 0-based start, end))."""
    scores = layout.scores or []
    if kind == ".tsv":
        return _tsv_format(scores, list(layout.fields), layout.with_status)
    return _vcf_format(scores, list(layout.fields), layout)


def _tsv_format(
    scores: list[str], fields: list[str], with_status: bool
) -> tuple[list[str], Callable[[list], tuple[str, str, int, int]]]:
    reserved = {"chrom", "pos", "id", "ref", "alt", *scores, *(["status"] if with_status else [])}
    # A field named like a column we write (a score from an earlier run, say) is replaced by it.
    names = [name for name in fields if name not in reserved]
    header = "\t".join(["chrom", "pos", "id", "ref", "alt", *names, *scores, *(["status"] if with_status else [])])

    def line_of(row: list) -> tuple[str, str, int, int]:
        chrom, pos, identifier, ref, alt, extra, status, values = row
        cells = [chrom, str(to_one_based(pos)), identifier, ref, alt]
        cells += [extra.get(name, "") for name in names]
        cells += [_format_score(value, "nan") for value in values]
        return _clean([*cells, status] if with_status else cells), chrom, pos, pos + len(ref)

    return [header], line_of


def _vcf_format(
    scores: list[str], fields: list[str], layout: RowLayout
) -> tuple[list[str], Callable[[list], tuple[str, str, int, int]]]:
    score_ids = {name: vcf_info_name(name) for name in scores}
    written = set(score_ids.values()) | ({"GLM_STATUS"} if layout.with_status else set())
    given = (line for line in layout.header_lines if line.startswith("##fileformat="))
    out = [next(given, "##fileformat=VCFv4.2")]
    declared: dict[str, str] = {}  # INFO ID -> Type, from the header lines we keep
    for line in layout.header_lines:
        if line.startswith("##fileformat="):
            continue
        match = INFO_HEADER.match(line)
        if match:
            if match.group(1) in written:
                continue  # replaced by the declaration of this run's score below
            kind = re.search(r"Type=([^,>]+)", match.group(2))
            declared[match.group(1)] = kind.group(1) if kind else "String"
        out.append(line)
    info_keys = {name: _info_key(name) for name in fields if name not in ("QUAL", "FILTER")}
    info_keys = {name: key for name, key in info_keys.items() if key not in written}
    for name, key in info_keys.items():
        if key not in declared:
            out.append(f'##INFO=<ID={key},Number=.,Type=String,Description="{_quote(name)} column of the input">')
            declared[key] = "String"
    for name, key in score_ids.items():
        description = layout.descriptions.get(name, f"glm score {name}")
        out.append(f'##INFO=<ID={key},Number=1,Type=Float,Description="{_quote(description)}">')
    if layout.with_status:
        out.append('##INFO=<ID=GLM_STATUS,Number=1,Type=String,Description="Why glm did not score this variant">')
    out.append("#" + "\t".join(VCF_FIXED_COLUMNS))

    def line_of(row: list) -> tuple[str, str, int, int]:
        chrom, pos, identifier, ref, alt, extra, status, values = row
        info = []
        for name, key in info_keys.items():
            if name not in extra:
                continue
            if declared.get(key) != "Flag":
                info.append(f"{key}={encode_info(extra[name])}")
            elif extra[name] == "true":
                info.append(key)
        info += [f"{key}={_format_score(value, '.')}" for key, value in zip(score_ids.values(), values)]
        if status:
            info.append(f"GLM_STATUS={encode_info(status)}")
        quality, filters = extra.get("QUAL") or ".", extra.get("FILTER") or "."
        cells = [chrom, str(to_one_based(pos)), identifier or ".", ref, alt, quality, filters, ";".join(info) or "."]
        return _clean(cells), chrom, pos, pos + len(ref)

    return out, line_of


def _info_key(name: str) -> str:
    """A legal INFO ID for a field name (letters, digits, _ and .; not starting with a digit)."""
    key = _INFO_KEY_UNSAFE.sub("_", name) or "_"
    return f"_{key}" if key[0].isdigit() else key


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
