"""A full disk or Ctrl-C in the middle of `score`, `prepare` or a model export: no partial file under a final
name, nothing left behind (but the chunks an interrupted `score` finished, for --resume), an older output kept,
and one line saying what happened (exit 2 or 130)."""

from __future__ import annotations

import errno
import os
import random

import numpy as np
import pytest
import torch
from conftest import write_fasta

import cli
import glm.io.variant_writer
import glm.model.checkpoint
import glm.training.data
from glm.config import ModelConfig
from glm.errors import InputError
from glm.model.checkpoint import export_model, load_model
from glm.model.tokenizers import KmerTokenizer
from glm.model.transformer import Transformer
from glm.training.data import prepare

FULL = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def fail_after(calls: int, error: BaseException, function):
    """`function`, except that call number `calls` + 1 raises `error` (as a disk filling up midway would)."""
    made = []

    def wrapped(*args, **kwargs):
        if len(made) == calls:
            raise error
        made.append(1)
        return function(*args, **kwargs)

    return wrapped


def tiny_model() -> tuple[Transformer, KmerTokenizer]:
    torch.manual_seed(0)
    tokenizer = KmerTokenizer(1)
    return Transformer(
        ModelConfig(vocab_size=tokenizer.vocab_size, n_layers=2, n_heads=2, width=32, context=24)
    ), tokenizer


@pytest.fixture
def scoring_inputs(tmp_path):
    draw = random.Random(0)
    contig = "".join(draw.choice("ACGT") for _ in range(400))
    genome = write_fasta(tmp_path / "genome.fa", {"chr1": contig})
    rows = ["chrom\tpos\tref\talt"]
    rows += [f"chr1\t{pos}\t{contig[pos - 1]}\t{'A' if contig[pos - 1] != 'A' else 'C'}" for pos in range(30, 370, 10)]
    (tmp_path / "variants.tsv").write_text("\n".join(rows) + "\n")
    model = export_model(tmp_path / "model", *tiny_model())
    return [str(model), "--genome", str(genome), "--variants", str(tmp_path / "variants.tsv"), "--quiet"]


@pytest.mark.parametrize("suffix", [".tsv", ".vcf.gz"])
@pytest.mark.parametrize(
    ("error", "status", "said"),
    [(FULL, 2, "no space left on device writing"), (KeyboardInterrupt(), 130, "interrupted")],
)
def test_score_stopped_midway_leaves_the_older_output_and_no_partial_file(
    tmp_path, scoring_inputs, capsys, monkeypatch, suffix, error, status, said
) -> None:
    (tmp_path / "results").mkdir()
    out = tmp_path / "results" / f"scores{suffix}"
    assert cli.main(["score", *scoring_inputs, "--out", str(out)]) == 0
    before = out.read_bytes()
    capsys.readouterr()
    monkeypatch.setattr(
        glm.io.variant_writer, "_format_score", fail_after(10, error, glm.io.variant_writer._format_score)
    )
    assert cli.main(["score", *scoring_inputs, "--out", str(out)]) == status
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and said in err and "Traceback" not in err
    kept = {out.name, *([f"{out.name}.tbi"] if suffix == ".vcf.gz" else [])}  # the older output, its index
    if status == 2:  # the file being written when the disk filled: the first chunk's part, beside the output
        assert err == f"error: no space left on device writing {out}.parts/shard-0000000{suffix}\n"
        assert out.read_bytes() == before and set(os.listdir(out.parent)) == kept  # the parts are freed
        return
    # Interrupted: the chunks scored so far are kept for --resume, which then writes the same bytes.
    assert out.read_bytes() == before and set(os.listdir(out.parent)) == kept | {f"{out.name}.parts"}
    monkeypatch.undo()
    assert cli.main(["score", *scoring_inputs, "--out", str(out), "--resume"]) == 0
    assert out.read_bytes() == before and set(os.listdir(out.parent)) == kept


@pytest.mark.parametrize("error", [FULL, KeyboardInterrupt()])
def test_prepare_stopped_midway_leaves_no_store_and_the_next_run_completes(tmp_path, monkeypatch, error) -> None:
    draw = random.Random(1)
    fasta = write_fasta(tmp_path / "two.fa", {name: "".join(draw.choice("ACGT") for _ in range(3000)) for name in "ab"})
    cache = tmp_path / "cache"
    real = glm.training.data.encode_in_chunks
    monkeypatch.setattr(glm.training.data, "encode_in_chunks", fail_after(1, error, real))
    with pytest.raises(InputError if error is FULL else KeyboardInterrupt) as stopped:
        prepare(fasta, KmerTokenizer(2), cache, progress=False)
    if error is FULL:
        assert str(stopped.value).startswith("no space left on device writing ") and str(cache) in str(stopped.value)
    assert [path for path in cache.rglob("*") if path.is_dir() and (path / "meta.json").exists()] == []
    assert [path for path in cache.rglob("*") if "partial" in path.name] == []
    monkeypatch.setattr(glm.training.data, "encode_in_chunks", real)
    store = prepare(fasta, KmerTokenizer(2), cache, progress=False)
    assert store.meta["train_bases"] + store.meta["val_bases"] == 6000


@pytest.mark.parametrize("error", [FULL, KeyboardInterrupt()])
def test_an_export_stopped_midway_keeps_the_older_model(tmp_path, monkeypatch, error) -> None:
    model, tokenizer = tiny_model()
    export_model(tmp_path / "model", model, tokenizer)
    weights = (tmp_path / "model" / "model.safetensors").read_bytes()
    with torch.no_grad():
        model.head.weight.add_(1.0)  # a different model, whose export fails after its weights are written
    monkeypatch.setattr(
        glm.model.checkpoint, "save_tokenizer", fail_after(0, error, glm.model.checkpoint.save_tokenizer)
    )
    with pytest.raises(
        InputError if error is FULL else KeyboardInterrupt, match="no space left" if error is FULL else None
    ):
        export_model(tmp_path / "model", model, tokenizer)
    assert os.listdir(tmp_path) == ["model"] and (tmp_path / "model" / "model.safetensors").read_bytes() == weights
    loaded, _, _ = load_model(tmp_path / "model", "cpu")
    assert not np.allclose(loaded.head.weight.detach().numpy(), model.head.weight.detach().numpy())
