"""Faults and signals: SIGTERM (a scheduler's time limit, an eviction) and Ctrl-C stop `glm pretrain` at a
step with a checkpoint that resumes onto the same trajectory, with one line and status 143 / 130; SIGTERM
stops any other command with its cleanups; what writers killed mid-write leave is removed by the next write
once their process is gone; what a resumed run may change; several nodes need a launcher."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import DATA, ROOT
from safetensors.torch import load_file

import cli
import glm.io.variant_writer
from glm.config import load_config
from glm.errors import InputError
from glm.io.files import write_json
from glm.model.tokenizers import KmerTokenizer
from glm.training.data import prepare
from glm.training.pretrain import pretrain
from glm.training.trainer import check_launcher

GENOME = DATA / "phiX174.fa"
MODEL = ROOT / "tests" / "data" / "model_format1"
ENV = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
STEPS = 60
# Dropout, so that a resumed run must also restore the random state; two micro-batches a step, so that a
# signal must wait for the step to end.
RUN_CONFIG = "model: {n_layers: 2, n_heads: 2, width: 32, context: 64, dropout: 0.1}\ndata: {k: 1}\n"
RUN_CONFIG += "train: {batch_size: 4, accumulate: 2, warmup_steps: 5, val_every: 4, val_windows: 8}\n"
RUN_OPTIONS = ["--precision", "32-true", "--accelerator", "cpu", "--max-steps", str(STEPS), "--quiet"]


def pretrain_command(run: str, config: Path) -> list[str]:
    return [sys.executable, str(ROOT / "cli.py"), "pretrain", str(GENOME), "--out", run, "--config", str(config)]


def temporaries(directory: Path) -> list[Path]:
    return [path for path in directory.rglob("*") if ".partial-" in path.name or ".old-" in path.name]


def signal_mid_run(folder: Path, config: Path, name: str, signum: int, env: dict[str, str]) -> tuple[int, str, int]:
    """Start `glm pretrain` into folder/name, send `signum` once it has a checkpoint; (status, last stderr
    line, the step its message names)."""
    victim = subprocess.Popen(
        [*pretrain_command(name, config), *RUN_OPTIONS],
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    last = folder / name / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 120
    while not last.exists() and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    victim.send_signal(signum)
    _, err = victim.communicate(timeout=120)
    assert "Traceback" not in err, err[-3000:]
    last_line = err.strip().splitlines()[-1]
    return victim.returncode, last_line, int(last_line.split("at step ")[1].split(";")[0])


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> tuple[Path, Path]:
    """(folder, config) of one uninterrupted run, the trajectory the stopped runs must resume onto."""
    folder = tmp_path_factory.mktemp("faults")
    config = folder / "run.yaml"
    config.write_text(RUN_CONFIG)
    command = [*pretrain_command("straight", config), *RUN_OPTIONS]
    finished = subprocess.run(command, cwd=folder, env=ENV, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr[-3000:]
    return folder, config


@pytest.mark.parametrize(
    ("signum", "expected", "said"),
    [(signal.SIGTERM, 143, "terminated (SIGTERM)"), (signal.SIGINT, 130, "interrupted (SIGINT)")],
)
def test_a_signal_mid_run_saves_a_checkpoint_exits_128_plus_it_and_resumes_onto_the_same_trajectory(
    straight, signum, expected, said
) -> None:
    folder, config = straight
    run = folder / signum.name
    status, last_line, step = signal_mid_run(folder, config, signum.name, signum, ENV)
    assert status == expected, last_line
    resume = f"glm pretrain {GENOME} --out {signum.name} --resume"
    assert last_line == f"{said} at step {step}; resume with: {resume}"
    assert 4 <= step < STEPS  # stopped mid-run, at a step boundary after the first checkpoint
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == step
    assert not (run / "model").exists() and temporaries(run) == []

    resumed = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), *resume.split()[1:], "--quiet"],
        cwd=folder,
        env=ENV,
        capture_output=True,
        text=True,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"steps             {STEPS}" in resumed.stdout
    a, b = (
        load_file(run / "model" / "model.safetensors"),
        load_file(folder / "straight" / "model" / "model.safetensors"),
    )
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-6, atol=1e-6, msg=name)
    val_bits = [
        json.loads((path / "model" / "config.json").read_text())["info"]["val_bits_per_base"]
        for path in (run, folder / "straight")
    ]
    assert val_bits[0] == pytest.approx(val_bits[1], abs=1e-6)
    assert temporaries(run) == []


def test_sigterm_stops_score_with_one_line_143_no_partial_output_and_its_finished_shards_kept_for_resume(
    tmp_path, capsys, monkeypatch
) -> None:
    (tmp_path / "v.tsv").write_text("chrom\tpos\tref\talt\n" + "NC_001422.1\t10\tC\tA\n" * 30)
    out = tmp_path / "scores.tsv"
    real, calls = glm.io.variant_writer._format_score, []

    def terminated_midway(*args):
        calls.append(1)
        if len(calls) == 10:  # as SLURM's SIGTERM at the time limit would, in the middle of writing
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*args)

    monkeypatch.setattr(glm.io.variant_writer, "_format_score", terminated_midway)
    handler = signal.getsignal(signal.SIGTERM)
    argv = ["score", str(MODEL), "--genome", str(GENOME), "--variants", str(tmp_path / "v.tsv"), "--out", str(out)]
    assert cli.main([*argv, "--quiet", "--chunk-size", "10"]) == 143
    parts = tmp_path / "scores.tsv.parts"
    expected = f"terminated (SIGTERM) with the finished shards kept in {parts}; rerun the same command with --resume\n"
    assert capsys.readouterr().err == expected
    assert sorted(path.name for path in tmp_path.iterdir()) == ["scores.tsv.parts", "v.tsv"]
    # every chunk scored (3 of 10 rows), the signal came while the first was formatted: no partial part
    rows = [f"shard-000000{number}.rows.jsonl" for number in range(3)]
    assert sorted(path.name for path in parts.iterdir()) == ["manifest.json", *rows]
    assert signal.getsignal(signal.SIGTERM) == handler  # main() put the handler back
    monkeypatch.setattr(glm.io.variant_writer, "_format_score", real)
    assert cli.main([*argv, "--quiet", "--chunk-size", "10", "--resume"]) == 0
    assert cli.main([*argv[:-1], str(tmp_path / "straight.tsv"), "--quiet", "--chunk-size", "10"]) == 0
    assert out.read_bytes() == (tmp_path / "straight.tsv").read_bytes()
    assert not parts.exists()


def test_temporaries_of_killed_writers_are_removed_by_the_next_write_but_not_a_live_or_remote_ones(
    tmp_path,
) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    host = socket.gethostname()
    cache = tmp_path / "cache"
    cache.mkdir()
    stale = [
        tmp_path / f".curves.png.partial-{host}-{gone.pid}.png",
        cache / f".phiX174.fa-1234.partial-{host}-{gone.pid}",
    ]
    kept = [tmp_path / f".a.json.partial-{host}-{os.getpid()}.json", tmp_path / f".b.png.partial-node7-{gone.pid}.png"]
    for path in [stale[0], *kept]:
        path.write_text("half")
    stale[1].mkdir()
    (stale[1] / "train.bin").write_bytes(b"\0" * 10)
    write_json(tmp_path / "c.json", {"x": 1})  # any write into the folder (atomic_file)
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        [*(path.name for path in kept), "c.json", "cache"]
    )
    prepare(GENOME, KmerTokenizer(1), cache, progress=False)  # a token store (atomic_directory)
    assert not stale[1].exists() and temporaries(cache) == []


def test_a_new_run_removes_what_a_run_that_died_before_its_first_checkpoint_left(tmp_path, tiny_config) -> None:
    run = tmp_path / "run"
    (run / "logs" / "version_0").mkdir(parents=True)
    (run / "logs" / "version_0" / "metrics.csv").write_text("step,train/bits_per_base\n0,9.0\n")
    (run / "config.yaml").write_text("model: {width: 999}\n")
    notes: list[str] = []
    pretrain(GENOME, tiny_config.with_overrides({"train.max_steps": 2}), run, progress=False, say=notes.append)
    assert "note: removed config.yaml, logs of an earlier run here that stopped before its first checkpoint" in notes
    assert [path.name for path in (run / "logs").iterdir()] == ["version_0"]  # the new run's: not version_1
    assert "9.0" not in (run / "logs" / "version_0" / "metrics.csv").read_text()
    assert load_config(run / "config.yaml").model.width == 32


def test_a_resumed_run_may_change_its_budget_and_bookkeeping(tmp_path, capsys, tiny_config) -> None:
    run = tmp_path / "run"
    pretrain(GENOME, tiny_config.with_overrides({"train.max_steps": 2}), run, progress=False, say=lambda *_: None)
    argv = ["pretrain", str(GENOME), "--out", str(run), "--resume", "--quiet", "--max-steps", "4", "--log-every", "1"]
    assert cli.main([*argv, "--width", "32", "--batch-size", "8"]) == 0  # options equal to the run's are accepted
    out = capsys.readouterr().out
    assert "resuming with train.max_steps 4 (the run had 2)" in out and "steps             4" in out
    assert "resuming with train.log_every 1 (the run had 10)" in out
    wider = tiny_config.with_overrides({"model.width": 64, "train.max_steps": 6})  # from Python, as from the CLI
    with pytest.raises(InputError, match=r"--resume: the run has model.width 32, --width asks for 64\."):
        pretrain(GENOME, wider, run, resume=True, progress=False, say=lambda *_: None)


def test_several_nodes_need_a_launcher_on_every_node(monkeypatch) -> None:
    for name in ("TORCHELASTIC_RUN_ID", "SLURM_NTASKS", "LSB_JOBID", "MASTER_ADDR", "NODE_RANK"):
        monkeypatch.delenv(name, raising=False)
    check_launcher(2, num_nodes=1)  # one node: Lightning starts the processes itself
    with pytest.raises(InputError, match=r"--num-nodes 2: no launcher started this run on the other nodes"):
        check_launcher(4, num_nodes=2)
    monkeypatch.setenv("MASTER_ADDR", "10.0.0.1")  # Lightning's by-hand launch: these set on every node
    monkeypatch.setenv("NODE_RANK", "1")
    check_launcher(4, num_nodes=2)


def test_slurms_requeue_signal_saves_a_checkpoint_and_requeues_the_job(straight, tmp_path) -> None:
    """Under SLURM (its variables, as srun sets them for one task), SIGUSR1 stops at a step and requeues."""
    folder, config = straight
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scontrol = bin_dir / "scontrol"
    scontrol.write_text(f'#!/bin/sh\necho "$@" > {tmp_path / "scontrol.log"}\n')
    scontrol.chmod(0o755)
    slurm = {"SLURM_NTASKS": "1", "SLURM_JOB_NAME": "glm", "SLURM_JOB_ID": "4242", "SLURM_PROCID": "0"}
    slurm |= {"SLURM_LOCALID": "0", "SLURM_NODEID": "0", "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    status, last_line, step = signal_mid_run(folder, config, "requeued", signal.SIGUSR1, ENV | slurm)
    assert status == 128 + signal.SIGUSR1, last_line
    assert last_line.startswith(f"terminated (SIGUSR1) at step {step}; SLURM job 4242 requeued; resume with: glm")
    assert (tmp_path / "scontrol.log").read_text() == "requeue 4242\n"
    run = folder / "requeued"
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == step < STEPS
    assert not list(run.glob("hpc_ckpt_*")) and temporaries(run) == []  # Lightning's own requeue file is not written
