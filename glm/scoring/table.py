"""The table of variant scores (`VariantScores`) and saturation mutagenesis tables."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from glm.errors import InputError
from glm.io.coordinates import format_region, to_one_based
from glm.io.genome import Genome
from glm.io.variant_readers import read_variants
from glm.io.variant_writer import vcf_info_name, write_variants
from glm.io.variants import Variant, VariantList

DESCRIPTIONS = {
    "llr": "glm log-likelihood ratio log P(alt window) - log P(ref window) in nats, mean of both strands; "
    "negative = alt less likely (predicted more damaging)",
    "llr_forward": "glm log-likelihood ratio on the forward strand (nats)",
    "llr_reverse": "glm log-likelihood ratio on the reverse strand (nats)",
    "embedding_cosine": "glm cosine distance (1 - cosine similarity) between mean-pooled ref and alt window "
    "embeddings; larger = more different",
    "embedding_l2": "glm L2 distance between mean-pooled ref and alt window embeddings",
    "head_probability": "probability of the positive class from a supervised glm head",
    "window_n": "fraction of N in the reference window (above 0.5: the score rests on little sequence)",
}


def descriptions(columns: Iterable[str]) -> dict[str, str]:
    """The VCF INFO descriptions of score columns."""
    return {name: DESCRIPTIONS.get(name, f"glm score {name}") for name in columns}


class VariantScores:
    """Scores of variants in input order: the variants (fields and status kept) and one column per score.

    `scores["llr"]` is a numpy array; `scores.to_pandas()` a DataFrame (pandas needed);
    `scores.write("out.vcf.gz")` writes TSV, VCF or BGZF VCF (tabix-indexed) with the scores as INFO fields.
    Variants that were not scored have NaN scores and say why in their `status`. `chunk_size`: the
    variants scored together (score_variants sets it); a `.vcf.gz` ends a BGZF block every that many
    rows, as score_file's output does, so the two files hold the same bytes.
    """

    def __init__(self, variants: VariantList, columns: dict[str, np.ndarray], chunk_size: int | None = None):
        self.variants = variants
        self.columns = columns
        self.chunk_size = chunk_size

    def __len__(self) -> int:
        return len(self.variants)

    def __getitem__(self, column: str) -> np.ndarray:
        return self.columns[column]

    def __repr__(self) -> str:
        scored = sum(not variant.status for variant in self.variants)
        return f"VariantScores({len(self)} variants, {scored} scored, columns: {', '.join(self.columns)})"

    def rows(self) -> list[dict[str, Any]]:
        """One dict per variant: chrom, pos (1-based), id, ref, alt, the extra fields, the scores, status."""
        table = []
        for index, variant in enumerate(self.variants):
            row: dict[str, Any] = {
                "chrom": variant.chrom,
                "pos": to_one_based(variant.pos),
                "id": variant.id,
                "ref": variant.ref,
                "alt": variant.alt,
            }
            row.update(variant.fields)
            row.update({name: float(values[index]) for name, values in self.columns.items()})
            row["status"] = variant.status
            table.append(row)
        return table

    def to_pandas(self) -> Any:
        """The table as a pandas DataFrame (pandas is optional: the `pandas` extra, or `pip install pandas`)."""
        try:
            import pandas  # optional dependency
        except ImportError:
            raise InputError("to_pandas needs pandas: pip install pandas (or glm's `pandas` extra)") from None
        return pandas.DataFrame(self.rows())

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write TSV, VCF or BGZF VCF + .tbi (chosen by the suffix: .tsv, .vcf, .vcf.gz); atomic."""
        return write_variants(
            self.variants, self.columns, path, descriptions=descriptions(self.columns), block_rows=self.chunk_size
        )

    def summary(self, out: str | os.PathLike[str]) -> str:
        """How many variants were scored, why the others were not, and where the table went."""
        counts = ScoreCounts()
        counts.add(self.variants, self.columns.get("window_n"))
        return counts.summary(out)


@dataclass
class ScoreCounts:
    """Running counts for a summary of scored variants: all, not scored (by reason), mostly-N windows."""

    total: int = 0
    statuses: Counter = field(default_factory=Counter)
    mostly_n: int = 0

    def add(self, variants: Sequence[Variant], window_n: np.ndarray | None) -> None:
        self.total += len(variants)
        self.statuses.update(variant.status for variant in variants if variant.status)
        self.mostly_n += int(np.sum(window_n > 0.5)) if window_n is not None else 0

    def merge(self, other: ScoreCounts) -> None:
        """Add the counts of other variants (another shard's)."""
        self.total += other.total
        self.statuses.update(other.statuses)
        self.mostly_n += other.mostly_n

    def to_json(self) -> dict[str, Any]:
        return {"total": self.total, "statuses": dict(self.statuses), "mostly_n": self.mostly_n}

    @classmethod
    def from_json(cls, saved: dict[str, Any]) -> ScoreCounts:
        return cls(saved["total"], Counter(saved["statuses"]), saved["mostly_n"])

    def summary(self, out: str | os.PathLike[str]) -> str:
        lines = [f"{self.total - sum(self.statuses.values()):,} of {self.total:,} variants scored -> {out}"]
        lines += [f"  not scored ({count:,}): {status}" for status, count in self.statuses.most_common()]
        if self.mostly_n:
            lines.append(
                f"  warning: {self.mostly_n:,} scored variants have windows more than half N (column window_n)"
            )
        return "\n".join(lines)


def read_scores(path: str | os.PathLike[str], genome: Genome, column: str) -> VariantScores:
    """The variants of a table glm wrote (TSV or VCF) and one of its score columns, read back."""
    variants = read_variants(path, genome)
    names = (column, vcf_info_name(column))
    values = [next((variant.fields[name] for name in names if name in variant.fields), "nan") for variant in variants]
    return VariantScores(variants, {column: np.array([float(value) if value != "." else np.nan for value in values])})


def mutagenesis_variants(genome: Genome, contig: str, start: int, end: int) -> VariantList:
    """Every SNV of bases [start, end) of a contig (0-based): three per base; bases other than ACGT are skipped."""
    source = f"<mutagenesis {format_region(contig, start, end)}>"
    variants = [
        Variant(contig, start + offset, base, alt, line=to_one_based(start + offset), source=source, contig=contig)
        for offset, base in enumerate(genome.fetch(contig, start, end).upper())
        if base in "ACGT"
        for alt in "ACGT"
        if alt != base
    ]
    if not variants:
        raise InputError(f"region {format_region(contig, start, end)} has no A, C, G or T to mutate")
    return VariantList(variants, source=source)


def mutagenesis_matrix(scores: VariantScores, column: str = "llr") -> tuple[np.ndarray, str, np.ndarray]:
    """(1-based positions, reference bases, (positions, 4) scores for alt A/C/G/T) of a mutagenesis table.

    Positions run without gaps from the first to the last variant; cells without a variant
    (the reference base itself, or a base that was not mutated) are NaN, their reference "N".
    """
    variants = scores.variants
    first = min(variant.pos for variant in variants)
    last = max(variant.pos for variant in variants)
    matrix = np.full((last - first + 1, 4), np.nan)
    reference = ["N"] * (last - first + 1)
    for variant, value in zip(variants, scores[column]):
        matrix[variant.pos - first, "ACGT".index(variant.alt)] = value
        reference[variant.pos - first] = variant.ref
    return to_one_based(np.arange(first, last + 1)), "".join(reference), matrix
