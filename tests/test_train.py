"""End to end: pretraining through the Python API and the CLI, export, load, resume, bad input."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import DATA, ROOT, StopAt, write_fasta
from safetensors.torch import load_file

import cli
import glm
from glm.api import GenomicLM
from glm.config import Config
from glm.io.genome import Genome
from glm.training.pretrain import pretrain


def quiet_pretrain(fasta, config: Config, run_dir, resume: bool = False):
    return pretrain(fasta, config, run_dir, resume=resume, progress=False, say=lambda *_: None)


def test_tiny_model_overfits_phix(tmp_path, tiny_config) -> None:
    config = tiny_config.with_overrides(
        {"data.k": 4, "model.width": 64, "model.n_heads": 4, "train.max_steps": 150, "train.lr": 0.005}
    )
    result = quiet_pretrain(DATA / "phiX174.fa", config, tmp_path / "run")
    # 2 bits/base is chance; memorising 5 kb of phage (both strands) must go far below it
    # (measured: 0.62 after these 150 steps; an untrained model scores 2.0 or more).
    assert result.train_bits < 1.0
    assert result.steps == 150


def test_export_load_gives_identical_log_likelihoods(tmp_path, tiny_config) -> None:
    result = quiet_pretrain(DATA / "lambda_virus.fa", tiny_config, tmp_path / "run")
    loaded = glm.load(result.model_dir, device="cpu")
    in_memory = GenomicLM(result.model, loaded.tokenizer)
    sequences = ["ACGTTGCAAGGCTTAAGC" * 5, "GATTACA", "ACGTNNNNACGT"]
    for a, b in zip(loaded.log_likelihood(sequences), in_memory.log_likelihood(sequences)):
        assert a.total == b.total and a.bases == b.bases
    assert loaded.info["steps"] == 20
    assert loaded.info["val_bits_per_base"] == pytest.approx(result.val_bits)


def test_resume_continues_the_same_trajectory(tmp_path, tiny_config) -> None:
    straight = quiet_pretrain(DATA / "phiX174.fa", tiny_config, tmp_path / "straight")
    interrupted = pretrain(
        DATA / "phiX174.fa",
        tiny_config,
        tmp_path / "resumed",
        progress=False,
        say=lambda *_: None,
        callbacks=[StopAt(10)],
    )
    assert interrupted.steps == 10
    resumed = quiet_pretrain(DATA / "phiX174.fa", tiny_config, tmp_path / "resumed", resume=True)
    assert resumed.steps == 20
    a = load_file(straight.model_dir / "model.safetensors")
    b = load_file(resumed.model_dir / "model.safetensors")
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-6, atol=1e-7)
    assert resumed.val_bits == pytest.approx(straight.val_bits, abs=1e-6)


def test_a_short_run_warms_up_a_quarter_of_it_and_validates_once_at_its_last_step(tmp_path, tiny_config) -> None:
    config = tiny_config.with_overrides(
        {"train.max_steps": 8, "train.val_every": 100, "train.warmup_steps": 50, "train.log_every": 1}
    )
    result = quiet_pretrain(DATA / "phiX174.fa", config, tmp_path / "run")
    with open(tmp_path / "run" / "logs" / "version_0" / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    validated = [row for row in rows if row["val/bits_per_base"]]
    assert len(validated) == 1 and validated[0]["step"] == str(max(int(row["step"]) for row in rows))
    assert float(validated[0]["val/bits_per_base"]) == pytest.approx(result.val_bits, rel=1e-6)  # the summary's
    assert (tmp_path / "run" / "checkpoints" / "best.ckpt").exists()
    lr = [float(row["lr-AdamW/pg1"]) for row in rows if row["lr-AdamW/pg1"]]
    assert lr[:2] == pytest.approx([config.train.lr / 2, config.train.lr])  # warmup 2 steps (of 8), not 50


def test_cli_pretrain_and_eval_end_to_end(tmp_path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = tmp_path / "run"
    command = [sys.executable, str(ROOT / "cli.py"), "pretrain", str(DATA / "lambda_virus.fa"), "--out", str(out)]
    command += ["--layers", "2", "--width", "32", "--heads", "2", "--context", "64", "--batch-size", "8"]
    command += ["--max-steps", "12", "--val-every", "6", "--quiet"]
    finished = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr
    assert "hardware: CPU" in finished.stdout  # no --config: a preset chosen for the hardware
    assert "val bits/base" in finished.stdout and str(out / "model") in finished.stdout
    assert {p.name for p in (out / "checkpoints").iterdir()} == {"last.ckpt", "last.previous.ckpt", "best.ckpt"}
    assert (out / "logs" / "version_0" / "metrics.csv").exists()

    evaluated = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "eval", str(out / "model"), str(DATA / "phiX174.fa"), "--quiet"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert evaluated.returncode == 0, evaluated.stderr
    lines = evaluated.stdout.strip().splitlines()
    assert lines[1].split()[:2] == ["NC_001422.1", "5,386"]
    expected = glm.load(out / "model").log_likelihood(Genome(DATA / "phiX174.fa").sequence("NC_001422.1"))
    assert lines[-1].split() == ["overall", "5,386", f"{expected.bits_per_base:.4f}"]


def test_short_genome_trains_on_a_smaller_window(tmp_path, tiny_config) -> None:
    sequence = "".join(np.random.default_rng(0).choice(list("ACGT"), 50))
    fasta = write_fasta(tmp_path / "short.fa", {"s": sequence})
    notes = []
    config = tiny_config.with_overrides({"train.max_steps": 2, "data.val_fraction": 0.2})
    result = pretrain(fasta, config, tmp_path / "run", progress=False, say=notes.append)
    # 40 train bases + SEP = 41 tokens (context 64 asked); 10 val bases + SEP = one 11-token window
    assert any("shorter than one window; training on windows of 40 tokens" in n for n in notes)
    assert result.steps == 2 and 1.0 < result.val_bits < 3.0


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    code = cli.main(argv)
    return code, capsys.readouterr().err


BAD_FASTA = {
    "empty.fa": ("", r"empty\.fa: empty file"),
    "noheader.fa": ("ACGT\n", r"noheader\.fa:1: expected a FASTA header"),
    "dup.fa": (">a\n" + "ACGT" * 50 + "\n>a\n" + "ACGT" * 50 + "\n", r"dup\.fa:3: header: duplicate record name 'a'"),
    "chars.fa": (">a\n" + "ACGT" * 50 + "\nACXT\n", r"chars\.fa:3: sequence: invalid character 'X'"),
    "tiny.fa": (">a\nACGTACGTAC\n", r"tiny\.fa: too short to train"),
}


@pytest.mark.parametrize("name", list(BAD_FASTA))
def test_bad_fasta_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, name: str) -> None:
    content, pattern = BAD_FASTA[name]
    (tmp_path / name).write_text(content)
    out = tmp_path / "run"
    code, err = run_cli(["pretrain", str(tmp_path / name), "--out", str(out), "--quiet", "--config", "tiny"], capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert __import__("re").search(pattern, err), err
    assert not out.exists()


def test_missing_fasta_and_unknown_config_key(tmp_path, capsys) -> None:
    code, err = run_cli(["pretrain", str(tmp_path / "absent.fa"), "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and "absent.fa: no such file" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  widht: 64\n")
    code, err = run_cli(
        ["pretrain", str(DATA / "phiX174.fa"), "--config", str(bad), "--out", str(tmp_path / "r")], capsys
    )
    assert code == 2 and "bad.yaml: unknown key model.widht (did you mean model.width?)" in err


def test_unwritable_output_directory(tmp_path, capsys) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, err = run_cli(["pretrain", str(DATA / "phiX174.fa"), "--out", str(blocker / "run"), "--quiet"], capsys)
    assert code == 2 and "is a file" in err


def test_existing_run_needs_resume_and_resume_needs_a_run(tmp_path, capsys, tiny_config) -> None:
    quiet_pretrain(DATA / "phiX174.fa", tiny_config.with_overrides({"train.max_steps": 2}), tmp_path / "run")
    code, err = run_cli(["pretrain", str(DATA / "phiX174.fa"), "--out", str(tmp_path / "run"), "--quiet"], capsys)
    assert code == 2 and "a run already exists here; pass --resume" in err
    code, err = run_cli(["pretrain", str(DATA / "phiX174.fa"), "--out", str(tmp_path / "new"), "--resume"], capsys)
    assert code == 2 and "--resume: no earlier run here" in err


def test_inference_does_not_import_lightning(tmp_path, tiny_config) -> None:
    result = quiet_pretrain(DATA / "phiX174.fa", tiny_config.with_overrides({"train.max_steps": 2}), tmp_path / "run")
    script = (
        "import sys, glm\n"
        f"lm = glm.load({str(result.model_dir)!r})\n"
        "lm.log_likelihood('ACGTACGTTTGA'); lm.embed(['ACGT', 'GGGCCA'])\n"
        "assert not any(m.startswith(('pytorch_lightning', 'lightning')) for m in sys.modules), 'Lightning imported'\n"
    )
    finished = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert finished.returncode == 0, finished.stderr
