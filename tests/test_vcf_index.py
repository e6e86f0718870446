"""BGZF VCF output with a tabix (.tbi) or CSI index, checked against htslib's own tools when installed."""

from __future__ import annotations

import gzip
import os
import random
import struct
import subprocess
from pathlib import Path

import pytest
from Bio import bgzf
from conftest import write_fasta

from glm.errors import InputError
from glm.io.genome import Genome
from glm.io.tabix import IndexedBgzfWriter, bin_of, bins_overlapping, depth_for
from glm.io.variant_readers import read_variant_chunks, read_variants
from glm.io.variant_writer import VariantWriter, write_variants
from glm.io.variants import VCF_FIXED_COLUMNS, Variant

needs_tabix = pytest.mark.needs_tool("tabix")  # checked against htslib itself: see conftest.needs_tool
needs_bcftools = pytest.mark.needs_tool("bcftools")


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
    assert list(bins_overlapping(16384, 16385, 5)) == [0, 1, 9, 73, 585, 4682]  # one bin a level, root first
    assert list(bins_overlapping(0, 1 << 17, 5))[-8:] == list(range(4681, 4689))  # 8 leaves under bin 585


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


# --regions through the input's own index: the rows equal reading every row and filtering.

GENOME = {"chr1": 120_000, "chr2": 70_000, "chrM": 500}
GAP = (30_000, 40_000)  # no variants on chr2 here


@pytest.fixture(scope="module")
def indexed_input(tmp_path_factory) -> tuple[Genome, list[tuple[str, str, int, int]]]:
    """A genome, and VCF records (line, VCF contig, 0-based start, end) named 1, 2, MT: SNVs, indels
    up to 40 bases (some across the region edges used below), a multi-allelic row; sorted."""
    folder = tmp_path_factory.mktemp("regions")
    rng = random.Random(5)
    records = {name: "".join(rng.choice("ACGT") for _ in range(n)) for name, n in GENOME.items()}
    genome = Genome(write_fasta(folder / "g.fa", records))
    places = {
        (name, rng.randrange(len(seq) - 50), 0)
        for name, seq in records.items()
        for _ in range(40 if name == "chrM" else 2500)
    }
    places = {(name, pos, 0) for name, pos, _ in places if not (name == "chr2" and GAP[0] - 50 <= pos < GAP[1])}
    # deletions before 10,000, 50,000 and 65,000: ending 1 base past the edge (in a region there) or just at it
    places |= {
        ("chr1", edge - back, back + extra) for edge in (10_000, 50_000, 65_000) for back in (5, 39) for extra in (0, 1)
    }
    lines = []
    for number, (name, pos, length) in enumerate(sorted(places)):
        seq = records[name]
        length = length or (1 if number % 4 else 1 + number % 41)  # every fourth a deletion of up to 40 bases
        ref = seq[pos : pos + length]
        alt = ref[0] if length > 1 else ("C" if ref != "C" else "G") + (",T" if number % 9 == 0 and ref != "T" else "")
        vcf_name = {"chr1": "1", "chr2": "2", "chrM": "MT"}[name]
        lines.append(
            (f"{vcf_name}\t{pos + 1}\tv{number}\t{ref}\t{alt}\t.\tPASS\tN={number}", vcf_name, pos, pos + length)
        )
    return genome, lines


def _bgzip(path, lines, index: str) -> None:
    """Write the records as a BGZF VCF indexed by glm (`glm-tbi`, `glm-csi`) or by htslib's tabix."""
    header = ["##fileformat=VCFv4.2", '##INFO=<ID=N,Number=1,Type=Integer,Description="n">']
    header += [f"##contig=<ID={name}>" for name in ("1", "2", "MT")] + ["#" + "\t".join(VCF_FIXED_COLUMNS)]
    if index.startswith("glm"):
        lengths = {"1": 600_000_000 if index == "glm-csi" else 120_000}
        writer = IndexedBgzfWriter(path, path, lengths)
        for line in header:
            writer.header(line)
        for record in lines:
            writer.record(*record)
        assert writer.close() is not None
        return
    plain = path.with_suffix("")
    plain.write_text("\n".join(header + [line for line, *_ in lines]) + "\n")
    subprocess.run(["bgzip", "-f", str(plain)], check=True)
    subprocess.run(["tabix", "-f", "-p", "vcf", *(["-C"] if index == "htslib-csi" else []), str(path)], check=True)


def _rows(path, genome, regions, chunk_size=500):
    chunks = list(read_variant_chunks(path, genome, chunk_size=chunk_size, regions=regions))
    rows = [(v.chrom, v.pos, v.ref, v.alt, v.id, v.fields, v.contig, v.status) for chunk in chunks for v in chunk]
    return rows, [len(chunk) for chunk in chunks], {v.line is None for chunk in chunks for v in chunk}


REGION_SETS = [
    [("chr1", 10_000, 100_000)],  # many BGZF blocks
    [("chrM", 0, 500), ("chr2", 99, 5000), ("chr1", 65_000, 70_000)],  # several contigs, given out of order
    [("chr1", 50_000, 60_000), ("chr1", 55_000, 65_000), ("chr1", 58_000, 58_100)],  # overlapping
    [("chr2", *GAP), ("chr1", 65_000, 65_001)],  # a region without variants; one base, deletions reaching it
]


@pytest.mark.parametrize(
    "index",
    [
        "glm-tbi",
        "glm-csi",
        pytest.param("htslib-tbi", marks=needs_tabix),
        pytest.param("htslib-csi", marks=needs_tabix),
    ],
)
def test_regions_through_the_index_equal_filtering_every_row(tmp_path, indexed_input, index) -> None:
    genome, lines = indexed_input
    indexed, plain = tmp_path / "in.vcf.gz", tmp_path / "copy.vcf.gz"
    _bgzip(indexed, lines, index)
    plain.write_bytes(indexed.read_bytes())  # the same bytes, no index beside them: every row read
    suffix = ".csi" if index.endswith("csi") else ".tbi"
    assert (tmp_path / f"in.vcf.gz{suffix}").is_file() and not (tmp_path / "copy.vcf.gz.tbi").exists()
    alts = {number: len(line.split("\t")[4].split(",")) for number, (line, *_) in enumerate(lines)}
    rng = random.Random(7)
    random_sets = [
        [
            (name, start, start + rng.randint(1, 20_000))
            for name in rng.sample(sorted(GENOME), 2)
            for start in [rng.randrange(GENOME[name])]
        ]
        for _ in range(12)
    ]
    for regions in REGION_SETS + random_sets:
        through_index, sizes, lines_unknown = _rows(indexed, genome, regions)
        filtered, filtered_sizes, _ = _rows(plain, genome, regions)
        assert through_index == filtered and sizes == filtered_sizes and lines_unknown == {True}, regions
        ids = [int(row[4][1:]) for row in through_index]
        assert ids == sorted(ids) and all(ids.count(n) == alts[n] for n in set(ids))  # file order, each row once
    many_blocks, *_ = _rows(indexed, genome, REGION_SETS[0])
    assert len(many_blocks) > 1500
    edges, *_ = _rows(indexed, genome, REGION_SETS[3])
    assert {(pos, len(ref)) for _, pos, ref, *_ in edges if pos < 65_000} >= {(64_995, 6), (64_961, 40)}
    assert (64_995, 5) not in {(pos, len(ref)) for _, pos, ref, *_ in edges}  # ends where the region starts
    with pytest.raises(InputError, match="no variants in the regions given"):
        _rows(indexed, genome, [("chr2", *GAP)])


def test_rows_outside_the_regions_are_not_read_through_the_index(tmp_path, indexed_input) -> None:
    genome, lines = indexed_input
    bad = list(lines)
    line, name, start, end = bad[-1]  # the last chrM row gets an impossible REF
    bad[-1] = (line.replace(f"\t{line.split(chr(9))[3]}\t", "\tXY\t"), name, start, end)
    path = tmp_path / "in.vcf.gz"
    _bgzip(path, bad, "glm-tbi")
    rows, *_ = _rows(path, genome, [("chr1", 0, 5000)])
    assert rows and {row[6] for row in rows} == {"chr1"}
    with pytest.raises(InputError, match=r"in\.vcf\.gz record MT:\d+: REF: invalid base 'X'"):
        _rows(path, genome, [("chrM", 0, 500)])


def _glm_indexed(tmp_path, lines) -> tuple[Path, Path]:
    """The records as in.vcf.gz with glm's .tbi beside it: (VCF, index)."""
    path = tmp_path / "in.vcf.gz"
    _bgzip(path, lines, "glm-tbi")
    return path, tmp_path / "in.vcf.gz.tbi"


def test_a_stale_or_corrupt_input_index_is_one_line_naming_it(tmp_path, indexed_input) -> None:
    genome, lines = indexed_input
    path, index = _glm_indexed(tmp_path, lines)
    good = index.read_bytes()
    stamp = index.stat().st_mtime_ns
    os.utime(path, ns=(stamp + 10**9, stamp + 10**9))
    with pytest.raises(InputError, match=r"in\.vcf\.gz\.tbi: index: older than in\.vcf\.gz.*tabix -f -p vcf"):
        _rows(path, genome, [("chr1", 0, 5000)])
    assert _rows(path, genome, [])[0]  # without regions the index is not needed
    raw = gzip.decompress(good)
    for broken in (b"garbage!" * 4, raw[: len(raw) // 2], raw[:-8] + struct.pack("<Q", 1 << 62)):
        with bgzf.BgzfWriter(index, "wb") as handle:  # newer than the VCF again, but wrong
            handle.write(broken)
        with pytest.raises(InputError) as error:
            _rows(path, genome, [("chr1", 0, 5000)])
        message = str(error.value)
        assert message.startswith(f"{index}: index: ") and "\n" not in message and "tabix" in message


def test_a_contig_of_the_index_missing_from_the_genome_is_an_error_as_without_it(tmp_path, indexed_input) -> None:
    genome, lines = indexed_input
    path = tmp_path / "in.vcf.gz"
    _bgzip(path, [*lines, ("9\t5\t.\tA\tC\t.\t.\t.", "9", 4, 5)], "glm-tbi")
    with pytest.raises(InputError, match=r"a sequence of its index in\.vcf\.gz\.tbi\): CHROM: contig '9' is not"):
        _rows(path, genome, [("chr1", 0, 5000)])


def test_a_corrupt_block_read_through_the_index_is_one_line_naming_the_file(tmp_path, indexed_input) -> None:
    genome, lines = indexed_input
    path, index = _glm_indexed(tmp_path, lines)
    stamp = index.stat().st_mtime_ns
    raw = bytearray(path.read_bytes())
    middle = len(raw) // 2  # inside a block of chr1's records: its deflate data no longer inflates
    raw[middle : middle + 64] = bytes(64)
    path.write_bytes(bytes(raw))
    os.utime(path, ns=(stamp - 10**9, stamp - 10**9))  # the index stays newer: only the block is bad
    with pytest.raises(InputError) as error:
        _rows(path, genome, [("chr1", 0, 120_000)])
    message = str(error.value)
    assert message.startswith(f"{path}: not a complete BGZF file (corrupt block") and "\n" not in message
