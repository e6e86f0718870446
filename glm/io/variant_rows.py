"""One row of a variant table, VCF line or Python row -> checked Variant records (one per ALT).

Positions arrive 1-based and leave 0-based (through glm.io.coordinates); alleles are uppercased
and checked; ALTs we cannot score (symbolic, breakend, `*`, ".", one equal to REF) get a status
instead of failing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from glm.errors import InputError
from glm.io.coordinates import to_zero_based
from glm.io.variants import SEQUENCE_ALLELE, Variant

COLUMN_NAMES = {
    "chrom": ("chrom", "chr", "chromosome", "contig"),
    "pos": ("pos", "position"),
    "ref": ("ref", "reference"),
    "alt": ("alt", "alternate"),
    "id": ("id",),
}

REQUIRED = ("chrom", "pos", "ref", "alt")

_INTEGER = re.compile(r"[+-]?\d+")


@dataclass
class Row:
    """One input row before its ALT column is split and its alleles are checked."""

    chrom: str
    pos: str | int
    ref: str
    alt: str
    id: str
    fields: dict[str, str]
    line: int | None
    per_allele: dict[str, list[str]] = field(default_factory=dict)  # INFO Number=A values, one per ALT


def column_roles(names: Sequence[str], source: str, line: int, what: str = "column") -> dict[str, int]:
    """Map chrom/pos/ref/alt(/id) to indexes in `names` (a table's header, or a dict's keys), any case.

    `what` is "column" for a table header or "key" for the keys of a Python row, for the messages.
    """
    where = "header: " if what == "column" else ""
    roles: dict[str, int] = {}
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        lowered = name.lower()
        if lowered in seen:
            raise InputError(
                f"{where}duplicate {what} {name!r} ({what}s {seen[lowered] + 1} and {index + 1})", source, line
            )
        seen[lowered] = index
        for role, accepted in COLUMN_NAMES.items():
            if lowered in accepted:
                if role in roles:
                    raise InputError(
                        f"{where}{what}s {names[roles[role]]!r} and {name!r} both look like the {role} {what}",
                        source,
                        line,
                    )
                roles[role] = index
    missing = [role for role in REQUIRED if role not in roles]
    if missing:
        if what == "column":
            accepted = "; ".join(f"{role}: {'|'.join(COLUMN_NAMES[role])}" for role in REQUIRED)
            hint = f"; a table needs a tab- or comma-separated header line naming its columns ({accepted})"
        else:
            hint = f" (row keys: {list(names)})"
        raise InputError(f"{where}missing {what}(s) {', '.join(missing)}{hint}", source, line)
    return roles


def cell_text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _parse_pos(value: str | int, source: str, line: int | None) -> int:
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
    return to_zero_based(value)


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


def _check_bases(allele: str, name: str, source: str, line: int | None) -> str:
    if not allele:
        raise InputError(f"{name}: empty allele", source, line)
    upper = allele.upper()
    if not SEQUENCE_ALLELE.fullmatch(upper):
        bad = next(char for char in upper if char not in "ACGTN")
        raise InputError(f"{name}: invalid base {bad!r} in {allele!r} (expected A, C, G, T or N)", source, line)
    return upper


def row_to_variants(row: Row, source: str) -> list[Variant]:
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
            status = "ALT equals REF: not a variant, nothing to score" if alt == ref else ""
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
