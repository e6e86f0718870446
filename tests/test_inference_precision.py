"""Inference made for GPUs: bf16 autocast (checked on the CPU), alternative suffixes packed by tokens."""

from __future__ import annotations

import contextlib
import random

import numpy as np
import pytest
import torch
from conftest import write_fasta
from test_scoring import make_lm

import cli
from glm.errors import InputError
from glm.io.genome import Genome
from glm.model.checkpoint import export_model, inference_autocast
from glm.scoring import mutagenesis_variants, score_variants
from glm.scoring.passes import suffix_chunks
from glm.scoring.plan import make_plan
from glm.scoring.table import read_scores

random.seed(3)
CONTIG = "".join(random.choice("ACGT") for _ in range(200))


def test_bf16_autocast_moves_llr_a_little(tmp_path) -> None:
    """precision="bf16" runs (CPU autocast here, CUDA's proxy): llr moves, but little and keeps its ranking."""
    lm = make_lm()
    genome = Genome(write_fasta(tmp_path / "g.fa", {"c": CONTIG}))
    variants = mutagenesis_variants(genome, "c", 80, 120)
    exact = score_variants(lm.model, lm.tokenizer, variants, genome, precision="float32")["llr"]
    rounded = score_variants(lm.model, lm.tokenizer, variants, genome, precision="bf16")["llr"]
    difference = np.abs(exact - rounded)
    assert 0 < difference.max() < 0.1 * np.abs(exact).max()
    assert np.corrcoef(exact, rounded)[0, 1] > 0.98
    with pytest.raises(InputError, match="precision"):
        make_plan(lm.model, lm.tokenizer, precision="fp8")


def test_score_takes_precision(tmp_path, capsys) -> None:
    """`score --precision float32` is the default's file byte for byte; bf16 moves the llr a little."""
    lm = make_lm()
    model = export_model(tmp_path / "model", lm.model, lm.tokenizer)
    genome = Genome(write_fasta(tmp_path / "g.fa", {"c": CONTIG}))
    rows = [
        f"c\t{variant.pos + 1}\t{variant.ref}\t{variant.alt}" for variant in mutagenesis_variants(genome, "c", 90, 110)
    ]
    (tmp_path / "v.tsv").write_text("chrom\tpos\tref\talt\n" + "\n".join(rows) + "\n")
    args = ["score", str(model), "--genome", str(genome.path), "--variants", str(tmp_path / "v.tsv"), "--quiet"]
    for name, given in {"default": [], "float32": ["--precision", "float32"], "bf16": ["--precision", "bf16"]}.items():
        assert cli.main([*args, "--device", "cpu", "--out", str(tmp_path / f"{name}.tsv"), *given]) == 0
    assert "60 of 60 variants scored" in capsys.readouterr().out
    assert (tmp_path / "float32.tsv").read_bytes() == (tmp_path / "default.tsv").read_bytes()
    exact, rounded = (read_scores(tmp_path / f"{name}.tsv", genome, "llr")["llr"] for name in ("float32", "bf16"))
    assert 0 < np.abs(exact - rounded).max() < 0.1 * np.abs(exact).max()
    assert np.corrcoef(exact, rounded)[0, 1] > 0.98


def test_float32_is_the_default_on_every_device_and_bf16_only_when_asked() -> None:
    assert isinstance(inference_autocast(torch.device("cpu")), contextlib.nullcontext)
    assert isinstance(inference_autocast(torch.device("cuda")), contextlib.nullcontext)
    assert isinstance(inference_autocast(torch.device("cpu"), "bf16"), torch.autocast)
    assert isinstance(inference_autocast(torch.device("cuda"), "float32"), contextlib.nullcontext)


def test_suffix_chunks_hold_a_token_budget() -> None:
    """Jobs sorted by their first difference: short suffixes share a pass, every job is in one chunk."""
    shared = [1, 1, 2, 40, 41, 60, 62, 63, 63, 64]
    chunks = suffix_chunks(shared, n_tokens=64, batch_size=2)  # 128 tokens a pass
    assert chunks == [(0, 2), (2, 4), (4, 9), (9, 10)]
    for first, last in chunks:
        suffix = 64 - shared[first] + 1
        assert (last - first) * suffix <= 128 or last - first == 1
    assert [job for first, last in chunks for job in range(first, last)] == list(range(len(shared)))
