"""Stopping a training run on a signal: at a step boundary, at the same step on every process.

SIGTERM is what SLURM sends at a job's time limit (and after `scontrol requeue`) and Kubernetes on
eviction; SIGINT is Ctrl-C. Lightning handles neither as a scheduler needs: on SIGTERM its loops
raise SIGTERMException, a SystemExit without a code, in the middle of a step, so the process ends
with status 0, no checkpoint and no message (the scheduler records success); on Ctrl-C it calls
sys.exit(1).

So for the time of `fit` glm takes both signals itself (SignalStop.listening). A signal is only
noted; at the next optimizer-step boundary the notes are reduced over the processes (max), so every
rank stops at the same step, through `trainer.should_stop` as an early stop does: Lightning
validates that step and writes checkpoints/last.ckpt, a checkpoint --resume continues exactly from.
The caller then raises glm.errors.Stopped (glm.commands.main: one line, status 128 + the signal).
A second signal before that stops at once, without a new checkpoint. A signal after the last step
lets the run finish: its model is complete.

Under SLURM the requeue signal (SIGUSR1, e.g. `#SBATCH --signal=SIGUSR1@120`) stops the run the same
way and then requeues the job (`scontrol requeue`, as Lightning's auto-requeue does), so the job
starts again and resumes from that checkpoint. glm takes that signal from Lightning
(`SLURMEnvironment(auto_requeue=False)`, slurm_environment): Lightning's handler saves an
`hpc_ckpt_N.ckpt` from inside the signal handler, wherever the step is, which glm never reads.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.plugins.environments import SLURMEnvironment
from pytorch_lightning.utilities.exceptions import SIGTERMException

from glm.errors import Stopped, signal_handlers

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
REQUEUE = signal.SIGUSR1  # SLURM's signal before the time limit, as Lightning's auto-requeue takes it


def slurm_environment() -> list[SLURMEnvironment]:
    """Under SLURM, Lightning's SLURM environment without its requeue handler (glm's SignalStop takes the signal)."""
    return [SLURMEnvironment(auto_requeue=False)] if SLURMEnvironment.detect() else []


def stop_signals() -> tuple[int, ...]:
    """SIGTERM and SIGINT; under SLURM the requeue signal too."""
    return STOP_SIGNALS + ((REQUEUE,) if SLURMEnvironment.detect() else ())


def requeue_job() -> str:
    """Requeue this SLURM job (`scontrol requeue`; an array task by its array id); what became of it, to say."""
    array = os.environ.get("SLURM_ARRAY_JOB_ID")
    job = f"{array}_{os.environ['SLURM_ARRAY_TASK_ID']}" if array else os.environ["SLURM_JOB_ID"]
    try:  # the SIGTERM with which SLURM ends the requeued job may come before scontrol returns
        with signal_handlers({signal.SIGTERM: signal.SIG_IGN}):
            finished = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True)
        problem = (finished.stderr.strip() or f"status {finished.returncode}") if finished.returncode else ""
    except OSError as error:
        problem = str(error.strerror)
    return f"SLURM job {job} " + (f"not requeued (scontrol requeue: {problem})" if problem else "requeued")


class SignalStop(pl.Callback):
    """Stops `fit` at the first step boundary after SIGTERM or SIGINT; `stopped_by` says which signal."""

    def __init__(self) -> None:
        self.received = 0  # the first stop signal this process received (0: none)
        self.stopped_by = 0  # the signal every process agreed to stop for, before max_steps (0: none)
        self.step_seen = -1

    @contextmanager
    def listening(self) -> Iterator[None]:
        """Around trainer.fit: stop signals are noted (and acted on at the next step boundary)."""
        self.received = self.stopped_by = 0
        with signal_handlers(dict.fromkeys(stop_signals(), self.note)):
            try:
                yield
            except SIGTERMException:  # Lightning's, had SIGTERM come before on_train_start replaced its handler
                raise Stopped(signal.SIGTERM, "before the first step") from None

    def note(self, signum: int, frame: Any) -> None:
        """The signal handler: note the first signal; a second one stops at once."""
        if self.received:
            raise Stopped(signum, "a second time: stopped at once, without a new checkpoint")
        self.received = signum

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Lightning set its own SIGTERM handler after on_fit_start; within `listening`, this one replaces it.
        if signal.getsignal(signal.SIGINT) == self.note:
            signal.signal(signal.SIGTERM, self.note)
        self.step_seen = trainer.global_step

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if trainer.global_step == self.step_seen:
            return  # within an optimizer step (micro-batches accumulating)
        self.step_seen = trainer.global_step
        noted = torch.tensor(float(self.received), device=trainer.strategy.root_device)
        agreed = int(trainer.strategy.reduce(noted, reduce_op="max").item())  # every rank, the same answer
        if agreed and trainer.global_step < trainer.max_steps:
            self.stopped_by = agreed
            trainer.should_stop = True


def signal_stop(trainer: pl.Trainer) -> SignalStop:
    """The SignalStop callback of a Trainer made by glm.training.trainer.build_trainer."""
    return next(callback for callback in trainer.callbacks if isinstance(callback, SignalStop))
