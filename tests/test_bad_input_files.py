"""Files glm reads (round three): outputs never overwrite inputs, inputs are regular files, the JSON glm
wrote is checked field by field, damaged caches are rebuilt, and what is accepted on purpose (a
byte-order mark, CR-only line endings, any bytes for the byte tokenizer) reads as the plain file does."""

from __future__ import annotations

import os
import threading
import typing
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import write_fasta
from test_bad_input import CONTIG, GENOME, GOOD_FASTA, MODEL, model_files, probe_head, vcf

from glm.arguments import annotation_parts
from glm.commands import COMMANDS, main
from glm.errors import InputError
from glm.io.paths import OutputDirectory, OutputFile
from glm.io.schema import Fields

METRICS = "epoch,step,train/bits_per_base\n0,0,2.0\n"
TABLE = "name,sequence,label\ns1,ACGTACGTAC,a\ns2,CCGGTTAACC,b\n"

# For every command with an output: inputs, and argv whose output (or one of its sidecars) is an input.
OUTPUT_IS_INPUT: dict[str, tuple[dict[str, str | bytes], list[str]]] = {
    "pretrain": ({"d/x.fa": GOOD_FASTA}, ["pretrain", "{tmp}/d/x.fa", "--out", "{tmp}/d"]),
    "plot": ({"run/logs/version_0/metrics.csv": METRICS}, ["plot", "{tmp}/run", "--out", "{tmp}/run/logs/version_0/metrics.csv"]),
    "score": ({"v.vcf": vcf(f"{CONTIG}\t1\t.\tG\tA\t.\t.\t.")}, ["score", "{model}", "--genome", str(GENOME), "--variants", "{tmp}/v.vcf", "--out", "{tmp}/v.vcf"]),
    "mutagenesis": ({"mu.tsv": GOOD_FASTA}, ["mutagenesis", "{model}", "--genome", "{tmp}/mu.tsv", "--region", "a:1-10", "--out", "{tmp}/mu"]),
    "fit-head": ({"h/v.tsv": f"chrom\tpos\tref\talt\tlabel\n{CONTIG}\t2\tA\tC\t1\n"}, ["fit-head", "{model}", "--genome", str(GENOME), "--variants", "{tmp}/h/v.tsv", "--label", "label", "--out", "{tmp}/h"]),
    "embed": ({"e.names.tsv": TABLE}, ["embed", "{model}", "--input", "{tmp}/e.names.tsv", "--out", "{tmp}/e.npy"]),
    "fit-classifier": ({"c/t.csv": TABLE}, ["fit-classifier", "--features", "kmer", "--train", "{tmp}/c/t.csv", "--out", "{tmp}/c"]),
    "classify": ({**probe_head(), "x.fa": GOOD_FASTA}, ["classify", "{tmp}/h", "--input", "{tmp}/x.fa", "--out", "{tmp}/x.fa"]),
    "to-fasta": ({"x.fa": GOOD_FASTA}, ["to-fasta", "--input", "lab={tmp}/x.fa", "--out", "{tmp}/x.fa"]),
    "export-hf": (model_files({}), ["export-hf", "{tmp}/m", "{tmp}/m"]),
    "track": ({"t.logp_A.bedGraph": GOOD_FASTA}, ["track", "{model}", "--genome", "{tmp}/t.logp_A.bedGraph", "--regions", "a", "--out", "{tmp}/t.bedGraph"]),
}  # fmt: skip


def commands_with_outputs() -> set[str]:
    """The commands with an OutputFile or OutputDirectory parameter (or `X | None` of one)."""
    found = set()
    for function in COMMANDS:
        for hint in typing.get_type_hints(function, include_extras=True).values():
            kind = annotation_parts(hint)[0]
            kinds = typing.get_args(kind) or (kind,)
            if any(isinstance(k, type) and issubclass(k, (OutputFile, OutputDirectory)) for k in kinds):
                found.add(function.command[0])
    return found


def make_files(tmp: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())


def test_the_table_names_every_command_with_an_output() -> None:
    assert commands_with_outputs() == set(OUTPUT_IS_INPUT)
    assert len(OUTPUT_IS_INPUT) == 11  # a new command with an output joins the table


@pytest.mark.parametrize("command", list(OUTPUT_IS_INPUT))
def test_no_output_of_any_command_can_overwrite_an_input(command: str, tmp_path: Path, capsys) -> None:
    files, argv = OUTPUT_IS_INPUT[command]
    make_files(tmp_path, files)
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    code = main([argument.replace("{tmp}", str(tmp_path)).replace("{model}", str(MODEL)) for argument in argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    reasons = ("is also an input", "the directory holds the input", "is a file of the input directory")
    assert "output: " in err and any(reason in err for reason in reasons), err
    assert {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()} == before


def test_a_figure_in_an_input_directory_may_be_redrawn(tmp_path: Path) -> None:
    """glm never reads a figure, so `plot RUN --out RUN/curves.png` replaces the run's own figure."""
    make_files(tmp_path, {"run/logs/version_0/metrics.csv": METRICS + "0,1,1.9\n", "run/curves.png": b"old"})
    assert main(["plot", str(tmp_path / "run"), "--out", str(tmp_path / "run" / "curves.png")]) == 0
    assert (tmp_path / "run" / "curves.png").read_bytes().startswith(b"\x89PNG")


def test_the_same_file_through_a_link_is_the_same_input(tmp_path: Path, capsys) -> None:
    (tmp_path / "x.fa").write_text(GOOD_FASTA)
    os.link(tmp_path / "x.fa", tmp_path / "linked.fa")
    assert main(["to-fasta", "--input", str(tmp_path / "x.fa"), "--out", str(tmp_path / "linked.fa")]) == 2
    assert "linked.fa: output: is also an input" in capsys.readouterr().err
    assert main(["to-fasta", "--input", str(tmp_path / "x.fa"), "--out", str(tmp_path / "y.fa")]) == 0
    assert (tmp_path / "y.fa").read_text() == GOOD_FASTA


def run_with_deadline(argv: list[str], seconds: float = 60) -> int:
    """main(argv) in a thread; a run still blocked after `seconds` fails the test instead of hanging it."""
    result: list[int] = []
    worker = threading.Thread(target=lambda: result.append(main(argv)), daemon=True)
    worker.start()
    worker.join(seconds)
    assert result, f"{argv[0]} blocked on its input"
    return result[0]


@pytest.mark.parametrize("command", ["eval", "score"])
def test_a_fifo_input_is_refused_not_waited_on(command: str, tmp_path: Path, capsys) -> None:
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    argv = {
        "eval": ["eval", str(MODEL), str(fifo)],
        "score": [
            "score",
            str(MODEL),
            "--genome",
            str(GENOME),
            "--variants",
            str(fifo),
            "--out",
            str(tmp_path / "o.tsv"),
        ],
    }[command]
    assert run_with_deadline(argv) == 2
    assert "in.fifo: is not a regular file (a FIFO, socket or device)" in capsys.readouterr().err


def test_fields_name_the_file_and_the_field(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"k": "3", "names": ["a", 2], "inner": {"n": true}, "format_version": 2}')
    fields = Fields.read(path)
    with pytest.raises(InputError, match=r"x\.json: k: expected an integer, got '3'"):
        fields.integer("k")
    with pytest.raises(InputError, match=r"x\.json: names: expected a list of strings, got a list of 2"):
        fields.strings("names")
    with pytest.raises(InputError, match=r"x\.json: inner\.n: expected an integer, got True"):
        fields.object("inner").integer("n")
    with pytest.raises(InputError, match=r"x\.json: absent: missing"):
        fields.string("absent")
    with pytest.raises(InputError, match=r"x\.json: format_version: 2: made by a newer glm"):
        fields.format_version(1)
    assert fields.integer("absent", 7) == 7 and fields.format_version(2) == 2


def prepared(fasta: Path, cache: Path):
    from glm.model.tokenizers import KmerTokenizer
    from glm.training.data import prepare

    return prepare(fasta, KmerTokenizer(2), cache, progress=False)


@pytest.mark.parametrize("damage", ["meta not json", "meta a list", "train.bin truncated", "soft mask gone"])
def test_a_damaged_token_cache_entry_is_rebuilt_with_a_notice(damage: str, tmp_path: Path) -> None:
    fasta = write_fasta(tmp_path / "g.fa", {"a": "ACGTTGCAAC" * 40, "b": "TTGACCGTAA" * 30})
    store = prepared(fasta, tmp_path / "cache")
    tokens = np.array(store.tokens("train"))
    {
        "meta not json": lambda: (store.directory / "meta.json").write_text("{"),
        "meta a list": lambda: (store.directory / "meta.json").write_text("[]"),
        "train.bin truncated": lambda: os.truncate(store.directory / "train.bin", 10),
        "soft mask gone": lambda: (store.directory / "val.soft.bin").unlink(),
    }[damage]()
    with pytest.warns(UserWarning, match="a damaged token cache entry; rebuilding it"):
        again = prepared(fasta, tmp_path / "cache")
    assert again.directory == store.directory
    np.testing.assert_array_equal(np.array(again.tokens("train")), tokens)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rebuilt entry is trusted again, silently
        prepared(fasta, tmp_path / "cache")


def test_the_byte_tokenizer_takes_any_bytes_and_char_says_so(tmp_path: Path) -> None:
    from glm.config import DataConfig
    from glm.model.tokenizers import ByteTokenizer, build_tokenizer
    from glm.training.data import prepare

    text = tmp_path / "latin1.txt"
    raw = "Ça été très naïf, à l'évidence.\n".encode("latin-1") * 40
    text.write_bytes(raw)
    store = prepare(text, ByteTokenizer(), tmp_path / "cache", progress=False, input_format="text")
    train = np.array(store.tokens("train"))
    np.testing.assert_array_equal(train[:-1], np.frombuffer(raw, np.uint8)[: len(train) - 1].astype(np.int64) + 3)
    with pytest.raises(
        InputError, match=r"latin1\.txt:1: text: not valid UTF-8 \(byte 0\); --tokenizer byte reads any"
    ):
        build_tokenizer(DataConfig(tokenizer="char"), text)


def test_a_byte_order_mark_is_skipped_in_tables_and_fasta(tmp_path: Path) -> None:
    import glm
    from glm.io.fasta import read_fasta
    from glm.io.sequences import read_sequences

    rows = f"chrom\tpos\tref\talt\n{CONTIG}\t2\tA\tC\n{CONTIG}\t3\tG\tT\n"
    plain, excel = tmp_path / "v.tsv", tmp_path / "excel.tsv"
    plain.write_text(rows)
    excel.write_bytes(b"\xef\xbb\xbf" + rows.encode())
    lm = glm.load(MODEL, device="cpu")
    assert list(lm.score_variants(excel, GENOME)["llr"]) == list(lm.score_variants(plain, GENOME)["llr"])
    fasta = tmp_path / "bom.fa"
    fasta.write_bytes(b"\xef\xbb\xbf" + GOOD_FASTA.encode())
    assert [r.sequence for r in read_fasta(fasta)] == ["ACGTTGCAAC" * 30]
    assert read_sequences(fasta).names == ["a"]
    assert lm.evaluate(fasta, progress=False) == lm.evaluate(
        write_fasta(tmp_path / "g.fa", {"a": "ACGTTGCAAC" * 30}), progress=False
    )


def test_cr_only_line_endings_read_as_line_feeds(tmp_path: Path) -> None:
    """Classic Mac endings: the same records and bases, read in place (offsets are byte for byte); tables too."""
    import glm
    from glm.io.fasta import read_fasta
    from glm.io.genome import Genome

    records = {"a": "ACGTACGTAC" * 7 + "GG", "b": "TTGCA" * 13}
    lf = write_fasta(tmp_path / "lf.fa", records, width=10)
    cr = tmp_path / "cr.fa"
    cr.write_bytes(lf.read_bytes().replace(b"\n", b"\r"))
    assert {r.name: r.sequence for r in read_fasta(cr)} == records
    assert Genome(cr).fetch("b", 3, 40) == records["b"][3:40]
    lm = glm.load(MODEL, device="cpu")
    assert lm.evaluate(cr, progress=False) == lm.evaluate(lf, progress=False)
    rows = f"chrom\tpos\tref\talt\n{CONTIG}\t2\tA\tC\n{CONTIG}\t3\tG\tT\n"
    (tmp_path / "lf.tsv").write_text(rows)
    (tmp_path / "cr.tsv").write_text(rows.replace("\n", "\r"))
    scored = [list(lm.score_variants(tmp_path / name, GENOME)["llr"]) for name in ("cr.tsv", "lf.tsv")]
    assert scored[0] == scored[1] and len(scored[0]) == 2


def test_a_fai_listing_a_record_that_is_not_last_only_is_refused(tmp_path: Path) -> None:
    from glm.io.genome import Genome

    fasta = write_fasta(tmp_path / "g.fa", {"a": "ACGT" * 100, "b": "GGCC" * 100, "c": "TTAA" * 100})
    full = (Genome(fasta), (tmp_path / "g.fa.fai").read_text())[1]
    lines = full.splitlines(keepends=True)
    (tmp_path / "g.fa.fai").write_text(lines[0] + lines[2])  # b left out: the gap holds its bases
    with pytest.raises(
        InputError, match=r"g\.fa\.fai:2: index: the FASTA holds bases or records it does not list before 'c'"
    ):
        Genome(fasta)
    (tmp_path / "g.fa.fai").write_text(full)
    assert Genome(fasta).names == ["a", "b", "c"]


def test_to_fasta_output_reads_back_under_the_same_names(tmp_path: Path, capsys) -> None:
    from glm.io.fasta import read_fasta

    table = tmp_path / "t.csv"
    table.write_text("name,sequence\nx1,ACGT\nx2,GGCC\n")
    assert main(["to-fasta", "--input", str(table), "--out", str(tmp_path / "o.fa")]) == 0
    assert [(r.name, r.sequence) for r in read_fasta(tmp_path / "o.fa")] == [("x1", "ACGT"), ("x2", "GGCC")]


def test_a_damaged_cached_copy_of_a_gzipped_fasta_is_made_again(tmp_path: Path) -> None:
    import gzip

    from glm.io.genome import Genome, _copy_place

    records = {"a": "ACGT" * 50, "b": "GGCA" * 40}
    packed = tmp_path / "g.fa.gz"
    packed.write_bytes(gzip.compress(write_fasta(tmp_path / "g.fa", records).read_bytes()))
    assert Genome(packed).fetch("b", 0, 160) == records["b"]
    os.truncate(_copy_place(packed), 100)  # the cache entry cut short
    with pytest.warns(UserWarning, match="a damaged cache entry; making the copy again"):
        assert Genome(packed).fetch("b", 0, 160) == records["b"]
