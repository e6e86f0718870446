"""Variants in and out: VCF(.gz), TSV/CSV and Python rows; REF check; scoring windows.

Reading turns every input into `Variant` records with 0-based positions, reconciles contig names
with the genome (exact, then the user's aliases, then adding or removing a "chr" prefix), checks
each REF against the genome and gives alleles we cannot score (symbolic, breakend, `*`) a per-row
`status` instead of failing. The input format is told from the file's content, never its name.
Writing picks TSV or VCF from the output suffix (the user's choice) and replaces the output file
atomically. `reference_windows` builds the equal-length ref/alt windows the causal-LM scorer needs.

Coordinates are 0-based half-open in the code; VCF/TSV positions are 1-based and are converted
only in `_to_zero_based` and `_to_one_based`.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import os
import re
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from glm.errors import InputError
from glm.files import atomic_file
from glm.genome import Genome, open_text

PYTHON_SOURCE = "<python>"
VCF_FIXED_COLUMNS = ("CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO")
OUTPUT_SUFFIXES = (".tsv", ".vcf", ".vcf.gz")

# Accepted (lowercase) names of the core columns of a TSV/CSV, and of the keys of Python dicts.
_COLUMN_NAMES = {
    "chrom": ("chrom", "chr", "chromosome", "contig"),
    "pos": ("pos", "position"),
    "ref": ("ref", "reference"),
    "alt": ("alt", "alternate"),
    "id": ("id",),
}
_REQUIRED = ("chrom", "pos", "ref", "alt")
_SEQUENCE_ALLELE = re.compile(r"[ACGTN]+")
_INTEGER = re.compile(r"[+-]?\d+")
_INFO_HEADER = re.compile(r"^##INFO=<ID=([^,>]+)(.*)>\s*$")
_INFO_KEY_UNSAFE = re.compile(r"[^0-9A-Za-z_.]")
# VCF 4.3 percent-encodes the characters that would break an INFO value; we decode on read and
# encode on write so values survive a round trip. "%" goes first when encoding, last when decoding.
_INFO_ESCAPES = (("%", "%25"), (";", "%3B"), ("=", "%3D"), ("\t", "%09"), ("\n", "%0A"), ("\r", "%0D"))


def _to_zero_based(pos1: int) -> int:
    """VCF/TSV 1-based position -> 0-based start. The only place input coordinates shift."""
    return pos1 - 1


def _to_one_based(pos0: int) -> int:
    """0-based start -> VCF/TSV 1-based position. The only place output coordinates shift."""
    return pos0 + 1


@dataclass
class Variant:
    """One REF>ALT allele at a 0-based position; a multi-allelic VCF line gives one per ALT.

    `line` is the 1-based line of the source file (shared by the ALTs of one VCF line), or for
    Python rows the 0-based index of the row. `fields` holds the extra columns of a table, or for a
    VCF the QUAL and FILTER columns followed by the INFO entries (flags as "true"). `status` is ""
    for a variant that can be scored, else why not. `contig` is the genome's name for `chrom`.
    """

    chrom: str
    pos: int
    ref: str
    alt: str
    id: str = "."
    fields: dict[str, str] = field(default_factory=dict)
    line: int = 0
    source: str = PYTHON_SOURCE
    status: str = ""
    contig: str = ""

    @property
    def kind(self) -> str:
        """ "SNV", "MNV", "insertion", "deletion", "complex" or "unsupported".

        Equal lengths give SNV (1 base) or MNV. Otherwise the shared leading, then trailing, bases
        are stripped: what is left only in ALT is an insertion, only in REF a deletion, in both complex.
        """
        ref, alt = self.ref.upper(), self.alt.upper()
        if not (_SEQUENCE_ALLELE.fullmatch(ref) and _SEQUENCE_ALLELE.fullmatch(alt)):
            return "unsupported"
        if len(ref) == len(alt):
            return "SNV" if len(ref) == 1 else "MNV"
        shared = 0
        while shared < min(len(ref), len(alt)) and ref[shared] == alt[shared]:
            shared += 1
        ref, alt = ref[shared:], alt[shared:]
        shared = 0
        while shared < min(len(ref), len(alt)) and ref[-1 - shared] == alt[-1 - shared]:
            shared += 1
        ref, alt = ref[: len(ref) - shared], alt[: len(alt) - shared]
        if not ref:
            return "insertion"
        if not alt:
            return "deletion"
        return "complex"

    @property
    def where(self) -> str:
        """`source:line`, for messages."""
        return f"{self.source}:{self.line}"


class VariantList(list[Variant]):
    """The variants read from one source, with its VCF header lines (`##...`; empty for tables)."""

    def __init__(self, variants: Iterable[Variant] = (), header_lines: Sequence[str] = (), source: str = ""):
        super().__init__(variants)
        self.header_lines = list(header_lines)
        self.source = source


@dataclass
class _Row:
    """One input row before its ALT column is split and its alleles are checked."""

    chrom: str
    pos: str | int
    ref: str
    alt: str
    id: str
    fields: dict[str, str]
    line: int
    per_allele: dict[str, list[str]] = field(default_factory=dict)  # INFO Number=A values, one per ALT


# ---------------------------------------------------------------------------------------------
# Reading


def read_variants(
    source: str | os.PathLike[str] | Iterable[Mapping[str, Any] | Sequence[Any]],
    genome: Genome,
    aliases: dict[str, str] | None = None,
    on_ref_mismatch: str = "error",
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
    if on_ref_mismatch not in ("error", "skip"):
        raise InputError(f"on_ref_mismatch: expected 'error' or 'skip', got {on_ref_mismatch!r}")
    aliases = dict(aliases or {})
    for name, target in aliases.items():
        if target not in genome:
            raise InputError(
                f"aliases: {name!r} maps to {target!r}, which is not a contig of the genome; {_contig_list(genome)}"
            )

    header_lines: list[str] = []
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        source_name = str(path)
        try:
            if _sniff_is_vcf(path):
                variants = _read_vcf(path, header_lines)
            else:
                variants = _read_table(path)
        except (OSError, EOFError, zlib.error) as error:  # unreadable, truncated or corrupt gzip
            raise InputError(f"cannot read: {error}", path) from error
    else:
        source_name = PYTHON_SOURCE
        variants = _read_python(source)
    if not variants:
        raise InputError("no variants: the input has no variant rows", source_name)

    _reconcile_contigs(variants, genome, aliases)
    _check_bounds_and_ref(variants, genome, on_ref_mismatch)
    return VariantList(variants, header_lines, source_name)


def _contig_list(genome: Genome) -> str:
    shown = ", ".join(genome.names[:10])
    more = f" (first 10 of {len(genome)})" if len(genome) > 10 else ""
    return f"contigs in the genome{more}: {shown}"


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


def _read_vcf(path: Path, header_lines: list[str]) -> list[Variant]:
    variants: list[Variant] = []
    columns: list[str] | None = None
    info_numbers: dict[str, str] = {}
    with open_text(path) as handle:
        for number, text in _lines(handle):
            if not text.strip():
                continue
            if text.startswith("##"):
                header_lines.append(text)
                match = _INFO_HEADER.match(text)
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
            if len(cells) != len(columns):
                raise InputError(
                    f"columns: expected {len(columns)} tab-separated columns (as in the #CHROM header), "
                    f"found {len(cells)}",
                    path,
                    number,
                )
            row = _Row(
                chrom=cells[0], pos=cells[1], ref=cells[3], alt=cells[4], id=cells[2] or ".", fields={}, line=number
            )
            if len(columns) > 5:
                row.fields["QUAL"] = cells[5]
            if len(columns) > 6:
                row.fields["FILTER"] = cells[6]
            if len(columns) > 7:
                _parse_info(cells[7], info_numbers, row)
            variants += _row_to_variants(row, str(path))
    return variants


def _vcf_header(path: Path, number: int, text: str) -> list[str]:
    columns = text[1:].split("\t")
    expected = VCF_FIXED_COLUMNS[: max(5, min(len(columns), 8))]
    if len(columns) < 5 or tuple(columns[: len(expected)]) != expected:
        raise InputError(
            f"header: expected the tab-separated columns #{' '.join(VCF_FIXED_COLUMNS)}, found {text!r}", path, number
        )
    return columns


def _parse_info(info: str, numbers: dict[str, str], row: _Row) -> None:
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
        value = _decode_info(value)
        row.fields[key] = value
        values = value.split(",")
        if n_alts > 1 and numbers.get(key) == "A" and len(values) == n_alts:
            row.per_allele[key] = values
        elif n_alts > 1 and numbers.get(key) == "R" and len(values) == n_alts + 1:
            row.per_allele[key] = [f"{values[0]},{alt_value}" for alt_value in values[1:]]


def _decode_info(value: str) -> str:
    if "%" not in value:
        return value
    for plain, escaped in reversed(_INFO_ESCAPES):
        value = value.replace(escaped, plain).replace(escaped.lower(), plain)
    return value


def _encode_info(value: str) -> str:
    for plain, escaped in _INFO_ESCAPES:
        value = value.replace(plain, escaped)
    return value


def _read_table(path: Path) -> list[Variant]:
    variants: list[Variant] = []
    with open_text(path) as handle:
        lines = _lines(handle)
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
        roles = _column_roles(names, str(path), header_number)
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
            row = _Row(
                chrom=by_role["chrom"],
                pos=by_role["pos"],
                ref=by_role["ref"],
                alt=by_role["alt"],
                id=by_role.get("id") or ".",
                fields=extra,
                line=number,
            )
            variants += _row_to_variants(row, str(path))
    return variants


def _split(text: str, delimiter: str) -> list[str]:
    # CSV cells may be quoted ("a, b"); tab-separated cells are taken literally.
    return next(csv.reader([text])) if delimiter == "," else text.split("\t")


def _column_roles(names: Sequence[str], source: str, line: int) -> dict[str, int]:
    """Map chrom/pos/ref/alt(/id) to column indexes, accepting the usual names in any case."""
    roles: dict[str, int] = {}
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        lowered = name.lower()
        if lowered in seen:
            raise InputError(
                f"header: duplicate column {name!r} (columns {seen[lowered] + 1} and {index + 1})", source, line
            )
        seen[lowered] = index
        for role, accepted in _COLUMN_NAMES.items():
            if lowered in accepted:
                if role in roles:
                    raise InputError(
                        f"header: columns {names[roles[role]]!r} and {name!r} both look like the {role} column",
                        source,
                        line,
                    )
                roles[role] = index
    missing = [role for role in _REQUIRED if role not in roles]
    if missing:
        accepted = "; ".join(f"{role}: {'|'.join(_COLUMN_NAMES[role])}" for role in _REQUIRED)
        raise InputError(
            f"header: missing column(s) {', '.join(missing)}; a table needs a tab- or comma-separated header line "
            f"naming its columns ({accepted})",
            source,
            line,
        )
    return roles


def _read_python(rows: Iterable[Any]) -> list[Variant]:
    if hasattr(rows, "to_dict") and hasattr(rows, "columns"):  # a pandas DataFrame iterates over its column names
        rows = rows.to_dict("records")
    variants: list[Variant] = []
    for index, item in enumerate(rows):
        if isinstance(item, Mapping):
            keys = {str(key).lower(): key for key in item}
            roles: dict[str, Any] = {}
            for role, accepted in _COLUMN_NAMES.items():
                found = [keys[name] for name in accepted if name in keys]
                if len(found) > 1:
                    raise InputError(f"keys {found} all look like the {role} key", PYTHON_SOURCE, index)
                if found:
                    roles[role] = found[0]
            missing = [role for role in _REQUIRED if role not in roles]
            if missing:
                raise InputError(f"missing key(s) {', '.join(missing)} (row keys: {list(item)})", PYTHON_SOURCE, index)
            used = set(roles.values())
            values = {role: item[key] for role, key in roles.items()}
            extra = {str(key): _text(value) for key, value in item.items() if key not in used}
        elif isinstance(item, Sequence) and not isinstance(item, (str, bytes)):
            if len(item) < 4:
                raise InputError(f"expected (chrom, pos, ref, alt, ...), got {len(item)} items", PYTHON_SOURCE, index)
            values = dict(zip(_REQUIRED, item[:4]))
            extra = {f"column{number}": _text(value) for number, value in enumerate(item[4:], start=5)}
        else:
            raise InputError(f"expected a dict or a tuple, got {type(item).__name__}", PYTHON_SOURCE, index)
        for role in _REQUIRED:
            if values[role] is None:
                raise InputError(f"{role}: missing value", PYTHON_SOURCE, index)
        row = _Row(
            chrom=_text(values["chrom"]),
            pos=values["pos"],
            ref=_text(values["ref"]),
            alt=_text(values["alt"]),
            id=_text(values.get("id")) or ".",
            fields=extra,
            line=index,
        )
        variants += _row_to_variants(row, PYTHON_SOURCE)
    return variants


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _parse_pos(value: str | int, source: str, line: int) -> int:
    """A 1-based position from a cell or a Python value -> 0-based start."""
    if isinstance(value, bool):
        raise InputError(f"POS: expected an integer, got {value!r}", source, line)
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # pandas turns integer columns with gaps into floats
    if not isinstance(value, int):
        if hasattr(value, "__index__"):  # numpy integers
            value = int(value)
        elif isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
            value = int(value.strip())
        else:
            raise InputError(f"POS: expected an integer, got {value!r}", source, line)
    if value < 1:
        raise InputError(f"POS: must be at least 1 (positions are 1-based), got {value}", source, line)
    return _to_zero_based(value)


def _unsupported_alt(alt: str) -> str:
    """Why an ALT cannot be scored, or "" for a sequence allele (checked separately)."""
    if alt == "*":
        return "ALT '*' (overlapping deletion) not supported"
    if alt == ".":
        return "no ALT allele ('.'): nothing to score"
    if alt.startswith("<") and alt.endswith(">"):
        return f"symbolic allele {alt} not supported"
    if "[" in alt or "]" in alt or (len(alt) > 1 and (alt.startswith(".") or alt.endswith("."))):
        return "breakend alleles not supported"
    return ""


def _check_bases(allele: str, name: str, source: str, line: int) -> str:
    if not allele:
        raise InputError(f"{name}: empty allele", source, line)
    upper = allele.upper()
    if not _SEQUENCE_ALLELE.fullmatch(upper):
        bad = next(char for char in upper if char not in "ACGTN")
        raise InputError(f"{name}: invalid base {bad!r} in {allele!r} (expected A, C, G, T or N)", source, line)
    return upper


def _row_to_variants(row: _Row, source: str) -> list[Variant]:
    """Check one row's fields and split its ALT column into one Variant per allele."""
    if not row.chrom:
        raise InputError("CHROM: empty contig name", source, row.line)
    pos = _parse_pos(row.pos, source, row.line)
    ref = _check_bases(row.ref, "REF", source, row.line)
    if not row.alt:
        raise InputError("ALT: empty allele", source, row.line)
    variants = []
    for index, alt in enumerate(row.alt.split(",")):
        status = _unsupported_alt(alt)
        if not status:
            alt = _check_bases(alt, "ALT", source, row.line)
        fields = dict(row.fields)
        for key, values in row.per_allele.items():
            fields[key] = values[index]
        variants.append(
            Variant(
                chrom=row.chrom,
                pos=pos,
                ref=ref,
                alt=alt,
                id=row.id,
                fields=fields,
                line=row.line,
                source=source,
                status=status,
            )
        )
    return variants


def _reconcile_contigs(variants: list[Variant], genome: Genome, aliases: dict[str, str]) -> None:
    """Set each variant's `contig` to the genome's name for its `chrom`."""
    resolved: dict[str, str] = {}
    for variant in variants:
        if variant.chrom not in resolved:
            contig = _match_contig(variant.chrom, genome, aliases)
            if contig is None:
                raise InputError(
                    f"CHROM: contig {variant.chrom!r} is not in the genome ({genome.path}); {_contig_list(genome)}; "
                    "map other names with aliases={'name': 'contig'}",
                    variant.source,
                    variant.line,
                )
            resolved[variant.chrom] = contig
        variant.contig = resolved[variant.chrom]


def _match_contig(chrom: str, genome: Genome, aliases: dict[str, str]) -> str | None:
    if chrom in genome:
        return chrom
    if chrom in aliases:
        return aliases[chrom]
    if chrom[:3].lower() == "chr" and chrom[3:] in genome:
        return chrom[3:]
    for prefix in ("chr", "Chr", "CHR"):
        if prefix + chrom in genome:
            return prefix + chrom
    return None


def _check_bounds_and_ref(variants: list[Variant], genome: Genome, on_ref_mismatch: str) -> None:
    """Positions inside the contig (else an error), then REF against the genome, one contig at a time."""
    by_contig: dict[str, list[tuple[int, Variant]]] = {}
    for index, variant in enumerate(variants):
        length = genome.lengths[variant.contig]
        if variant.pos >= length:
            raise InputError(
                f"POS: {_to_one_based(variant.pos)} is past the end of contig {variant.contig!r} (length {length:,})",
                variant.source,
                variant.line,
            )
        if variant.pos + len(variant.ref) > length:
            raise InputError(
                f"REF: {variant.ref!r} at POS {_to_one_based(variant.pos)} extends past the end of contig "
                f"{variant.contig!r} (length {length:,})",
                variant.source,
                variant.line,
            )
        by_contig.setdefault(variant.contig, []).append((index, variant))

    mismatches: list[tuple[int, Variant, str]] = []
    for contig, group in by_contig.items():
        sequence = genome.sequence(contig)  # grouped so each contig is loaded once, whatever the input order
        for index, variant in group:
            found = sequence[variant.pos : variant.pos + len(variant.ref)].upper()
            if found != variant.ref:
                mismatches.append((index, variant, found))
    if not mismatches:
        return
    if on_ref_mismatch == "skip":
        for _, variant, found in mismatches:
            if not variant.status:
                variant.status = f"REF mismatch: genome has {found!r}"
        return
    mismatches.sort(key=lambda mismatch: mismatch[0])  # examples in input order
    first = mismatches[0][1]
    examples = "; ".join(
        f"{variant.where} {variant.chrom}:{_to_one_based(variant.pos)} REF {variant.ref!r} but genome has {found!r}"
        for _, variant, found in mismatches[:3]
    )
    raise InputError(
        f"REF: {len(mismatches)} of {len(variants)} variants do not match the genome ({genome.path}); "
        f"first {min(3, len(mismatches))}: {examples}; pass on_ref_mismatch='skip' to keep them unscored",
        first.source,
        first.line,
    )


# ---------------------------------------------------------------------------------------------
# Writing


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
        cells = [variant.chrom, str(_to_one_based(variant.pos)), variant.id, variant.ref, variant.alt]
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
        match = _INFO_HEADER.match(line)
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
                info.append(f"{key}={_encode_info(value)}")
        info += [f"{key}={_format_score(scores[name][index], '.')}" for name, key in score_ids.items()]
        if variant.status:
            info.append(f"GLM_STATUS={_encode_info(variant.status)}")
        cells = [
            variant.chrom,
            str(_to_one_based(variant.pos)),
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


# ---------------------------------------------------------------------------------------------
# Scoring windows


def reference_windows(
    variant: Variant, genome: Genome, window: int, k: int, grid: int | None = None
) -> tuple[str, str, int]:
    """(ref_window, alt_window, variant_offset): equal-length forward-strand windows for scoring.

    `variant_offset` is where REF starts in the window. The window start is chosen so that:
      1. the whole event fits: offset + max(len(ref), len(alt)) <= window (else an InputError:
         the indel is longer than the scoring window);
      2. the window lies inside the contig whenever the contig is at least `window` long: near a
         contig end the window shifts rather than being padded. Only an insertion at the very end
         of a contig, whose ALT would not fit, reaches past the end (padded with N). A contig
         shorter than the window is included whole and padded with N on both sides;
      3. the offset is a multiple of k where 1 and 2 allow it, so ref and alt are tokenized in the
         same k-mer phase and share every token before the variant;
      4. the event sits as near the middle as 1-3 allow. With a `grid` (a multiple of k), the
         start instead snaps down to the grid (plus the variant's phase, pos mod k), so that all
         variants within one grid cell and phase share one reference window; the event then sits
         within grid/2 bases of the middle. A scorer that runs each distinct reference window once
         gains from this.
    The alt window is the ref window with REF replaced by ALT, then length-matched to `window`:
    after a deletion (ALT shorter) the genome bases that follow the ref window are appended (N past
    the contig end); after an insertion the excess is trimmed from the right end. So both windows
    share the identical prefix up to the offset and both contain their whole allele. Bases keep the
    genome's case (soft-masking); the ALT allele is uppercase.
    """
    if window < 1 or k < 1:
        raise ValueError(f"window ({window}) and k ({k}) must be positive")
    if variant.kind == "unsupported":
        reason = variant.status or f"ALT {variant.alt!r} is not a sequence allele"
        raise InputError(f"ALT: cannot build a scoring window: {reason}", variant.source, variant.line)
    contig = variant.contig or variant.chrom
    if contig not in genome:
        raise InputError(
            f"CHROM: contig {contig!r} is not in the genome; {_contig_list(genome)}", variant.source, variant.line
        )
    length = genome.lengths[contig]
    span = max(len(variant.ref), len(variant.alt))
    if span > window:
        raise InputError(
            f"ALT: indel longer than the scoring window ({span} bases in REF/ALT, window {window})",
            variant.source,
            variant.line,
        )

    # Starts that keep the event inside the window; and those that keep the window inside the
    # contig, or (short contig) that cover the whole contig.
    fit_low, fit_high = variant.pos + span - window, variant.pos
    edge_low, edge_high = min(0, length - window), max(0, length - window)
    low, high = max(fit_low, edge_low), min(fit_high, edge_high)
    if low > high:  # an insertion at the contig end: containing the event wins; pad as little as phase allows
        low, high = fit_low, min(fit_high, fit_low + k - 1)
    if grid is not None and grid > k:
        if grid % k:
            raise ValueError(f"grid ({grid}) must be a multiple of k ({k})")
        ideal = variant.pos - ((window - span) // 2 - grid // 2) // k * k
        cell = ideal - ideal % grid
        ideal = cell + (variant.pos - cell) % k
    else:
        ideal = variant.pos - ((window - span) // 2) // k * k
    clamped = min(max(ideal, low), high)
    below = clamped - (clamped - variant.pos) % k  # the nearest starts with offset a multiple of k
    phased = [start for start in (below, below + k) if low <= start <= high]
    start = min(phased, key=lambda start: abs(start - clamped)) if phased else clamped
    offset = variant.pos - start
    assert 0 <= offset and offset + span <= window

    ref_window = genome.fetch(contig, start, start + window)
    alt_window = ref_window[:offset] + variant.alt.upper() + ref_window[offset + len(variant.ref) :]
    if len(alt_window) < window:
        alt_window += genome.fetch(contig, start + window, start + window + window - len(alt_window))
    alt_window = alt_window[:window]
    assert len(ref_window) == len(alt_window) == window
    return ref_window, alt_window, offset


def window_fraction_n(sequence: str) -> float:
    """Fraction of N (either case) in a window: callers flag windows that are mostly padding or gaps."""
    if not sequence:
        return 0.0
    return (sequence.count("N") + sequence.count("n")) / len(sequence)
