"""Scaling out: concurrent data preparation, distributed training (DDP on CPU with gloo), global
batch and accumulation, activation checkpointing, atomic checkpoints, kill-and-resume."""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from conftest import DATA, ROOT, StopAt, write_fasta
from prepare_worker import prepare_in_a_process
from safetensors.torch import load_file

import cli
import glm.training.data
from glm.config import Config, ModelConfig, TrainConfig, load_config
from glm.errors import InputError
from glm.model.tokenizers import KmerTokenizer
from glm.model.transformer import Transformer
from glm.training.checkpoints import AtomicCheckpointIO
from glm.training.lit import LitGLM
from glm.training.pretrain import pretrain
from glm.training.trainer import accumulation, check_launcher, processes
from glm.training.windows import ValidationWindows


def test_concurrent_prepares_write_the_store_once(tmp_path) -> None:
    """Every rank of a distributed run calls prepare at once: one writes, the others wait and read."""
    fasta = write_fasta(tmp_path / "g.fa", {"a": "ACGTTGCA" * 5000})
    log = tmp_path / "writers.log"
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(3)
    workers = [
        context.Process(target=prepare_in_a_process, args=(fasta, tmp_path / "cache", log, start)) for _ in range(3)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0, 0, 0]
    assert log.read_text() == "wrote\n"
    stores = [p for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".")]
    assert len(stores) == 1 and (stores[0] / "meta.json").exists()
    assert not [p for p in (tmp_path / "cache").iterdir() if ".partial-" in p.name]


# ---- global batch, accumulation, activation checkpointing -----------------------------------


def test_global_batch_tokens_sets_accumulate_and_must_divide(tmp_path, capsys) -> None:
    train = TrainConfig(batch_size=4, global_batch_tokens=4096)
    assert accumulation(train, context=64, world_size=2) == 8  # 4096 / (4 x 64 x 2)
    assert accumulation(train, context=64, world_size=16) == 1
    assert accumulation(TrainConfig(accumulate=3), context=64, world_size=2) == 3
    with pytest.raises(InputError, match=r"--global-batch-tokens 1,000 is not a multiple of .* 4 x 64 x 2 = 512 "):
        accumulation(TrainConfig(batch_size=4, global_batch_tokens=1000), context=64, world_size=2)
    with pytest.raises(InputError, match="not both"):
        TrainConfig(accumulate=2, global_batch_tokens=4096).validate()
    assert processes(TrainConfig(devices="0,1,3", num_nodes=2)) == 6
    assert processes(TrainConfig(devices="4", num_nodes=8)) == 32

    out = tmp_path / "run"
    code = cli.main(
        [
            *("pretrain", str(DATA / "phiX174.fa"), "--out", str(out), "--quiet", "--config", "tiny"),
            *("--global-batch-tokens", "1000", "--accelerator", "cpu", "--batch-size", "4", "--context", "64"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "= 256 tokens (try 768 or 1,024)" in err and err.count("\n") == 1
    assert not out.exists()  # checked before anything is written


def test_processes_started_by_torchrun_or_srun_must_match_devices_x_nodes(monkeypatch) -> None:
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "test")
    monkeypatch.setenv("WORLD_SIZE", "2")
    check_launcher(2)
    with pytest.raises(InputError, match=r"torchrun started 2 processes, but --devices x --num-nodes is 1"):
        check_launcher(1)  # else each process would train alone, all into one run directory
    monkeypatch.delenv("TORCHELASTIC_RUN_ID")
    for name, value in {"SLURM_NTASKS": "8", "SLURM_JOB_NAME": "glm"}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(InputError, match=r"SLURM started 8 processes, but --devices x --num-nodes is 4"):
        check_launcher(4)


def test_fsdp_on_cpu_is_a_clear_error(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    code = cli.main(
        [
            *("pretrain", str(DATA / "phiX174.fa"), "--out", str(out), "--quiet", "--strategy", "fsdp"),
            # the preset's Muon would refuse fsdp first
            *("--accelerator", "cpu", "--config", "tiny", "--optimizer", "adamw"),
        ]
    )
    assert code == 2 and "--strategy fsdp needs CUDA GPUs" in capsys.readouterr().err
    assert not out.exists()


def test_activation_checkpointing_gives_identical_gradients() -> None:
    config = ModelConfig(vocab_size=9, n_layers=3, n_heads=2, width=32, context=48, dropout=0.1)
    torch.manual_seed(0)
    model = Transformer(config).train()
    ids = torch.randint(4, 9, (3, 48))
    calls = []
    for block in model.blocks:  # count block forwards (module hooks do not fire when checkpointing recomputes)
        block.forward = lambda *args, forward=block.forward: calls.append(1) or forward(*args)

    def gradients(checkpointing: bool) -> dict[str, torch.Tensor]:
        model.zero_grad()
        model.activation_checkpointing = checkpointing
        torch.manual_seed(1)  # same dropout masks (checkpointing replays the random state when recomputing)
        F.cross_entropy(model(ids[:, :-1]).transpose(1, 2), ids[:, 1:]).backward()
        return {name: p.grad.clone() for name, p in model.named_parameters()}

    plain = gradients(False)
    assert len(calls) == 3
    recomputed = gradients(True)
    assert len(calls) == 3 + 6  # each block ran again in the backward pass
    for name in plain:
        torch.testing.assert_close(recomputed[name], plain[name], rtol=0, atol=0)


def quiet_pretrain(fasta, config: Config, run_dir, resume: bool = False, **kwargs):
    return pretrain(fasta, config, run_dir, resume=resume, progress=False, say=lambda *_: None, **kwargs)


def weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(Path(model_dir) / "model.safetensors")


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], tolerance: float) -> None:
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=tolerance, atol=tolerance, msg=name)


def scale_config(tiny_config: Config, **overrides) -> Config:
    return tiny_config.with_overrides(
        {"train.max_steps": 8, "train.val_every": 4, "train.precision": "32-true", "train.accelerator": "cpu"}
        | overrides
    )


def test_accumulated_micro_batches_make_the_same_update_as_one_large_batch(tmp_path, tiny_config) -> None:
    """8 windows per step, as one batch of 8 or as 2 accumulated batches of 4 (set by the global batch)."""
    large = quiet_pretrain(DATA / "phiX174.fa", scale_config(tiny_config, **{"train.batch_size": 8}), tmp_path / "a")
    accumulated = quiet_pretrain(
        DATA / "phiX174.fa",
        scale_config(tiny_config, **{"train.batch_size": 4, "train.global_batch_tokens": 8 * 64}),
        tmp_path / "b",
    )
    assert accumulated.tokens_seen == large.tokens_seen == 8 * 8 * 64
    assert_same_weights(weights(accumulated.model_dir), weights(large.model_dir), tolerance=1e-5)
    assert accumulated.val_bits == pytest.approx(large.val_bits, abs=1e-5)


# ---- distributed data parallel on CPU (gloo), through the CLI -------------------------------

# Runs cli.main as `python ddp_cli.py pretrain ...`; Lightning starts rank 1 by running the same
# command again. Each rank saves the weights it ends with, so the test can compare the ranks.
DDP_WRAPPER = """
import os, sys
sys.path.insert(0, {root!r})
import cli, glm.training.pretrain
from safetensors.torch import save_file

pretrain = glm.training.pretrain.pretrain

def pretrain_and_dump(*args, **kwargs):
    result = pretrain(*args, **kwargs)
    state = {{k: v.contiguous() for k, v in result.model.state_dict().items() if k != "head.weight"}}
    save_file(state, os.path.join({dump!r}, "rank%s.safetensors" % os.environ.get("LOCAL_RANK", "0")))
    return result

glm.training.pretrain.pretrain = pretrain_and_dump
sys.exit(cli.main())
"""

TINY_CLI = ["--layers", "2", "--width", "32", "--heads", "2", "--context", "64", "--k", "1", "--quiet"]
TINY_CLI += ["--warmup-steps", "5", "--precision", "32-true", "--accelerator", "cpu"]


# One thread per process: tiny models gain nothing from more, and two ranks with two threads each
# on a busy machine spend their time waiting for each other's threads (torchrun sets the same).
SUBPROCESS_ENV = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")


def run_cli_subprocess(script: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, env=SUBPROCESS_ENV, cwd=cwd
    )


def validation_bits(model_dir: Path, run_config: Config) -> float:
    """Bits per base of an exported model on the run's validation windows, in this one process."""
    store = glm.training.data.prepare(
        DATA / "phiX174.fa", KmerTokenizer(1), run_config.data.resolved_cache_dir(), progress=False
    )
    lit = LitGLM(run_config.to_dict(), bases_per_token=1.0)
    state = weights(model_dir)
    lit.model.load_state_dict(state | {"head.weight": state["embedding.weight"]})
    nll = count = 0.0
    windows = ValidationWindows(store, 65, run_config.train.batch_size, run_config.train.val_windows)
    with torch.no_grad():
        for batch in windows:
            _, batch_nll, batch_count = lit._shared_step(batch, "val")
            nll, count = nll + batch_nll.item(), count + batch_count.item()
    return nll / count / math.log(2)


@pytest.mark.parametrize("optimizer", ["adamw", "muon"])
def test_two_process_ddp_run_matches_one_process_with_the_same_global_batch(tmp_path, tiny_config, optimizer) -> None:
    dump = tmp_path / "dump"
    dump.mkdir()
    script = tmp_path / "ddp_cli.py"
    script.write_text(DDP_WRAPPER.format(root=str(ROOT), dump=str(dump)))
    out = tmp_path / "ddp"
    args = ["pretrain", str(DATA / "phiX174.fa"), "--out", str(out), *TINY_CLI, "--devices", "2"]
    args += ["--batch-size", "4", "--max-steps", "8", "--val-every", "4", "--optimizer", optimizer, "--qk-norm"]
    tiny_config = tiny_config.with_overrides({"train.optimizer": optimizer, "model.qk_norm": True})
    finished = run_cli_subprocess(script, args, cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "2 process(es) x 4 windows x 1 accumulated = 8 windows per step" in finished.stdout

    rank0, rank1 = load_file(dump / "rank0.safetensors"), load_file(dump / "rank1.safetensors")
    assert_same_weights(rank0, rank1, tolerance=0)  # DDP keeps the replicas bit for bit identical
    assert_same_weights(weights(out / "model"), rank0, tolerance=0)

    # One process drawing the same 8 windows per step makes the same updates. Muon's bf16
    # Newton-Schulz iteration amplifies float-order differences of the gradient sums (one process
    # with 2 accumulated half-batches differs from one full batch by as much: up to 2e-2 in a
    # weight after 8 steps), so with Muon the run is compared by its validation loss.
    single = quiet_pretrain(DATA / "phiX174.fa", scale_config(tiny_config, **{"train.batch_size": 8}), tmp_path / "one")
    if optimizer == "adamw":
        assert_same_weights(rank0, weights(single.model_dir), tolerance=1e-5)

    # The validation sums were reduced over both ranks: the reported number is the one-process number.
    reported = json.loads((out / "model" / "config.json").read_text())["info"]["val_bits_per_base"]
    run_config = load_config(out / "config.yaml")
    assert reported == pytest.approx(validation_bits(out / "model", run_config), abs=1e-6)
    assert reported == pytest.approx(single.val_bits, abs=1e-5 if optimizer == "adamw" else 2e-4)


# ---- fault tolerance ---------------------------------------------------------------------------


def dropout_config(path: Path) -> Path:
    """A YAML config with dropout, so a resumed run must also restore the random state."""
    path.write_text("model: {n_layers: 2, n_heads: 2, width: 32, context: 64, dropout: 0.1}\ndata: {k: 1}\n")
    return path


def test_a_run_killed_with_sigkill_resumes_onto_the_same_trajectory(tmp_path) -> None:
    config = dropout_config(tmp_path / "dropout.yaml")
    args = [*TINY_CLI, "--config", str(config), "--batch-size", "8", "--max-steps", "24", "--val-every", "4"]
    cli_script = ROOT / "cli.py"
    straight = run_cli_subprocess(
        cli_script, ["pretrain", str(DATA / "phiX174.fa"), "--out", "straight", *args], tmp_path
    )
    assert straight.returncode == 0, straight.stderr[-3000:]

    command = [sys.executable, str(cli_script), "pretrain", str(DATA / "phiX174.fa"), "--out", "killed", *args]
    victim = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=SUBPROCESS_ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    last = tmp_path / "killed" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 120
    while not last.exists() and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL  # killed mid-run, not finished
    assert not (tmp_path / "killed" / "model").exists()

    resumed = run_cli_subprocess(
        cli_script, ["pretrain", str(DATA / "phiX174.fa"), "--out", "killed", "--resume", "--quiet"], tmp_path
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "steps             24" in resumed.stdout
    assert_same_weights(weights(tmp_path / "killed" / "model"), weights(tmp_path / "straight" / "model"), 1e-6)


def test_a_truncated_last_checkpoint_falls_back_to_the_previous_one(tmp_path, tiny_config) -> None:
    config = scale_config(tiny_config, **{"train.max_steps": 12, "model.dropout": 0.1})
    straight = quiet_pretrain(DATA / "phiX174.fa", config, tmp_path / "straight")
    quiet_pretrain(DATA / "phiX174.fa", config, tmp_path / "run", callbacks=[StopAt(8)])
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    previous = tmp_path / "run" / "checkpoints" / "last.previous.ckpt"
    assert torch.load(previous, weights_only=True)["global_step"] == 8
    with open(last, "r+b") as handle:  # as a crash in the middle of a non-atomic write would leave it
        handle.truncate(last.stat().st_size // 2)
    with pytest.warns(UserWarning, match=r"last\.ckpt is unreadable .*; resuming from last\.previous\.ckpt"):
        resumed = quiet_pretrain(DATA / "phiX174.fa", config, tmp_path / "run", resume=True)
    assert resumed.steps == 12
    assert_same_weights(weights(resumed.model_dir), weights(straight.model_dir), tolerance=1e-6)


def test_a_save_interrupted_mid_write_leaves_the_old_checkpoint(tmp_path, monkeypatch) -> None:
    io = AtomicCheckpointIO(keep_previous=["last.ckpt"])
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"global_step": 1, "weights": torch.ones(1000)}, path)
    real_save = torch.save

    def dies_half_way(checkpoint, handle) -> None:
        real_save(checkpoint, handle)
        handle.truncate(handle.tell() // 2)
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", dies_half_way)
    with pytest.raises(OSError, match="disk full"):
        io.save_checkpoint({"global_step": 2, "weights": torch.zeros(1000)}, path)
    assert torch.load(path, weights_only=True)["global_step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no partial file left behind
    monkeypatch.setattr(torch, "save", real_save)
    io.save_checkpoint({"global_step": 3}, path)
    assert torch.load(path, weights_only=True)["global_step"] == 3
    assert torch.load(tmp_path / "last.previous.ckpt", weights_only=True)["global_step"] == 1


class PoisonWeightsAt(pl.Callback):
    """Sets one weight to NaN before optimizer step `step`, as a diverging run would."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer: pl.Trainer, lit: pl.LightningModule, *args) -> None:
        if trainer.global_step == self.step:
            with torch.no_grad():
                lit.model.blocks[0].mlp.down.weight[0, 0] = float("nan")


def test_a_non_finite_loss_stops_the_run_and_names_the_step(tmp_path, tiny_config) -> None:
    with pytest.raises(FloatingPointError, match=r"non-finite training loss \(nan or inf\) at step 5 on 1 of 1"):
        quiet_pretrain(DATA / "phiX174.fa", scale_config(tiny_config), tmp_path / "run", callbacks=[PoisonWeightsAt(5)])
