"""Writing variants and their scores: TSV, VCF or gzip VCF, chosen by the output suffix; atomic."""

from __future__ import annotations

import gzip
import io
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from glm.errors import InputError
from glm.io.coordinates import to_one_based
from glm.io.files import atomic_file
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
    """Write variants and their score columns to TSV, VCF or gzip VCF, chosen by the suffix of `path`.

    TSV: columns chrom, pos (1-based), id, ref, alt, the extra fields (union over rows, in first-seen
    order), the score columns (NaN as "nan"), and a status column when any row has a status.
    VCF: `header_lines` (default: those the variants were read with) are re-emitted; scores become
    INFO fields `vcf_info_name(score)` declared Number=1,Type=Float (NaN as "."), a status becomes
    INFO GLM_STATUS, fields QUAL and FILTER fill their columns and other fields go to INFO. One
    line per Variant, so split multi-allelic records stay split. `.vcf.gz` is plain gzip, not
    BGZF, so it cannot be tabix-indexed (recompress with `bgzip` for that).
    The file is written beside `path` under a temporary name and renamed into place, so an
    interrupted write never leaves a partial file under the final name. Returns the path.
    """
    path = Path(path)
    lowered = path.name.lower()
    kind = next((suffix for suffix in (".vcf.gz", ".vcf", ".tsv") if lowered.endswith(suffix)), None)
    if kind is None:
        raise InputError(f"output: unsupported file suffix; use one of {', '.join(OUTPUT_SUFFIXES)}", path)
    if not path.parent.is_dir():
        raise InputError("output: directory does not exist", path.parent)
    scores = dict(scores or {})
    for name, values in scores.items():
        if len(values) != len(variants):
            raise ValueError(f"score column {name!r} has {len(values)} values for {len(variants)} variants")
    if header_lines is None:
        header_lines = getattr(variants, "header_lines", [])
    descriptions = dict(descriptions or {})

    with atomic_file(path) as temporary, open(temporary, "wb") as raw:
        if kind == ".vcf.gz":
            # Name the member after the final file (not the temporary) and fix mtime: same input, same bytes.
            binary: IO[bytes] = gzip.GzipFile(filename=path.name[: -len(".gz")], mode="wb", fileobj=raw, mtime=0)
        else:
            binary = raw
        with binary, io.TextIOWrapper(binary, encoding="utf-8", newline="\n") as handle:
            if kind == ".tsv":
                _write_tsv(handle, variants, scores)
            else:
                _write_vcf(handle, variants, scores, header_lines, descriptions)
    return path


def _format_score(value: float, missing: str) -> str:
    value = float(value)
    return missing if math.isnan(value) else format(value, ".9g")  # 9 digits hold a float32 exactly


def _field_names(variants: Sequence[Variant]) -> list[str]:
    names: dict[str, None] = {}
    for variant in variants:
        names.update(dict.fromkeys(variant.fields))
    return list(names)


def _write_tsv(handle: IO[str], variants: Sequence[Variant], scores: dict[str, Sequence[float]]) -> None:
    with_status = any(variant.status for variant in variants)
    reserved = {"chrom", "pos", "id", "ref", "alt", *scores, *(["status"] if with_status else [])}
    # A field named like a column we write (a score from an earlier run, say) is replaced by it.
    names = [name for name in _field_names(variants) if name not in reserved]
    header = ["chrom", "pos", "id", "ref", "alt", *names, *scores, *(["status"] if with_status else [])]
    handle.write("\t".join(header) + "\n")
    for index, variant in enumerate(variants):
        cells = [variant.chrom, str(to_one_based(variant.pos)), variant.id, variant.ref, variant.alt]
        cells += [variant.fields.get(name, "") for name in names]
        cells += [_format_score(values[index], "nan") for values in scores.values()]
        if with_status:
            cells.append(variant.status)
        handle.write("\t".join(re.sub(r"[\t\r\n]", " ", cell) for cell in cells) + "\n")


def _write_vcf(
    handle: IO[str],
    variants: Sequence[Variant],
    scores: dict[str, Sequence[float]],
    header_lines: Sequence[str],
    descriptions: dict[str, str],
) -> None:
    score_ids = {name: vcf_info_name(name) for name in scores}
    with_status = any(variant.status for variant in variants)
    written = set(score_ids.values()) | ({"GLM_STATUS"} if with_status else set())
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
    info_keys = {}
    for name in _field_names(variants):
        if name not in ("QUAL", "FILTER") and _info_key(name) not in written:
            info_keys[name] = _info_key(name)
    for name, key in info_keys.items():
        if key not in declared:
            out.append(f'##INFO=<ID={key},Number=.,Type=String,Description="{_quote(name)} column of the input">')
            declared[key] = "String"
    for name, key in score_ids.items():
        description = descriptions.get(name, f"glm score {name}")
        out.append(f'##INFO=<ID={key},Number=1,Type=Float,Description="{_quote(description)}">')
    if with_status:
        out.append('##INFO=<ID=GLM_STATUS,Number=1,Type=String,Description="Why glm did not score this variant">')
    out.append("#" + "\t".join(VCF_FIXED_COLUMNS))
    handle.write("\n".join(out) + "\n")

    for index, variant in enumerate(variants):
        info = []
        for name, key in info_keys.items():
            if name not in variant.fields:
                continue
            value = variant.fields[name]
            if declared.get(key) == "Flag":
                if value == "true":
                    info.append(key)
            else:
                info.append(f"{key}={encode_info(value)}")
        info += [f"{key}={_format_score(scores[name][index], '.')}" for name, key in score_ids.items()]
        if variant.status:
            info.append(f"GLM_STATUS={encode_info(variant.status)}")
        cells = [
            variant.chrom,
            str(to_one_based(variant.pos)),
            variant.id or ".",
            variant.ref,
            variant.alt,
            variant.fields.get("QUAL") or ".",
            variant.fields.get("FILTER") or ".",
            ";".join(info) or ".",
        ]
        handle.write("\t".join(re.sub(r"[\t\r\n]", " ", cell) for cell in cells) + "\n")


def _info_key(name: str) -> str:
    """A legal INFO ID for a field name (letters, digits, _ and .; not starting with a digit)."""
    key = _INFO_KEY_UNSAFE.sub("_", name) or "_"
    return f"_{key}" if key[0].isdigit() else key


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
