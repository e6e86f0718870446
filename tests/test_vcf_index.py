"""BGZF VCF output with a tabix (.tbi) or CSI index, checked against htslib's own tools when installed."""

from __future__ import annotations

import random
import shutil
import subprocess

import pytest
from Bio import bgzf
from conftest import write_fasta

from glm.io.genome import Genome
from glm.io.tabix import bin_of, depth_for
from glm.io.variant_readers import read_variants
from glm.io.variant_writer import VariantWriter, write_variants
from glm.io.variants import Variant

needs_tabix = pytest.mark.skipif(shutil.which("tabix") is None, reason="tabix (htslib) not installed")
needs_bcftools = pytest.mark.skipif(shutil.which("bcftools") is None, reason="bcftools not installed")


@pytest.fixture
def sorted_variants(tmp_path) -> tuple[Genome, list[Variant]]:
    """3,000 SNVs on each of chr1 (120 kb) and chr2 (70 kb), 20 on chrM: several BGZF blocks, many bins."""
    rng = random.Random(3)
    records = {name: "".join(rng.choice("ACGT") for _ in range(n)) for name, n in [("chr1", 120_000), ("chr2", 70_000)]}
    records["chrM"] = "ACGT" * 125
    genome = Genome(write_fasta(tmp_path / "g.fa", records))
    places = sorted(
        (name, rng.randrange(len(seq))) for name, seq in records.items() for _ in range(20 if name == "chrM" else 3000)
    )
    variants = [
        Variant(name, pos, records[name][pos], "C" if records[name][pos] != "C" else "G", id=f"v{i}", contig=name)
        for i, (name, pos) in enumerate(places)
    ]
    return genome, variants


def _write(path, variants, lengths) -> VariantWriter:
    with VariantWriter(path, ["##fileformat=VCFv4.2", "##source=test"], lengths=lengths) as writer:
        half = len(variants) // 2
        writer.add(variants[:half], {"llr": [i / 8 for i in range(half)]})
        writer.add(variants[half:], {"llr": [i / 8 for i in range(half, len(variants))]})
    return writer


def test_bins_match_htslib() -> None:
    assert bin_of(0, 1, 5) == 4681 and bin_of(16384, 16385, 5) == 4682  # the first two 16 kb bins
    assert bin_of(0, 1 << 17, 5) == 585 and bin_of(0, 1 << 29, 5) == 0
    assert depth_for(1 << 29) == 5 and depth_for((1 << 29) + 1) == 6


def test_bgzf_output_rereads_and_is_indexed(tmp_path, sorted_variants) -> None:
    genome, variants = sorted_variants
    out = tmp_path / "scored.vcf.gz"
    writer = _write(out, variants, genome.lengths)
    assert writer.index == tmp_path / "scored.vcf.gz.tbi" and writer.unindexed == ""
    with bgzf.BgzfReader(out, "rb") as handle:  # every block a BGZF block
        assert handle.read(21) == b"##fileformat=VCFv4.2\n"
    again = read_variants(out, genome)
    assert [(v.chrom, v.pos, v.ref, v.alt, v.id) for v in again] == [
        (v.chrom, v.pos, v.ref, v.alt, v.id) for v in variants
    ]
    assert [float(v.fields["GLM_LLR"]) for v in again] == [i / 8 for i in range(len(variants))]
    assert "##source=test" in again.header_lines


@needs_tabix
@pytest.mark.parametrize("longest", [None, 600_000_000])  # .tbi, or .csi for a contig over 512 Mb
def test_tabix_region_query_returns_the_right_rows(tmp_path, sorted_variants, longest) -> None:
    genome, variants = sorted_variants
    lengths = dict(genome.lengths, **({"chr1": longest} if longest else {}))
    out = tmp_path / "scored.vcf.gz"
    writer = _write(out, variants, lengths)
    assert writer.index is not None and writer.index.suffix == (".csi" if longest else ".tbi")
    for region, (name, first, last) in [
        ("chr2:100-5000", ("chr2", 100, 5000)),
        ("chr1:65000-70000", ("chr1", 65000, 70000)),
        ("chrM", ("chrM", 1, 500)),
    ]:
        found = subprocess.run(["tabix", str(out), region], capture_output=True, text=True, check=True).stdout
        expected = [v.id for v in variants if v.chrom == name and first <= v.pos + 1 <= last]
        assert [line.split("\t")[2] for line in found.splitlines()] == expected and expected


@needs_bcftools
def test_bcftools_reads_the_output(tmp_path, sorted_variants) -> None:
    genome, variants = sorted_variants
    out = tmp_path / "scored.vcf.gz"
    _write(out, variants, genome.lengths)
    found = subprocess.run(
        ["bcftools", "view", "-H", "-r", "chr1:50000-60000", str(out)], capture_output=True, text=True, check=True
    )
    assert len(found.stdout.splitlines()) == sum(v.chrom == "chr1" and 50000 <= v.pos + 1 <= 60000 for v in variants)


def test_unsorted_output_keeps_its_order_without_an_index(tmp_path, sorted_variants) -> None:
    genome, variants = sorted_variants
    out = tmp_path / "scored.vcf.gz"
    write_variants(variants, {"llr": [0.0] * len(variants)}, out)
    assert (tmp_path / "scored.vcf.gz.tbi").is_file()
    shuffled = variants[::-1]
    writer = _write(out, shuffled, genome.lengths)
    assert writer.index is None and "comes after" in writer.unindexed
    assert not (tmp_path / "scored.vcf.gz.tbi").exists()  # the index of the earlier output would be wrong
    assert [v.id for v in read_variants(out, genome)] == [v.id for v in shuffled]
