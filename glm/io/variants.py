"""Variant records, and the checks that tie them to a genome: contig names, bounds, REF alleles.

A `Variant` is one REF>ALT allele at a 0-based position (glm.io.variant_readers makes them from
VCF, TSV/CSV or Python rows; glm.io.variant_writer writes them back out). Contig names are
reconciled with the genome (exact, then the user's aliases, then adding or removing a "chr"
prefix) and each REF is checked against the genome before anything is scored.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from glm.errors import InputError
from glm.io.coordinates import parse_region, to_one_based
from glm.io.files import open_text

if TYPE_CHECKING:
    from glm.io.genome import Genome

PYTHON_SOURCE = "<python>"
VCF_FIXED_COLUMNS = ("CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO")
SEQUENCE_ALLELE = re.compile(r"[ACGTN]+")
INFO_HEADER = re.compile(r"^##INFO=<ID=([^,>]+)(.*)>\s*$")
OnRefMismatch = Literal["error", "skip"]  # a REF that disagrees with the genome: stop, or report it unscored
# VCF 4.3 percent-encodes the characters that would break an INFO value; we decode on read and
# encode on write so values survive a round trip. "%" goes first when encoding, last when decoding.
_INFO_ESCAPES = (("%", "%25"), (";", "%3B"), ("=", "%3D"), ("\t", "%09"), ("\n", "%0A"), ("\r", "%0D"))


@dataclass
class Variant:
    """One REF>ALT allele at a 0-based position; a multi-allelic VCF line gives one per ALT.

    `line` is the 1-based line of the source file (shared by the ALTs of one VCF line), for
    Python rows the 0-based index of the row, or None for a record read through a tabix index
    (lines before it are not read; `source` then names the record as "FILE record CHROM:POS").
    `fields` holds the extra columns of a table, or for a VCF the QUAL and FILTER columns followed
    by the INFO entries (flags as "true"). `status` is "" for a variant that can be scored, else
    why not. `contig` is the genome's name for `chrom`.
    """

    chrom: str
    pos: int
    ref: str
    alt: str
    id: str = "."
    fields: dict[str, str] = field(default_factory=dict)
    line: int | None = 0
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
        if not (SEQUENCE_ALLELE.fullmatch(ref) and SEQUENCE_ALLELE.fullmatch(alt)):
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
        """`source:line` (or `source` when the line is not known), for messages."""
        return self.source if self.line is None else f"{self.source}:{self.line}"


class VariantList(list[Variant]):
    """The variants read from one source, with its VCF header lines (`##...`; empty for tables)."""

    def __init__(self, variants: Iterable[Variant] = (), header_lines: Sequence[str] = (), source: str = ""):
        super().__init__(variants)
        self.header_lines = list(header_lines)
        self.source = source


def decode_info(value: str) -> str:
    if "%" not in value:
        return value
    for plain, escaped in reversed(_INFO_ESCAPES):
        value = value.replace(escaped, plain).replace(escaped.lower(), plain)
    return value


def encode_info(value: str) -> str:
    for plain, escaped in _INFO_ESCAPES:
        value = value.replace(plain, escaped)
    return value


def contig_list(genome: Genome) -> str:
    shown = ", ".join(genome.names[:10])
    more = f" (first 10 of {len(genome)})" if len(genome) > 10 else ""
    return f"contigs in the genome{more}: {shown}"


def reconcile_contigs(variants: list[Variant], genome: Genome, aliases: dict[str, str]) -> None:
    """Set each variant's `contig` to the genome's name for its `chrom`."""
    resolved: dict[str, str] = {}
    for variant in variants:
        if variant.chrom not in resolved:
            resolved[variant.chrom] = genome_contig(variant.chrom, genome, aliases, variant.source, variant.line)
        variant.contig = resolved[variant.chrom]


def genome_contig(chrom: str, genome: Genome, aliases: dict[str, str], source: str, line: int | None = None) -> str:
    """The genome's name for a variant file's `chrom`; none is an InputError naming `source:line`."""
    contig = _match_contig(chrom, genome, aliases)
    if contig is None:
        raise InputError(
            f"CHROM: contig {chrom!r} is not in the genome ({genome.path}); {contig_list(genome)}; "
            f"map it to one with --alias {chrom}=CONTIG (in Python: aliases={{{chrom!r}: 'CONTIG'}})",
            source,
            line,
        )
    return contig


_UCSC_ACCESSION = re.compile(r"(?:chr[^_]+_|chrUn_)?([A-Z]{2}\d{6})v(\d+)(?:_random|_alt|_fix)?", re.IGNORECASE)
_MITOCHONDRION = {"m", "mt", "chrm", "chrmt"}


def contig_key(name: str) -> str:
    """A spelling-free key for contig names: "chr1" ~ "1", "chrM" ~ "MT", "chrUn_KI270302v1" ~ "KI270302.1"."""
    lowered = name.lower()
    if lowered in _MITOCHONDRION:
        return "mt"
    accession = _UCSC_ACCESSION.fullmatch(name)
    if accession:
        return f"{accession.group(1).lower()}.{accession.group(2)}"
    return lowered[3:] if lowered.startswith("chr") else lowered


def _match_contig(chrom: str, genome: Genome, aliases: dict[str, str]) -> str | None:
    """The genome's name for `chrom`: exact, then `aliases`, then the same `contig_key` (if unique)."""
    if chrom in genome:
        return chrom
    if chrom in aliases:
        return aliases[chrom]
    matches = _names_by_key(tuple(genome.names)).get(contig_key(chrom), [])
    return matches[0] if len(matches) == 1 else None


@functools.lru_cache(maxsize=8)
def _names_by_key(names: tuple[str, ...]) -> dict[str, list[str]]:
    table: dict[str, list[str]] = {}
    for name in names:
        table.setdefault(contig_key(name), []).append(name)
    return table


def check_bounds_and_ref(variants: list[Variant], genome: Genome, on_ref_mismatch: OnRefMismatch) -> None:
    """Positions inside the contig (else an error), then REF against the genome (an indexed read each)."""
    for variant in variants:
        length = genome.lengths[variant.contig]
        if variant.pos >= length:
            raise InputError(
                f"POS: {to_one_based(variant.pos)} is past the end of contig {variant.contig!r} (length {length:,})",
                variant.source,
                variant.line,
            )
        if variant.pos + len(variant.ref) > length:
            raise InputError(
                f"REF: {variant.ref!r} at POS {to_one_based(variant.pos)} extends past the end of contig "
                f"{variant.contig!r} (length {length:,})",
                variant.source,
                variant.line,
            )

    mismatches: list[tuple[int, Variant, str]] = []
    for index, variant in enumerate(variants):
        found = genome.fetch(variant.contig, variant.pos, variant.pos + len(variant.ref)).upper()
        if found != variant.ref:
            mismatches.append((index, variant, found))
    if not mismatches:
        return
    if on_ref_mismatch == "skip":
        for _, variant, found in mismatches:
            if not variant.status:
                variant.status = f"REF mismatch: genome has {found!r}"
        return
    first = mismatches[0][1]
    examples = "; ".join(
        f"{variant.where} {variant.chrom}:{to_one_based(variant.pos)} REF {variant.ref!r} but genome has {found!r}"
        for _, variant, found in mismatches[:3]
    )
    raise InputError(
        f"REF: {len(mismatches)} of {len(variants)} variants do not match the genome ({genome.path}); "
        f"first {min(3, len(mismatches))}: {examples}; pass on_ref_mismatch='skip' to keep them unscored",
        first.source,
        first.line,
    )


def resolve_regions(
    items: Iterable[str], genome: Genome, aliases: dict[str, str] | None = None
) -> list[tuple[str, int, int]]:
    """Regions as (genome contig, 0-based start, end): each item "chr:start-end" (1-based inclusive),
    a contig name, or a BED file (tab-separated chrom, 0-based start, end; track/browser/# lines
    skipped). Contig names are matched as variant contigs are (exact, aliases, chr prefix); one the genome
    lacks is an InputError, and so is a BED file without a region (no regions would mean every variant).
    Regions that hold no variant are fine: nothing is scored there."""
    regions = []
    for item in items:
        path = Path(item)
        if not path.is_file():
            name, colon, span = item.rpartition(":") if ":" in item else (item, "", "")
            contig = _match_contig(name, genome, dict(aliases or {})) or name
            regions.append(parse_region(contig + colon + span, genome.lengths, str(genome.path)))
            continue
        before = len(regions)
        with open_text(path) as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip() or line.startswith(("#", "track", "browser")):
                    continue
                cells = line.rstrip("\r\n").split("\t")
                if len(cells) < 3 or not (cells[1].isdigit() and cells[2].isdigit()):
                    raise InputError("BED: expected tab-separated CHROM START END (0-based starts)", path, number)
                if int(cells[2]) < int(cells[1]):
                    raise InputError(f"BED: END {cells[2]} is before START {cells[1]}", path, number)
                contig = _match_contig(cells[0], genome, dict(aliases or {}))
                if contig is None:
                    raise InputError(
                        f"BED: contig {cells[0]!r} is not in the genome; {contig_list(genome)}", path, number
                    )
                regions.append((contig, int(cells[1]), int(cells[2])))
        if len(regions) == before:
            raise InputError("BED: no regions in this file (without regions every variant would be scored)", path)
    return regions
