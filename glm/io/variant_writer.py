"""Writing variants and their scores: TSV, VCF or BGZF VCF with a tabix index, chosen by the suffix; atomic."""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from glm.errors import InputError
from glm.io.coordinates import to_one_based
from glm.io.files import atomic_file
from glm.io.tabix import IndexedBgzfWriter
from glm.io.variants import INFO_HEADER, VCF_FIXED_COLUMNS, Variant, encode_info

OUTPUT_SUFFIXES = (".tsv", ".vcf", ".vcf.gz")
_INFO_KEY_UNSAFE = re.compile(r"[^0-9A-Za-z_.]")


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
) -> Path:
    """Write variants and their score columns to TSV, VCF or BGZF VCF, chosen by the suffix of `path`.

    All at once through a `VariantWriter` (see it for the formats); `header_lines` default to those
    the variants were read with. Returns the path.
    """
    if header_lines is None:
        header_lines = getattr(variants, "header_lines", [])
    with VariantWriter(path, header_lines, descriptions) as writer:
        writer.add(variants, dict(scores or {}))
    return writer.path


class VariantWriter:
    """Write variants and their scores chunk by chunk; the file appears, complete, on `close()`.

    TSV: columns chrom, pos (1-based), id, ref, alt, the extra fields (union over rows, in first-seen
    order), the score columns (NaN as "nan"), and a status column when any row has a status.
    VCF: `header_lines` are re-emitted; scores become INFO fields `vcf_info_name(score)` declared
    Number=1,Type=Float (NaN as "."), a status becomes INFO GLM_STATUS, fields QUAL and FILTER fill
    their columns and other fields go to INFO (declared when the header did not). One line per
    Variant, so split multi-allelic records stay split. `.vcf.gz` is BGZF with a tabix index beside
    it (`.tbi`, or `.csi` for a contig over 512 Mb; `lengths` gives the contig lengths) when the
    rows are sorted; `unindexed` then says why there is none.
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
    ):
        self.path = Path(path)
        lowered = self.path.name.lower()
        kind = next((suffix for suffix in (".vcf.gz", ".vcf", ".tsv") if lowered.endswith(suffix)), None)
        if kind is None:
            raise InputError(f"output: unsupported file suffix; use one of {', '.join(OUTPUT_SUFFIXES)}", self.path)
        if not self.path.parent.is_dir():
            raise InputError("output: directory does not exist", self.path.parent)
        self.kind, self.header_lines = kind, list(header_lines)
        self.descriptions, self.lengths = dict(descriptions or {}), dict(lengths or {})
        self.index: Path | None = None
        self.unindexed = ""
        self._scores: list[str] | None = None
        self._fields: dict[str, None] = {}
        self._with_status = False
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
        if self._scores is None:
            self._scores = list(scores)
        assert list(scores) == self._scores, "every chunk has the same score columns"
        columns = [[float(value) for value in scores[name]] for name in self._scores]
        for name, values in zip(self._scores, columns):
            if len(values) != len(variants):
                raise ValueError(f"score column {name!r} has {len(values)} values for {len(variants)} variants")
        for index, variant in enumerate(variants):
            self._fields.update(dict.fromkeys(variant.fields))
            self._with_status = self._with_status or bool(variant.status)
            row = [variant.chrom, variant.pos, variant.id, variant.ref, variant.alt, variant.fields, variant.status]
            self._spool.write(json.dumps([*row, [values[index] for values in columns]]) + "\n")

    def close(self) -> Path:
        """Write the file (and its index, for `.vcf.gz`) from the queued rows; returns the path."""
        self._spool.seek(0)
        rows = (json.loads(line) for line in self._spool)
        names = self._scores or []
        with self._spool, atomic_file(self.path) as temporary:
            for old in (".tbi", ".csi"):
                self.path.with_name(self.path.name + old).unlink(missing_ok=True)
            if self.kind == ".tsv":
                with open(temporary, "w", encoding="utf-8", newline="\n") as handle:
                    for line in _tsv_lines(rows, names, list(self._fields), self._with_status):
                        handle.write(line + "\n")
                return self.path
            header, records = _vcf_lines(rows, names, list(self._fields), self._with_status, self)
            if self.kind == ".vcf":
                with open(temporary, "w", encoding="utf-8", newline="\n") as handle:
                    handle.writelines(line + "\n" for line in header)
                    handle.writelines(line + "\n" for line, *_ in records)
                return self.path
            writer = IndexedBgzfWriter(temporary, temporary, self.lengths)
            for line in header:
                writer.header(line)
            for line, contig, start, end in records:
                writer.record(line, contig, start, end)
            self.index, self.unindexed = writer.close(), writer.unsorted
        if self.index is not None:  # renamed after the data file, and written after it: never older
            final = self.path.with_name(self.path.name + self.index.suffix)
            os.replace(self.index, final)
            self.index = final
        return self.path


def _format_score(value: float, missing: str) -> str:
    return missing if math.isnan(value) else format(value, ".9g")  # 9 digits hold a float32 exactly


def _clean(cells: Iterable[str]) -> str:
    return "\t".join(re.sub(r"[\t\r\n]", " ", cell) for cell in cells)


def _tsv_lines(rows: Iterable[list], scores: list[str], fields: list[str], with_status: bool) -> Iterator[str]:
    reserved = {"chrom", "pos", "id", "ref", "alt", *scores, *(["status"] if with_status else [])}
    # A field named like a column we write (a score from an earlier run, say) is replaced by it.
    names = [name for name in fields if name not in reserved]
    yield "\t".join(["chrom", "pos", "id", "ref", "alt", *names, *scores, *(["status"] if with_status else [])])
    for chrom, pos, identifier, ref, alt, extra, status, values in rows:
        cells = [chrom, str(to_one_based(pos)), identifier, ref, alt]
        cells += [extra.get(name, "") for name in names]
        cells += [_format_score(value, "nan") for value in values]
        yield _clean([*cells, status] if with_status else cells)


def _vcf_lines(
    rows: Iterable[list], scores: list[str], fields: list[str], with_status: bool, writer: VariantWriter
) -> tuple[list[str], Iterator[tuple[str, str, int, int]]]:
    """(header lines, then (line, chrom, 0-based start, end) per record)."""
    score_ids = {name: vcf_info_name(name) for name in scores}
    written = set(score_ids.values()) | ({"GLM_STATUS"} if with_status else set())
    header_lines = writer.header_lines
    fileformat = next((line for line in header_lines if line.startswith("##fileformat=")), "##fileformat=VCFv4.2")
    out = [fileformat]
    declared: dict[str, str] = {}  # INFO ID -> Type, from the header lines we keep
    for line in header_lines:
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
        description = writer.descriptions.get(name, f"glm score {name}")
        out.append(f'##INFO=<ID={key},Number=1,Type=Float,Description="{_quote(description)}">')
    if with_status:
        out.append('##INFO=<ID=GLM_STATUS,Number=1,Type=String,Description="Why glm did not score this variant">')
    out.append("#" + "\t".join(VCF_FIXED_COLUMNS))

    def records() -> Iterator[tuple[str, str, int, int]]:
        for chrom, pos, identifier, ref, alt, extra, status, values in rows:
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
            cells = [
                chrom,
                str(to_one_based(pos)),
                identifier or ".",
                ref,
                alt,
                quality,
                filters,
                ";".join(info) or ".",
            ]
            yield _clean(cells), chrom, pos, pos + len(ref)

    return out, records()


def _info_key(name: str) -> str:
    """A legal INFO ID for a field name (letters, digits, _ and .; not starting with a digit)."""
    key = _INFO_KEY_UNSAFE.sub("_", name) or "_"
    return f"_{key}" if key[0].isdigit() else key


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
