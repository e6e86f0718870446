from __future__ import annotations

import gzip
import os
import random
from pathlib import Path

import pytest
from Bio import bgzf
from conftest import DATA, write_fasta

import glm.io.fasta as fasta_module
import glm.io.genome as genome_module
from glm.alphabet import reverse_complement
from glm.errors import InputError
from glm.io.fasta import read_fasta
from glm.io.genome import Genome


def test_reverse_complement_iupac_and_case() -> None:
    assert reverse_complement("ACGTNacgtRY") == "RYacgtNACGT"
    assert reverse_complement("AACGTn") == "nACGTT"
    assert reverse_complement("RYKM") == "KMRY"
    assert reverse_complement(reverse_complement("ACGTRYKMSWBDHVN")) == "ACGTRYKMSWBDHVN"


def test_plain_and_gzip_many_records(tmp_path) -> None:
    records = {"chr1": "ACGT" * 30, "chr2": "GGGCCC", "chrM": "ACGTN" * 7}
    plain = write_fasta(tmp_path / "g.fa", records)
    compressed = tmp_path / "g.fa.txt"  # gzip is detected from content, not from the name
    compressed.write_bytes(gzip.compress(plain.read_bytes()))
    for path in (plain, compressed):
        genome = Genome(path)
        assert genome.names == ["chr1", "chr2", "chrM"]
        assert genome.lengths == {name: len(seq) for name, seq in records.items()}
        assert genome.fetch("chr2", 1, 4) == "GGC"


def test_fetch_edges_padding_and_reverse_strand(tmp_path) -> None:
    genome = Genome(write_fasta(tmp_path / "g.fa", {"c": "ACGTTGCA"}))
    assert genome.fetch("c", 0, 8) == "ACGTTGCA"
    assert genome.fetch("c", -3, 2) == "NNNAC"
    assert genome.fetch("c", 6, 11) == "CANNN"
    assert genome.fetch("c", -2, 10) == "NNACGTTGCANN"
    assert genome.fetch("c", 20, 23) == "NNN"  # wholly past the end
    assert genome.fetch("c", 0, 0) == ""
    assert genome.fetch("c", 1, 4, strand="-") == "ACG"  # reverse complement of CGT
    assert genome.fetch("c", 6, 10, strand="-") == "NNTG"
    with pytest.raises(InputError, match=r"unknown record 'chr9'.*records in this genome: c"):
        genome.fetch("chr9", 0, 1)


def test_real_genome_lengths() -> None:
    genome = Genome(DATA / "phiX174.fa")
    assert genome.lengths == {"NC_001422.1": 5386}
    assert Genome(DATA / "ecoli_K12_MG1655.fa.gz").lengths == {"NC_000913.3": 4_641_652}


def test_windows_line_endings_accepted(tmp_path) -> None:
    path = write_fasta(tmp_path / "crlf.fa", {"a": "ACGT" * 20, "b": "TTTT"}, newline="\r\n")
    assert [(r.name, r.sequence) for r in read_fasta(path)] == [("a", "ACGT" * 20), ("b", "TTTT")]


@pytest.mark.parametrize(
    "content,pattern",
    [
        ("", r"empty\.fa: empty file"),
        ("\n\n", r"empty\.fa: empty file"),
        ("ACGT\n>a\nACGT\n", r"empty\.fa:1: expected a FASTA header"),
        (">a\nACGT\n>b\nAC\n>a\nGG\n", r"empty\.fa:5: header: duplicate record name 'a' \(first at line 1\)"),
        (">a\nACGT\nAC-T\n", r"empty\.fa:3: sequence: invalid character '-' in record 'a' \(column 3\)"),
        (">a\nACGT\n>b\n>c\nAC\n", r"empty\.fa:3: sequence: record 'b' has no bases"),
        (">\nACGT\n", r"empty\.fa:1: header: record has no name"),
    ],
)
def test_bad_fasta_errors_name_file_and_line(tmp_path, content: str, pattern: str) -> None:
    path = tmp_path / "empty.fa"
    path.write_text(content)
    with pytest.raises(InputError, match=pattern):
        list(read_fasta(path))


def test_missing_file(tmp_path) -> None:
    with pytest.raises(InputError, match=r"nope.fa: no such file"):
        list(read_fasta(tmp_path / "nope.fa"))


@pytest.mark.parametrize("block", [1, 7, 64, 1 << 22])
def test_scan_is_the_same_for_any_block_size(tmp_path, monkeypatch, block: int) -> None:
    """Runs of full lines are checked whole: block edges anywhere must not change a record or its layout."""
    rng = random.Random(block)
    records = {f"r{i}": "".join(rng.choice("ACGTacgtNR") for _ in range(rng.randint(60, 400))) for i in range(6)}
    text = "".join(
        f">{name}\n" + "".join(seq[i : i + 60] + "\n" for i in range(0, len(seq), 60)) for name, seq in records.items()
    )
    path = tmp_path / "a.fa"
    path.write_text(text + ">uneven\nACG\nACGTACGT\n>crlf\r\nACGT\r\nAC\r\n")
    monkeypatch.setattr(fasta_module._line_blocks, "__defaults__", (block,))
    scanned = list(fasta_module.scan_fasta(path, keep=True))
    assert {r.name: b"".join(r.pieces).decode() for r in scanned} == {
        **records,
        "uneven": "ACGACGTACGT",
        "crlf": "ACGTAC",
    }
    assert [(r.regular, r.line_bases, r.line_bytes) for r in scanned] == [(True, 60, 61)] * 6 + [
        (False, 3, 4),
        (True, 4, 6),
    ]
    lines = text.splitlines(keepends=True)
    assert scanned[-1].line == len(lines) + 4
    assert scanned[-1].offset == len(text) + len(">uneven\nACG\nACGTACGT\n>crlf\r\n")
    bad = path.read_text().replace("ACGTACGT", "ACGT-CGT")
    path.write_text(bad)
    with pytest.raises(
        InputError, match=rf"a\.fa:{len(lines) + 3}: sequence: invalid character '-' in record 'uneven' \(column 5\)"
    ):
        list(fasta_module.scan_fasta(path))


def _bgzip(source: Path, target: Path) -> Path:
    """BGZF-compress with Biopython, in small blocks so windows cross block boundaries."""
    data = source.read_bytes()
    with bgzf.BgzfWriter(target, "wb") as writer:
        for start in range(0, len(data), 1000):
            writer.write(data[start : start + 1000])
            writer.flush()  # ends a block
    return target


@pytest.fixture
def layouts(tmp_path) -> tuple[dict[str, str], list[Path]]:
    """Soft-masked records with N runs, as plain, BGZF, plain gzip and unevenly wrapped FASTA."""
    rng = random.Random(7)
    records = {f"chr{i}": "".join(rng.choice("ACGTacgtN") for _ in range(rng.randint(1, 5000))) for i in range(1, 6)}
    records["chrUn_KI270302v1"] = "ACGTNNNNacgt"
    plain = write_fasta(tmp_path / "plain.fa", records, width=61)
    compressed = tmp_path / "plain.fa.gz"
    compressed.write_bytes(gzip.compress(plain.read_bytes()))
    uneven = tmp_path / "uneven.fa"
    uneven.write_text("".join(f">{name} desc\n{seq[:7]}\n{seq[7:]}\n\n" for name, seq in records.items()))
    return records, [plain, _bgzip(plain, tmp_path / "plain.fa.bgz"), compressed, uneven]


def test_fetch_equals_slice_on_every_layout(layouts) -> None:
    records, paths = layouts
    rng = random.Random(1)
    for path in paths:
        genome = Genome(path)
        assert genome.lengths == {name: len(seq) for name, seq in records.items()}
        for name, seq in records.items():
            assert genome.sequence(name) == seq
            for start, end in [(0, 1), (len(seq) - 1, len(seq)), (-5, 3), (len(seq) - 2, len(seq) + 4)]:
                inside = seq[max(start, 0) : min(end, len(seq))]
                assert genome.fetch(name, start, end) == "N" * max(-start, 0) + inside + "N" * max(end - len(seq), 0)
            for _ in range(50):
                start = rng.randrange(len(seq))
                end = rng.randrange(start, len(seq) + 1)
                assert genome.fetch(name, start, end) == seq[start:end]


def test_index_built_once_beside_the_file_and_reused(layouts, monkeypatch) -> None:
    records, (plain, bgzipped, compressed, uneven) = layouts
    for path in (plain, bgzipped, compressed, uneven):
        Genome(path)
    fai = plain.with_name("plain.fa.fai")
    assert fai.read_text().splitlines()[0] == f"chr1\t{len(records['chr1'])}\t6\t61\t62"
    assert bgzipped.with_name("plain.fa.bgz.gzi").is_file()
    calls = []
    monkeypatch.setattr(genome_module, "scan_fasta", lambda *args, **kw: calls.append(args) or iter(()))
    assert Genome(plain).fetch("chr2", 0, 10) == records["chr2"][:10]
    assert Genome(bgzipped).fetch("chr3", 5, 9) == records["chr3"][5:9]
    # plain gzip and uneven lines: one regular, indexed copy in the cache, reused afterwards
    copies = sorted(path.name for path in (Path(os.environ["GLM_CACHE"]) / "fasta-copy").iterdir())
    assert any(name.endswith("-plain.fa") for name in copies) and any(name.endswith("-uneven.fa") for name in copies)
    assert Genome(compressed).fetch("chr4", 3, 8) == Genome(uneven).fetch("chr4", 3, 8) == records["chr4"][3:8]
    assert calls == []  # every layout opened from its index, no rescan


def test_index_that_cannot_go_beside_the_file_goes_to_the_cache(tmp_path) -> None:
    path = write_fasta(tmp_path / "g.fa", {"a": "ACGTACGT"})
    (tmp_path / "g.fa.fai").mkdir()  # unwritable there (a read-only folder acts the same, except for root)
    assert Genome(path).fetch("a", 2, 5) == "GTA"
    cached = list((Path(os.environ["GLM_CACHE"]) / "fasta-index").rglob("g.fa.fai"))
    assert len(cached) == 1 and cached[0].read_text() == "a\t8\t3\t8\t9\n"


def test_stale_and_corrupt_indexes_are_detected(tmp_path) -> None:
    path = write_fasta(tmp_path / "g.fa", {"a": "ACGTACGTAC", "b": "GGGG"})
    assert Genome(path).fetch("b", 0, 4) == "GGGG"
    fai = tmp_path / "g.fa.fai"
    write_fasta(path, {"a": "TTTT", "b": "CCCCCCCC"})  # the file changed after its index
    stamp = fai.stat().st_mtime_ns + 10**9
    os.utime(path, ns=(stamp, stamp))
    assert Genome(path).fetch("b", 0, 8) == "CCCCCCCC"  # stale index rebuilt
    fai.write_text("a\t4\tx\t4\t5\n")
    os.utime(fai, ns=(stamp + 10**9, stamp + 10**9))
    with pytest.raises(InputError, match=r"g\.fa\.fai:1: index: expected NAME LENGTH OFFSET"):
        Genome(path)
    fai.write_text("a\t4\t2\t4\t5\nb\t8\t10\t8\t9\n")  # offsets off by one: b's last base is left over
    os.utime(fai, ns=(stamp + 10**9, stamp + 10**9))
    with pytest.raises(InputError, match=r"g\.fa\.fai:2: index: the FASTA holds bases or records it does not list"):
        Genome(path)
    fai.write_text("a\t4\t2\t4\t5\nb\t8\t11\t8\t9\n")  # a's offset lands on the header
    os.utime(fai, ns=(stamp + 10**9, stamp + 10**9))
    with pytest.raises(InputError, match=r"g\.fa: index: the bases of 'a' are not where its \.fai says"):
        Genome(path).fetch("a", 0, 4)


def test_genome_validates_while_indexing(tmp_path) -> None:
    path = tmp_path / "bad.fa"
    path.write_text(">a\nACGT\nAC-T\n")
    with pytest.raises(InputError, match=r"bad\.fa:3: sequence: invalid character '-' in record 'a' \(column 3\)"):
        Genome(path)
    assert not (tmp_path / "bad.fa.fai").exists()
    compressed = tmp_path / "bad.fa.gz"
    compressed.write_bytes(gzip.compress(b">a\nACGT\n>a\nAC\n"))
    with pytest.raises(InputError, match=r"bad\.fa\.gz:3: header: duplicate record name 'a'"):
        Genome(compressed)
