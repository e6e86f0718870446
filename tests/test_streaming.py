"""Scoring a file chunk by chunk: the same bytes as the in-memory table, input order kept, region filters."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA, write_fasta
from test_scoring import CONTIG, VARIANTS, make_lm

from glm.errors import InputError
from glm.io import files
from glm.io.files import ReadProgress
from glm.io.genome import Genome
from glm.io.progress import progress_bar
from glm.io.variant_readers import read_variant_chunks, read_variants
from glm.scoring import stream
from glm.io.variants import resolve_regions

MITOMAP = DATA / "mitomap_confirmed_mutations.vcf.gz"
LABELLED = DATA / "mitomap_labelled.tsv"  # plain text, two of its text layer's 8 KiB reads
ALIASES = {"MT": "MT_human"}


@pytest.fixture(scope="module")
def lm():
    return make_lm()


@pytest.mark.parametrize("suffix", [".vcf.gz", ".tsv"])
def test_streamed_output_equals_the_in_memory_table(lm, tmp_path, suffix) -> None:
    mt = Genome(DATA / "MT-human.fa")
    whole = lm.score_variants(MITOMAP, mt, aliases=ALIASES, method=["llr", "embedding"], chunk_size=7)
    unchunked = lm.score_variants(MITOMAP, mt, aliases=ALIASES, method=["llr", "embedding"])
    assert np.allclose(unchunked["llr"], whole["llr"], rtol=1e-5, equal_nan=True)  # batching: float32 rounding only
    expected = whole.write(tmp_path / f"memory{suffix}")
    counts, writer = lm.score_file(
        MITOMAP, mt, tmp_path / f"stream{suffix}", aliases=ALIASES, method=["llr", "embedding"], chunk_size=7
    )
    assert writer.path.read_bytes() == expected.read_bytes()
    assert counts.summary("x") == whole.summary("x") and counts.total == len(whole) == 117
    if suffix == ".vcf.gz":
        assert writer.index == tmp_path / "stream.vcf.gz.tbi"
        assert writer.index.read_bytes() == (tmp_path / "memory.vcf.gz.tbi").read_bytes()


def test_unsorted_input_keeps_its_order(lm, tmp_path) -> None:
    genome = Genome(write_fasta(tmp_path / "g.fa", {"chr1": CONTIG, "chr2": CONTIG[::-1]}))
    rows = [("chr1", *variant) for variant in VARIANTS] + [
        ("chr2", 10, CONTIG[::-1][9], "A" if CONTIG[::-1][9] != "A" else "C")
    ]
    random.Random(5).shuffle(rows)
    table = tmp_path / "in.tsv"
    table.write_text("chrom\tpos\tref\talt\n" + "".join("\t".join(map(str, row)) + "\n" for row in rows))
    whole = lm.score_variants(table, genome)
    _, writer = lm.score_file(table, genome, tmp_path / "out.vcf.gz", chunk_size=2)
    again = read_variants(writer.path, genome)
    assert [(v.chrom, v.pos + 1) for v in again] == [(chrom, pos) for chrom, pos, _, _ in rows]
    assert [float(v.fields["GLM_LLR"]) for v in again] == pytest.approx(whole["llr"].tolist(), rel=1e-6)
    assert writer.index is None and writer.unindexed  # unsorted: kept in order, not indexed


def test_regions_restrict_scoring(lm, tmp_path) -> None:
    genome = Genome(write_fasta(tmp_path / "g.fa", {"chr1": CONTIG, "chrM": CONTIG[:100]}))
    table = tmp_path / "in.tsv"
    rows = [("chr1", *variant) for variant in VARIANTS] + [("MT", 5, CONTIG[4], "A" if CONTIG[4] != "A" else "C")]
    table.write_text("chrom\tpos\tref\talt\n" + "".join("\t".join(map(str, row)) + "\n" for row in rows))
    bed = tmp_path / "r.bed"
    bed.write_text("track name=x\nchr1\t299\t309\n")  # 0-based: 1-based 300-309
    regions = resolve_regions(["1:140-151", str(bed), "chrMT"], genome, {"chrMT": "chrM", "MT": "chrM"})
    assert regions == [("chr1", 139, 151), ("chr1", 299, 309), ("chrM", 0, 100)]
    counts, writer = lm.score_file(table, genome, tmp_path / "out.tsv", regions=regions, aliases={"MT": "chrM"})
    kept = [line.split("\t")[:2] for line in writer.path.read_text().splitlines()[1:]]
    assert kept == [["chr1", "150"], ["chr1", "151"], ["chr1", "300"], ["MT", "5"]] and counts.total == 4
    with pytest.raises(InputError, match="no variants in the regions given"):
        lm.score_file(table, genome, tmp_path / "none.tsv", regions=[("chr1", 590, 595)])
    with pytest.raises(InputError, match=r"r2\.bed:1: BED: contig 'chr9' is not in the genome"):
        (tmp_path / "r2.bed").write_text("chr9\t1\t5\n")
        resolve_regions([str(tmp_path / "r2.bed")], genome)
    assert not (tmp_path / "none.tsv").exists()


@pytest.mark.parametrize("suffix", [".tsv", ".vcf.gz"])
def test_scoring_regions_through_the_input_index_writes_the_same_file(lm, tmp_path, suffix) -> None:
    genome = Genome(write_fasta(tmp_path / "g.fa", {"chr1": CONTIG, "chr2": CONTIG}))
    rows = [("chr1", *variant) for variant in VARIANTS] + [("chr2", *variant) for variant in VARIANTS[2:5]]
    table = tmp_path / "in.tsv"
    table.write_text("chrom\tpos\tref\talt\n" + "".join("\t".join(map(str, row)) + "\n" for row in rows))
    rows_vcf = lm.score_file(table, genome, tmp_path / "in.vcf.gz")[1]  # a sorted input...
    assert rows_vcf.index == tmp_path / "in.vcf.gz.tbi"  # ...with its index beside it
    (tmp_path / "copy.vcf.gz").write_bytes((tmp_path / "in.vcf.gz").read_bytes())
    regions = resolve_regions(["chr1:149-310", "chr2:140-600", "chr1:300-300"], genome)
    written = []
    for name in ("in", "copy"):  # through the index, and reading every row
        counts, writer = lm.score_file(
            tmp_path / f"{name}.vcf.gz", genome, tmp_path / f"{name}_out{suffix}", regions=regions, chunk_size=2
        )
        assert counts.total == 7  # chr1: 150, 151, 300 (also the one-base region), 310; chr2: 150, 151, 300
        written.append(writer.path.read_bytes())
    assert written[0] == written[1]


@pytest.fixture
def bars(monkeypatch) -> list:
    """The progress bars score_file makes (lines: stderr is no terminal here), kept after they close."""
    made = []

    def recorded(*args, **kwargs):
        made.append(progress_bar(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(stream, "progress_bar", recorded)
    return made


@pytest.mark.parametrize("path", [MITOMAP, LABELLED])
def test_read_progress_reaches_the_file_size(path) -> None:
    """Bytes of the file on disk, compressed ones for gzip: after each chunk, then the end of the file."""
    progress, reached = ReadProgress(), []
    for _ in read_variant_chunks(path, Genome(DATA / "MT-human.fa"), ALIASES, chunk_size=100, progress=progress):
        reached.append(progress.bytes_read)
    reached.append(progress.bytes_read)
    assert reached == sorted(reached) and reached[-1] == path.stat().st_size
    assert reached[0] < path.stat().st_size or path == MITOMAP  # 4 KB of gzip: one read takes it all


@pytest.mark.parametrize("path", [MITOMAP, LABELLED])
def test_progress_reads_nothing_more_and_changes_no_byte(lm, tmp_path, monkeypatch, bars, path) -> None:
    """The bar's total is the input's size and it ends there; no row count reads (and decompresses) it first."""
    mt = Genome(DATA / "MT-human.fa")
    opened: list[Path] = []
    open_binary = files.open_binary
    monkeypatch.setattr(files, "open_binary", lambda path: opened.append(Path(path)) or open_binary(path))
    read_variants(path, mt, aliases=ALIASES)
    by_the_reader = opened.count(path)
    written = []
    for progress in (False, True):
        opened.clear()
        counts, writer = lm.score_file(
            path, mt, tmp_path / f"out-{progress}.tsv", aliases=ALIASES, progress=progress, chunk_size=100
        )
        assert opened.count(path) == by_the_reader
        written.append(writer.path.read_bytes())
    assert written[0] == written[1] and written[0].count(b"\n") == counts.total + 1  # a header, then every variant
    assert not bars[0].shown and (bars[1].total, bars[1].n) == (path.stat().st_size,) * 2
    assert bars[1].postfix == f"variants={counts.total}"


def test_progress_counts_rows_without_a_file_to_measure(lm, tmp_path, bars) -> None:
    """Python rows and regions (perhaps read in pieces through an index) keep the count-only bar."""
    mt = Genome(DATA / "MT-human.fa")
    rows = [("MT", 64, "C", "T"), ("MT", 72, "T", "C")]
    lm.score_file(rows, mt, tmp_path / "rows.tsv", aliases=ALIASES, progress=True)
    lm.score_file(MITOMAP, mt, tmp_path / "region.tsv", regions=[("MT_human", 0, 1000)], aliases=ALIASES, progress=True)
    assert [(bar.total, bar.units["unit"]) for bar in bars] == [(None, " variants")] * 2 and bars[0].n == 2
