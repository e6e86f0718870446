"""Pretraining: config -> token store -> Lightning Trainer -> exported model directory.

The run directory holds everything about one run:

    runs/NAME/
      config.yaml           the resolved configuration (a resume reads it back)
      checkpoints/          last.ckpt (resume from here), last.previous.ckpt (the one before it)
                            and best.ckpt (lowest val bits/base)
      logs/version_N/       metrics.csv (and TensorBoard events when tensorboard is installed)
      model/                the exported model: glm.load("runs/NAME/model")

Several processes (DDP, FSDP; started by Lightning, torchrun or SLURM) all run `pretrain`: each
prepares or opens the token store, trains on its own windows, and rank 0 alone writes checkpoints
and the exported model. Checkpoint files are written atomically, so a run killed at any moment
resumes from its last complete checkpoint. docs/SCALING.md has the recipes.
"""

from __future__ import annotations

import importlib.util
import math
import os
import pickle
import tempfile
import time
import warnings
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint, TQDMProgressBar
from pytorch_lightning.loggers import CSVLogger, Logger, TensorBoardLogger
from pytorch_lightning.plugins.environments import SLURMEnvironment, TorchElasticEnvironment
from pytorch_lightning.plugins.io import TorchCheckpointIO
from pytorch_lightning.strategies import FSDPStrategy, Strategy
from pytorch_lightning.utilities.rank_zero import rank_zero_only, rank_zero_warn

from glm.checkpoint import export_model
from glm.config import Config, TrainConfig, load_config, parse_duration
from glm.data import TokenStore, prepare, read_text
from glm.errors import InputError
from glm.genome import first_line, is_fasta
from glm.lit import GenomeDataModule, LitGLM
from glm.model import Block, Transformer
from glm.tokenizers import ByteTokenizer, CharTokenizer, KmerTokenizer, Tokenizer

MIN_WINDOW = 8  # tokens; a genome shorter than this cannot train anything
LAST = "last.ckpt"  # the checkpoint --resume continues from

# Lightning notices that do not apply to how glm uses it.
for _message in (
    ".*LeafSpec.*is deprecated.*",
    ".*IterableDataset.*has `__len__` defined.*",
    ".*Checkpoint directory .* exists and is not empty.*",
    ".*recommended to use `self.log\\('val/.*sync_dist=True.*",  # glm reduces validation sums itself
):
    warnings.filterwarnings("ignore", message=_message)


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


def input_format(path: str | Path, config: Config) -> str:
    """'fasta' or 'text': data.format, or (auto) from the file's content, never from its name."""
    found = config.data.format
    if found == "auto":
        found = "fasta" if is_fasta(path) else "text"
    tokenizer = config.data.tokenizer
    if found == "text" and tokenizer == "kmer":
        raise InputError(
            "expected a FASTA header line starting with '>' (to train on text instead, use --tokenizer char "
            "or byte, or --config text)",
            path,
            first_line(path)[0],
        )
    if found == "fasta" and tokenizer != "kmer" and config.data.format == "auto":
        raise InputError(f"this is FASTA; --tokenizer {tokenizer} trains on text (add --format text to force)", path)
    return found


def make_tokenizer(config: Config, path: str | Path | None = None) -> Tokenizer:
    """The run's tokenizer; a char vocabulary is built from the whole input text (nanoGPT's way)."""
    if config.data.tokenizer == "kmer":
        return KmerTokenizer(config.data.k, config.data.stride)
    if config.data.tokenizer == "byte":
        return ByteTokenizer()
    assert path is not None, "a char tokenizer is built from its text"
    return CharTokenizer.from_text(read_text(path))


def _check_writable(directory: Path) -> None:
    """Fail early (before preparing data) if the run directory cannot be created or written."""
    existing = directory.resolve()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"output directory: {existing} is a file", directory)
    try:
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as error:
        raise InputError(f"output directory is not writable ({error.strerror} in {existing})", directory) from None


class StepProgressBar(TQDMProgressBar):
    """Progress in optimizer steps out of max_steps (the training stream itself is endless)."""

    @property
    def total_train_batches(self) -> int:
        return self.trainer.max_steps * self.trainer.accumulate_grad_batches

    def on_train_epoch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        super().on_train_epoch_start(trainer, *args)
        self.train_progress_bar.set_description("train")


def on_rank_zero(say: Callable[[str], Any]) -> Callable[[str], Any]:
    """`say` on the first process of a distributed run, silence on the others."""
    return say if rank_zero_only.rank == 0 else (lambda *_: None)


@dataclass
class PretrainResult:
    model: Transformer  # the trained model, in memory
    is_global_zero: bool  # False on the other processes of a distributed run
    model_dir: Path
    run_dir: Path
    parameters: int
    steps: int
    tokens_seen: int
    bases_seen: int
    seconds: float
    val_bits: float  # bits per unit (base, char or byte) on the validation windows
    train_bits: float  # the same on the last training batch
    unit: str

    def summary(self) -> str:
        return "\n".join(
            [
                f"parameters        {self.parameters:,}",
                f"steps             {self.steps:,}",
                f"tokens seen       {self.tokens_seen:,} ({self.bases_seen:,} {self.unit}s)",
                f"time              {self.seconds:.0f} s",
                f"train bits/{self.unit:<6}{self.train_bits:.4f}",
                f"val bits/{self.unit:<8}{self.val_bits:.4f}",
                f"model             {self.model_dir}   (glm.load({str(self.model_dir)!r}))",
            ]
        )


def resolve_config(
    config_name: str | None, overrides: dict[str, Any], run_dir: Path, resume: bool, say: Callable[[str], Any] = print
) -> Config:
    """The run's config: the saved one when resuming, else a preset (chosen by hardware if none given)."""
    say = on_rank_zero(say)
    saved = run_dir / "config.yaml"
    if resume:
        if not saved.exists():
            raise InputError("--resume: no earlier run here (config.yaml missing)", run_dir)
        base = load_config(saved)
        say(f"resuming the run in {run_dir}")
    elif config_name is None:
        preset, hardware = hardware_preset()
        say(f"hardware: {hardware} -> preset {preset!r} (choose another with --config)")
        base = load_config(preset)
    else:
        base = load_config(config_name)
    return base.with_overrides(overrides)


def pretrain(
    fasta: str | Path,
    config: Config,
    run_dir: str | Path,
    resume: bool = False,
    progress: bool = True,
    say: Callable[[str], Any] = print,
    callbacks: list[pl.Callback] | None = None,
) -> PretrainResult:
    """Pretrain a causal language model on `fasta` (or a text file) and export it to `run_dir/model`.

    `say` receives the progress notes (print by default); `callbacks` are extra Lightning
    callbacks added to the Trainer's own.
    """
    say = on_rank_zero(say)
    run_dir = Path(run_dir)
    checkpoints = run_dir / "checkpoints"
    resume_from = resume_checkpoint(checkpoints) if resume else None
    if not resume and ((checkpoints / LAST).exists() or previous_checkpoint(checkpoints / LAST).exists()):
        raise InputError("a run already exists here; pass --resume to continue it or --out to start another", run_dir)
    _check_writable(run_dir)

    fmt = input_format(fasta, config)
    tokenizer = make_tokenizer(config, fasta)
    # Built before anything is written: it checks the strategy, devices and global batch.
    trainer = build_trainer(config, run_dir, progress, callbacks or [], unit=tokenizer.unit)
    store = prepare(  # validates the input before anything is written to the run directory
        fasta,
        tokenizer,
        config.data.resolved_cache_dir(),
        split=config.data.split,
        val_fraction=config.data.val_fraction,
        progress=progress,
        input_format=fmt,
    )
    window = _window_length(store, config, fasta, say)
    config = config.with_overrides({"model.vocab_size": tokenizer.vocab_size})  # the caller's config stays as given
    run_dir.mkdir(parents=True, exist_ok=True)
    config.save(run_dir / "config.yaml")

    pl.seed_everything(config.train.seed, verbose=False)
    if torch.cuda.is_available():
        torch.set_float32_matmul_precision("high")  # TF32 matmuls for float32 runs on Ampere and later GPUs
    lit = LitGLM(config.to_dict(), tokenizer.bases_per_token, tokenizer.unit)
    datamodule = GenomeDataModule(store, tokenizer, config, window)
    accumulate = trainer.accumulate_grad_batches
    say(
        f"model: {lit.model.num_parameters():,} parameters; data: {store.meta['train_bases']:,} train bases, "
        f"{store.meta['val_bases']:,} val bases ({store.meta['split_used']} split); window {window - 1} tokens; "
        f"precision {trainer.precision}; {trainer.world_size} process(es) x {config.train.batch_size} windows "
        f"x {accumulate} accumulated = {trainer.world_size * config.train.batch_size * accumulate} windows per step"
    )

    started = time.perf_counter()
    trainer.fit(lit, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
    seconds = time.perf_counter() - started
    if trainer.interrupted:
        raise KeyboardInterrupt
    metric = f"bits_per_{tokenizer.unit}"
    train_bits = float(trainer.callback_metrics.get(f"train/{metric}", math.nan))
    val = trainer.validate(lit, datamodule=datamodule, verbose=False, weights_only=True)[0]
    trainer.save_checkpoint(checkpoints / LAST, weights_only=False)  # a full checkpoint (optimizer too), for --resume
    model = full_model(trainer, config)  # every rank takes part (FSDP gathers the shards); rank 0 gets it

    steps = trainer.global_step
    tokens = steps * config.train.batch_size * (window - 1) * trainer.world_size * accumulate
    info = {
        "trained_on": str(Path(fasta).resolve()),
        "steps": steps,
        "tokens_seen": tokens,
        f"val_{metric}": val[f"val/{metric}"],
        "data": config.to_dict()["data"],
    }
    model_dir = run_dir / "model"
    if model is not None:  # one writer under DDP and FSDP
        export_model(model_dir, model, tokenizer, info)
    return PretrainResult(
        model=model if model is not None else lit.model.eval(),
        is_global_zero=trainer.is_global_zero,
        model_dir=model_dir,
        run_dir=run_dir,
        parameters=lit.model.num_parameters(),
        steps=steps,
        tokens_seen=tokens,
        bases_seen=int(tokens * tokenizer.bases_per_token),
        seconds=seconds,
        val_bits=val[f"val/{metric}"],
        train_bits=train_bits,
        unit=tokenizer.unit,
    )


def full_model(trainer: pl.Trainer, config: Config) -> Transformer | None:
    """The trained weights in a plain Transformer on global rank 0 (None on the other ranks).

    Every rank must call this: under FSDP the full state dict is gathered from all the shards.
    """
    state = trainer.strategy.lightning_module_state_dict()
    if not trainer.is_global_zero:
        return None
    model = Transformer(config.model)
    model.load_state_dict({name.removeprefix("model."): tensor for name, tensor in state.items()}, strict=True)
    return model.eval()


def previous_checkpoint(path: Path) -> Path:
    """Where AtomicCheckpointIO keeps the checkpoint that `path` replaced: last.ckpt -> last.previous.ckpt."""
    return path.with_name(f"{path.stem}.previous{path.suffix}")


def resume_checkpoint(directory: Path) -> Path:
    """last.ckpt, or (with a warning) the one before it when last.ckpt is missing or unreadable.

    Reading is cheap: tensors are memory-mapped, not loaded. A truncated file fails here because
    a checkpoint's zip index sits at its end.
    """
    problems = []
    for path in (directory / LAST, previous_checkpoint(directory / LAST)):
        if not path.exists():
            problems.append(f"{path.name} is missing")
            continue
        try:
            torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as error:
            problems.append(f"{path.name} is unreadable ({str(error).splitlines()[0]})")
            continue
        if problems:
            rank_zero_warn(f"{directory}: {'; '.join(problems)}; resuming from {path.name}")
        for leftover in directory.glob(".*.partial-*"):  # written by a process killed mid-save
            leftover.unlink(missing_ok=True)
        return path
    if not directory.parent.joinpath("config.yaml").exists():
        raise InputError("--resume: no checkpoints/last.ckpt to resume from", directory.parent)
    raise InputError(f"--resume: no usable checkpoint ({'; '.join(problems)})", directory)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint files that a kill at any moment leaves readable.

    Each checkpoint is written to a temporary file beside its destination, flushed to disk and
    renamed over it, so the destination always holds a complete checkpoint. (Lightning's own
    save stages the file in the system temporary directory; where that is another filesystem
    than the run, such as a node-local /tmp on a cluster, the final move is a copy that a kill
    can cut short.) For the file names in `keep_previous` the replaced checkpoint is kept as
    NAME.previous.ckpt, for `resume_checkpoint` to fall back on.
    """

    def __init__(self, keep_previous: Collection[str] = ()):
        super().__init__()
        self.keep_previous = set(keep_previous)

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
        try:
            with open(partial, "wb") as handle:
                torch.save(checkpoint, handle)
                handle.flush()
                os.fsync(handle.fileno())
            if path.name in self.keep_previous and path.exists():
                os.replace(path, previous_checkpoint(path))
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)


def _window_length(store: TokenStore, config: Config, fasta: str | Path, say: Callable[[str], Any]) -> int:
    """Tokens per training window (context + 1), shrunk with a note for genomes shorter than that.

    Validation windows are cut to the held-out data by ValidationWindows itself.
    """
    window = config.model.context + 1
    available = store.n_tokens("train")
    if min(available, store.n_tokens("val")) < MIN_WINDOW:
        raise InputError(
            f"too short to train: {store.meta['train_bases']} train and {store.meta['val_bases']} val bases "
            f"give fewer than {MIN_WINDOW} tokens on one side of the split",
            fasta,
        )
    if available < window:
        say(f"note: genome is shorter than one window; training on windows of {available - 1} tokens")
        window = available
    return window


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
    callbacks: list[pl.Callback] = [best, LearningRateMonitor(logging_interval="step"), *extra_callbacks]
    if progress:
        callbacks.append(StepProgressBar())
    devices: Any = int(train.devices) if str(train.devices).isdigit() else train.devices
    world_size = processes(train)
    check_launcher(world_size)
    accumulate = accumulation(train, config.model.context, world_size)
    trainer = pl.Trainer(
        accelerator=train.accelerator,
        devices=devices,
        num_nodes=train.num_nodes,
        strategy=build_strategy(train),
        precision=resolve_precision(train.precision, train.accelerator),
        plugins=[AtomicCheckpointIO(keep_previous=[LAST])],
        max_steps=train.max_steps,
        max_epochs=-1,
        max_time=parse_duration(train.max_time) if train.max_time else None,
        val_check_interval=train.val_every * accumulate,
        check_val_every_n_epoch=None,
        num_sanity_val_steps=0,
        gradient_clip_val=train.grad_clip,
        accumulate_grad_batches=accumulate,
        callbacks=callbacks,
        logger=_loggers(run_dir),
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


def check_launcher(world_size: int) -> None:
    """A launcher outside glm (torchrun, SLURM's srun) must start --devices x --num-nodes processes.

    Lightning would otherwise run each of them as a separate one-device run, all writing to the
    same run directory.
    """
    if TorchElasticEnvironment.detect():
        launcher, started = "torchrun", int(os.environ["WORLD_SIZE"])
    elif SLURMEnvironment.detect():
        launcher, started = "SLURM", int(os.environ["SLURM_NTASKS"])
    else:
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


def _loggers(run_dir: Path) -> list[Logger]:
    """CSV always; TensorBoard too when the optional tensorboard package is installed."""
    loggers: list[Logger] = [CSVLogger(run_dir, name="logs")]
    if importlib.util.find_spec("tensorboard") is not None:
        loggers.append(TensorBoardLogger(run_dir, name="logs", version=loggers[0].version))
    return loggers
