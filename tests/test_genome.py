from __future__ import annotations

import gzip

import pytest
from conftest import DATA, write_fasta

from glm.alphabet import reverse_complement
from glm.errors import InputError
from glm.io.genome import Genome, read_fasta


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
    with pytest.raises(InputError, match="unknown record 'chr9'.*records in this genome: c"):
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
    with pytest.raises(InputError, match="nope.fa: no such file"):
        list(read_fasta(tmp_path / "nope.fa"))
