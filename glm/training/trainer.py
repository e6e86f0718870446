"""The Lightning Trainer glm runs: hardware, precision, strategy, launcher checks, callbacks, loggers.

Pretraining and fine-tuning both build their Trainer here, so they take the same options
(devices, nodes, precision, strategy, time budget) and keep the same run-directory layout.
Progress is a tqdm bar on a terminal (a widget in Jupyter, through tqdm.auto) and one plain line
every `log_every` steps when standard error is a file or a pipe (SLURM, nohup, CI), as for every
command (glm.io.progress); RUN/curves.png is redrawn from the run's metrics after every validation
and at the end. Every run validates at its last step, once (ValidateAtTheEnd). SIGTERM and SIGINT
stop a run at a step boundary (glm.training.signals.SignalStop).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint, ProgressBar, TQDMProgressBar
from pytorch_lightning.loggers import CSVLogger, Logger, TensorBoardLogger
from pytorch_lightning.plugins.environments import (
    LSFEnvironment,
    SLURMEnvironment,
    TorchElasticEnvironment,
)
from pytorch_lightning.strategies import FSDPStrategy, Strategy
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from glm.config import Config, TrainConfig, parse_duration
from glm.errors import InputError
from glm.io.progress import RecentRate, stderr_is_interactive
from glm.model.transformer import Block
from glm.plots import CURVES_PNG, plot_training_curves, read_training_curves
from glm.training.checkpoints import LAST, AtomicCheckpointIO
from glm.training.signals import SignalStop, slurm_environment

# Lightning notices that do not apply to how glm uses it (silenced during glm's runs only).
LIGHTNING_NOTICES = (
    ".*LeafSpec.*is deprecated.*",
    ".*IterableDataset.*has `__len__` defined.*",
    ".*Checkpoint directory .* exists and is not empty.*",
    ".*recommended to use `self.log\\('val/.*sync_dist=True.*",  # glm reduces validation sums itself
    ".*does not have many workers.*",  # windows are drawn in the main process by design
)
# Lightning's own loggers: at INFO they print start-up notes ("GPU available: ...", "TPU available: ...",
# the litlogger tip, "`Trainer.fit` stopped: ..."); its warnings and errors still show.
LIGHTNING_LOGGERS = ("pytorch_lightning", "lightning_fabric")


@contextmanager
def lightning_notices_silenced() -> Iterator[None]:
    """Within the block, hide LIGHTNING_NOTICES and Lightning's INFO notes; the process's own warning
    filters and logger levels are left as they were."""
    loggers = [logging.getLogger(name) for name in LIGHTNING_LOGGERS]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        for message in LIGHTNING_NOTICES:
            warnings.filterwarnings("ignore", message=message)
        for logger in loggers:
            logger.setLevel(logging.WARNING)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels):
                logger.setLevel(level)


def hardware_preset() -> tuple[str, str]:
    """(preset name, description of the hardware found) for runs started without --config."""
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        return "small", f"{torch.cuda.device_count()} x {name}"
    bf16 = ", bf16 matrix instructions" if cpu_has_native_bf16() else ""
    return "tiny", f"CPU, {os.cpu_count()} cores{bf16}, no GPU"


def resolve_precision(precision: str, accelerator: str) -> str:
    """'auto' -> bf16-mixed on GPUs and on CPUs with native bf16 matrix units, else 32-true."""
    if precision != "auto":
        return precision
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "32-true"
    return "bf16-mixed" if cpu_has_native_bf16() else "32-true"


def cpu_has_native_bf16() -> bool:
    """True on x86 CPUs with AVX512-BF16 or AMX-BF16 instructions (Linux: read from /proc/cpuinfo).

    There bf16 matmuls run about 2-4x faster than float32; elsewhere bf16 is emulated and slower.
    """
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


class StepProgressBar(TQDMProgressBar):
    """Progress in optimizer steps out of max_steps (the training stream itself is endless)."""

    @property
    def total_train_batches(self) -> int:
        return self.trainer.max_steps * self.trainer.accumulate_grad_batches

    def on_train_epoch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        super().on_train_epoch_start(trainer, *args)
        self.train_progress_bar.set_description("train")


class StepLines(ProgressBar):
    """Progress as one plain line every `every` optimizer steps, for logs kept in a file:

    step 120/2000  train bits/base 1.9731  3,412 bases/s  ETA 9m11s
    step 200/2000  val bits/base 1.9654

    The rate and the ETA are the recent pace (RecentRate over the last lines), timed from the end
    of the first step, so compiling and start-up do not inflate the ETA of the whole run.
    """

    def __init__(self, every: int):
        super().__init__()
        self.every, self.enabled = every, True
        self.first_step, self.last_step = 0, -1
        self.rate = RecentRate()

    def disable(self) -> None:
        self.enabled = False

    def enable(self) -> None:
        self.enabled = True

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.first_step, self.rate = trainer.global_step, RecentRate()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        step = trainer.global_step
        if step == self.first_step:
            return  # within the first step (micro-batches accumulating): nothing to report
        if not self.rate.points:  # the end of the first step: the clock starts after start-up and compiling
            self.rate.add(step, time.monotonic())
        if not self.enabled or step == self.last_step or (step % self.every and step != trainer.max_steps):
            return
        self.last_step = step
        self.rate.add(step, time.monotonic())
        self.print(step_line(step, trainer.max_steps, self.rate, trainer.callback_metrics, pl_module))

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.enabled and not trainer.sanity_checking:
            unit = getattr(pl_module, "unit", "base")
            metric = _metric(trainer.callback_metrics, f"val/bits_per_{unit}", f"val bits/{unit}")
            self.print(f"step {trainer.global_step}/{trainer.max_steps}  {metric}")

    def print(self, *args: Any, **kwargs: Any) -> None:
        print(*args, file=sys.stderr, flush=True, **kwargs)


def step_line(step: int, max_steps: int, rate: RecentRate, metrics: dict[str, Any], pl_module: Any) -> str:
    """StepLines' line at `step`: train bits/unit, units per second and ETA at the recent rate of steps."""
    unit = getattr(pl_module, "unit", "base")
    parts = [f"step {step}/{max_steps}", _metric(metrics, f"train/bits_per_{unit}", f"train bits/{unit}")]
    per_step = getattr(pl_module, "units_per_step", None)
    steps_per_second = rate.per_second()
    if per_step and steps_per_second:
        parts.append(f"{steps_per_second * per_step:,.0f} {unit}s/s")
    seconds_left = rate.seconds_left(max_steps - step)
    if seconds_left is not None:
        parts.append(f"ETA {_duration(seconds_left)}")
    return "  ".join(part for part in parts if part)


def _metric(metrics: dict[str, Any], key: str, label: str) -> str:
    return f"{label} {float(metrics[key]):.4f}" if key in metrics else ""


def _duration(seconds: float) -> str:
    """3725 -> '1h02m', 551 -> '9m11s', 42 -> '42s'."""
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def progress_bar(every: int) -> ProgressBar:
    """A tqdm bar on a terminal or in Jupyter; StepLines when standard error is a file or a pipe."""
    return StepProgressBar() if stderr_is_interactive() else StepLines(every)


class ValidateAtTheEnd(pl.Callback):
    """Stops the run at max_steps through `trainer.should_stop`, so Lightning validates the last step.

    Lightning validates every val_every steps and at an early stop (--max-time, early stopping),
    but not at max_steps unless it is a multiple of val_every. Through this, every run, even one
    shorter than val_every, ends with one validation inside `fit`: the best checkpoint, the curves
    and metrics.csv all have it, and nothing validates again after.
    """

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if trainer.global_step >= trainer.max_steps:
            trainer.should_stop = True


class TrainingCurves(pl.Callback):
    """Redraws RUN/curves.png from the run's metrics.csv after every validation and at the end of training."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.draw(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.draw(trainer)

    def draw(self, trainer: pl.Trainer) -> None:
        if not trainer.is_global_zero:
            return
        for logger in trainer.loggers:
            logger.save()  # metrics.csv up to date before it is read
        try:
            curves = read_training_curves(self.run_dir)
        except InputError:
            return  # no training step logged yet (the run is shorter than --log-every steps so far)
        plot_training_curves(curves, self.run_dir / CURVES_PNG, title=self.run_dir.name)


def on_rank_zero(say: Callable[[str], Any]) -> Callable[[str], Any]:
    """`say` on the first process of a distributed run, silence on the others."""
    return say if rank_zero_only.rank == 0 else (lambda *_: None)


def build_trainer(
    config: Config, run_dir: Path, progress: bool, extra_callbacks: list[pl.Callback], unit: str = "base"
) -> pl.Trainer:
    train = config.train
    best = ModelCheckpoint(
        dirpath=run_dir / "checkpoints",
        filename="best",
        monitor=f"val/bits_per_{unit}",
        mode="min",
        save_top_k=1,
        save_last=True,
        auto_insert_metric_name=False,
        enable_version_counter=False,
    )
    callbacks: list[pl.Callback] = [
        best,
        LearningRateMonitor(logging_interval="step"),
        ValidateAtTheEnd(),
        SignalStop(),
        TrainingCurves(run_dir),
        *extra_callbacks,
    ]
    if progress:
        callbacks.append(progress_bar(train.log_every))
    check_hardware(train)
    devices: Any = int(train.devices) if str(train.devices).isdigit() else train.devices
    world_size = processes(train)
    check_launcher(world_size, train.num_nodes)
    accumulate = accumulation(train, config.model.context, world_size)
    trainer = pl.Trainer(
        accelerator=train.accelerator,
        devices=devices,
        num_nodes=train.num_nodes,
        strategy=build_strategy(train),
        precision=resolve_precision(train.precision, train.accelerator),
        plugins=[AtomicCheckpointIO(keep_previous=[LAST]), *slurm_environment()],
        max_steps=train.max_steps,
        max_epochs=-1,
        max_time=parse_duration(train.max_time) if train.max_time else None,
        val_check_interval=train.val_every * accumulate,
        check_val_every_n_epoch=None,
        num_sanity_val_steps=0,
        gradient_clip_val=train.grad_clip,
        accumulate_grad_batches=accumulate,
        callbacks=callbacks,
        logger=_loggers(run_dir, train.log_every),
        log_every_n_steps=train.log_every,
        use_distributed_sampler=False,
        enable_progress_bar=progress,
        enable_model_summary=False,
        default_root_dir=run_dir,
    )
    assert trainer.world_size == world_size, f"Lightning runs {trainer.world_size} processes, glm expected {world_size}"
    return trainer


def build_strategy(train: TrainConfig) -> str | Strategy:
    """'auto' (Lightning picks DDP for several processes), 'ddp', or FSDP sharding each Transformer block."""
    if train.strategy != "fsdp":
        return train.strategy
    if train.accelerator == "cpu" or not torch.cuda.is_available():
        raise InputError("--strategy fsdp needs CUDA GPUs (Lightning's FSDP does not run on CPU); use ddp there")
    return FSDPStrategy(
        auto_wrap_policy={Block},  # one shard unit per block: gathered just before use, freed after
        activation_checkpointing_policy={Block} if train.activation_checkpointing else None,
        sharding_strategy="FULL_SHARD",
        state_dict_type="full",  # checkpoints and export hold whole tensors, gathered on rank 0
    )


def check_hardware(train: TrainConfig) -> None:
    """An InputError when the accelerator or device indices asked for are not on this machine."""
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    here = f"{gpus} CUDA GPU(s)" if gpus else "no GPU"
    if train.accelerator in ("gpu", "cuda") and not gpus:
        raise InputError(f"--accelerator {train.accelerator}: this machine has {here}; use cpu or auto")
    if train.accelerator == "mps" and not torch.backends.mps.is_available():
        raise InputError("--accelerator mps: Apple's Metal backend is not available on this machine")
    indices = [int(index) for index in str(train.devices).strip("[] ").split(",") if index.strip().isdigit()]
    if "," in str(train.devices) and gpus and max(indices) >= gpus:
        raise InputError(f"--devices {train.devices}: GPU index {max(indices)} does not exist (this machine: {here})")


def processes(train: TrainConfig) -> int:
    """Processes in the run: devices per node (a count, a list of indices, or auto) x nodes."""
    devices = str(train.devices).strip()
    if devices in ("auto", "-1"):
        gpus = train.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
        per_node = torch.cuda.device_count() if gpus else 1
    elif devices.isdigit():
        per_node = int(devices)
    else:
        per_node = len([index for index in devices.strip("[]").split(",") if index.strip()])
    return per_node * train.num_nodes


def check_launcher(world_size: int, num_nodes: int = 1) -> None:
    """A launcher outside glm (torchrun, SLURM's srun) must start --devices x --num-nodes processes.

    Lightning would otherwise run each of them as a separate one-device run, all writing to the
    same run directory. Several nodes need a launcher on every node (Lightning starts the processes
    of one node only): without one, the run would wait forever for the other nodes.
    """
    if TorchElasticEnvironment.detect():
        launcher, started = "torchrun", int(os.environ["WORLD_SIZE"])
    elif SLURMEnvironment.detect():
        launcher, started = "SLURM", int(os.environ["SLURM_NTASKS"])
    else:
        by_hand = "MASTER_ADDR" in os.environ and "NODE_RANK" in os.environ  # Lightning's variables, set on each node
        if num_nodes > 1 and not (LSFEnvironment.detect() or by_hand):
            raise InputError(
                f"--num-nodes {num_nodes}: no launcher started this run on the other nodes, so it would wait for them "
                "forever; start it on every node with torchrun or srun (docs/SCALING.md), or drop --num-nodes"
            )
        return
    if started != world_size:
        raise InputError(
            f"{launcher} started {started} processes, but --devices x --num-nodes is {world_size}: give --devices "
            "(processes per node) and --num-nodes to match"
        )


def accumulation(train: TrainConfig, context: int, world_size: int) -> int:
    """Micro-batches per optimizer step: train.accumulate, or derived from train.global_batch_tokens.

    accumulate = global_batch_tokens / (batch_size x context x processes), which must divide
    evenly, so a run makes the same optimizer steps on 1 GPU or 64.
    """
    if train.global_batch_tokens is None:
        return train.accumulate
    per_micro_batch = train.batch_size * context * world_size
    if train.global_batch_tokens % per_micro_batch:
        below = train.global_batch_tokens // per_micro_batch * per_micro_batch
        nearest = f"{below:,} or {below + per_micro_batch:,}" if below else f"{per_micro_batch:,}"
        raise InputError(
            f"--global-batch-tokens {train.global_batch_tokens:,} is not a multiple of batch size x context x "
            f"processes = {train.batch_size} x {context} x {world_size} = {per_micro_batch:,} tokens (try {nearest})"
        )
    return train.global_batch_tokens // per_micro_batch


def _loggers(run_dir: Path, flush_every: int) -> list[Logger]:
    """CSV always (flushed every `flush_every` steps, so `plot` sees a run that is still going); TensorBoard
    too when the optional tensorboard package is installed."""
    loggers: list[Logger] = [CSVLogger(run_dir, name="logs", flush_logs_every_n_steps=flush_every)]
    if importlib.util.find_spec("tensorboard") is not None:
        loggers.append(TensorBoardLogger(run_dir, name="logs", version=loggers[0].version))
    return loggers
