"""Pretraining: config -> token store -> Lightning Trainer -> exported model directory.

The run's data (genomes, token stores, genome tokens, window, weights) comes from
glm.training.run_data; this module runs the steps in order and owns the fit and the export.

The run directory holds everything about one run:

    runs/NAME/
      config.yaml           the resolved configuration (a resume reads it back)
      curves.png            train/val bits per base and learning rate against bases seen (`glm plot`)
      checkpoints/          last.ckpt (resume from here), last.previous.ckpt (the one before it)
                            and best.ckpt (lowest val bits/base); see glm.training.checkpoints
      logs/version_N/       metrics.csv (and TensorBoard events when tensorboard is installed)
      model/                the exported model: glm.load("runs/NAME/model")

Several processes (DDP, FSDP; started by Lightning, torchrun or SLURM) all run `pretrain`: each
prepares or opens the token store, trains on its own windows, and rank 0 alone writes checkpoints
and the exported model. Checkpoint files are written atomically, so a run killed at any moment
resumes from its last complete checkpoint. docs/SCALING.md has the recipes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from glm.config import Config, load_config
from glm.errors import InputError, Stopped
from glm.model.checkpoint import export_model
from glm.model.tokenizers import build_tokenizer
from glm.model.transformer import Transformer
from glm.plots import CURVES_PNG
from glm.training.checkpoints import LAST
from glm.training.lit import GenomeDataModule, LitGLM
from glm.training.resume import checked_for_resume, resume_command, resumed_config, starting_checkpoint
from glm.training.run_data import RunData, prepare_data, read_inputs
from glm.training.signals import REQUEUE, requeue_job, signal_stop
from glm.training.trainer import build_trainer, hardware_preset, lightning_notices_silenced, on_rank_zero


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
    val_bits: float  # bits per unit (base, char or byte) on the validation windows of the trained genomes
    train_bits: float  # the same on the last training batch
    unit: str
    curves: Path | None  # run_dir/curves.png; None when no training step was logged (fewer than --log-every)
    val_bits_per_genome: dict[str, float] = field(default_factory=dict)  # when there are several
    held_out: list[str] = field(default_factory=list)  # genomes kept out of training

    def summary(self) -> str:
        return "\n".join(
            [
                f"parameters        {self.parameters:,}",
                f"steps             {self.steps:,}",
                f"tokens seen       {self.tokens_seen:,} ({self.bases_seen:,} {self.unit}s)",
                f"time              {self.seconds:.0f} s",
                f"train bits/{self.unit:<6}{self.train_bits:.4f}",
                f"val bits/{self.unit:<8}{self.val_bits:.4f}",
                *(
                    f"  {name:<16}{bits:.4f}" + ("   (held out of training)" if name in self.held_out else "")
                    for name, bits in self.val_bits_per_genome.items()
                ),
                f"model             {self.model_dir}   (glm.load({str(self.model_dir)!r}))",
            ]
            + ([f"curves            {self.curves}"] if self.curves else [])
        )


def resolve_config(
    config_name: str | None, overrides: dict[str, Any], run_dir: Path, resume: bool, say: Callable[[str], Any] = print
) -> Config:
    """The run's config: the saved one when resuming (glm.training.resume: what options may change), else a
    preset (chosen by hardware if none given) with the options given."""
    say = on_rank_zero(say)
    saved = run_dir / "config.yaml"
    if resume:
        if not saved.exists():
            raise InputError("--resume: no earlier run here (config.yaml missing)", run_dir)
        say(f"resuming the run in {run_dir}")
        return resumed_config(load_config(saved), config_name, overrides, run_dir, say)
    if config_name is None:
        preset, hardware = hardware_preset()
        say(f"hardware: {hardware} -> preset {preset!r} (choose another with --config)")
        base = load_config(preset)
    else:
        base = load_config(config_name)
    return base.with_overrides(overrides)


@dataclass
class Fitted:
    """What training left: the trained model and its numbers."""

    model: Transformer  # a plain Transformer on global rank 0; the LightningModule's on the others
    is_global_zero: bool
    seconds: float
    steps: int
    tokens_seen: int
    train_bits: float
    val_bits: float
    val_bits_per_genome: dict[str, float]  # when there are several genomes
    stopped_by: int = 0  # the signal (SIGTERM, SIGINT, SLURM's requeue) that stopped the run before max_steps; 0: none


@lightning_notices_silenced()
def pretrain(
    inputs: str | Path | Sequence[str | Path],
    config: Config,
    run_dir: str | Path,
    resume: bool = False,
    progress: bool = True,
    say: Callable[[str], Any] = print,
    callbacks: list[pl.Callback] | None = None,
    corpus: str | Path | None = None,
) -> PretrainResult:
    """Pretrain a causal language model on FASTA files (or a text file) and export it to `run_dir/model`.

    `inputs`: one file, or several files and folders of FASTA files, to which a manifest
    (`corpus`, see glm.io.corpus) may add more: one model on all of those genomes, windows drawn
    across them by data.genome_temperature (or the manifest's weights), validated per genome;
    data.holdout_genomes are kept out of training and only validated; with data.genome_tokens each
    genome (or manifest group) has its own token first in its windows, saved with the model
    (glm.model.genome_tags). `say` receives the progress
    notes (print by default); `callbacks` are extra Lightning callbacks added to the Trainer's own.
    """
    say = on_rank_zero(say)
    run_dir = Path(run_dir)
    resume_from = starting_checkpoint(run_dir, resume, say)
    config = checked_for_resume(config, run_dir) if resume else config  # the shapes, data and steps of the run
    entries, held_out, formats = read_inputs(inputs, corpus, config)
    tokenizer = build_tokenizer(config.data, entries[0].path)
    # Built before anything is written: it checks the strategy, devices and global batch.
    trainer = build_trainer(config, run_dir, progress, callbacks or [], unit=tokenizer.unit)
    data = prepare_data(entries, held_out, formats, tokenizer, config, progress, say)
    config = _save_config(config, data, run_dir)
    lit, datamodule = _seeded_modules(config, data)
    _describe_run(data, lit, trainer, config, say)
    fitted = _fit(trainer, lit, datamodule, resume_from, data, run_dir)
    if fitted.stopped_by:  # the checkpoint is saved: requeue (SLURM's signal), then stop
        requeued = f"; {requeue_job()}" if fitted.stopped_by == REQUEUE and fitted.is_global_zero else ""
        resume_with = resume_command(inputs, corpus, run_dir)
        raise Stopped(fitted.stopped_by, f"at step {fitted.steps}{requeued}; resume with: {resume_with}")
    model_dir = _export(fitted, data, config, run_dir)
    return _result(fitted, data, lit.model.num_parameters(), run_dir, model_dir)


def _save_config(config: Config, data: RunData, run_dir: Path) -> Config:
    """The run's config with the vocabulary size of its data, saved to run_dir/config.yaml (read on resume)."""
    vocab_size = data.tokenizer.vocab_size + (len(data.tags.names) if data.tags else 0)
    config = config.with_overrides({"model.vocab_size": vocab_size})  # the caller's config stays as given
    run_dir.mkdir(parents=True, exist_ok=True)
    config.save(run_dir / "config.yaml")
    return config


def _seeded_modules(config: Config, data: RunData) -> tuple[LitGLM, GenomeDataModule]:
    """The LightningModule (its model initialised from train.seed) and the DataModule of the run."""
    pl.seed_everything(config.train.seed, verbose=False)
    if torch.cuda.is_available():
        torch.set_float32_matmul_precision("high")  # TF32 matmuls for float32 runs on Ampere and later GPUs
    tokenizer = data.tokenizer
    lit = LitGLM(config.to_dict(), tokenizer.bases_per_token, tokenizer.unit, data.names, data.lost)
    tags = [data.tags.id_of(name) for name in data.names] if data.tags else None
    datamodule = GenomeDataModule(data.stores, tokenizer, config, data.window, data.weights, data.held_out, tags)
    return lit, datamodule


def _describe_run(data: RunData, lit: LitGLM, trainer: pl.Trainer, config: Config, say: Callable[[str], Any]) -> None:
    """Say what is about to train: model size, data, window, precision, batch; genome shares and tokens."""
    accumulate = trainer.accumulate_grad_batches
    train_bases = sum(store.meta["train_bases"] for store in data.trained)
    val_bases = sum(store.meta["val_bases"] for store in data.trained)
    genomes = f"{len(data.trained)} genomes, " if len(data.entries) > 1 else ""
    say(
        f"model: {lit.model.num_parameters():,} parameters; data: {genomes}{train_bases:,} train bases, "
        f"{val_bases:,} val bases ({data.stores[0].meta['split_used']} split); window {data.window - 1} tokens; "
        f"precision {trainer.precision}; {trainer.world_size} process(es) x {config.train.batch_size} windows "
        f"x {accumulate} accumulated = {trainer.world_size * config.train.batch_size * accumulate} windows per step"
    )
    lost = data.lost
    if len(data.entries) > 1:
        trained_names = [name for name in data.names if name not in lost]
        shares = ", ".join(f"{name} {weight:.1%}" for name, weight in zip(trained_names, data.weights))
        say(f"windows drawn: {shares}" + (f"; held out of training: {', '.join(lost)}" if lost else ""))
    if data.tags:
        say(f"genome tokens (first in every window; --genome-name at inference): {', '.join(data.tags.names)}")


def _fit(
    trainer: pl.Trainer,
    lit: LitGLM,
    datamodule: GenomeDataModule,
    resume_from: Path | None,
    data: RunData,
    run_dir: Path,
) -> Fitted:
    """Train (the last step validates, inside fit: ValidateAtTheEnd) and save checkpoints/last.ckpt."""
    started = time.perf_counter()
    stop = signal_stop(trainer)
    with stop.listening():  # SIGTERM, SIGINT: the run stops at a step boundary (validated, checkpointed)
        trainer.fit(lit, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
    seconds = time.perf_counter() - started
    metric = lit.metric
    train_bits = float(trainer.callback_metrics.get(f"train/{metric}", math.nan))
    val = {name: float(value) for name, value in trainer.callback_metrics.items() if name.startswith("val/")}
    if f"val/{metric}" not in val:  # resumed after its last step, the run trained (and validated) nothing
        val = trainer.validate(lit, datamodule=datamodule, verbose=False, weights_only=True)[0]
    # A full checkpoint (optimizer too), for --resume.
    trainer.save_checkpoint(run_dir / "checkpoints" / LAST, weights_only=False)
    model = full_model(trainer, lit.config)  # every rank takes part (FSDP gathers the shards); rank 0 gets it
    steps = trainer.global_step
    windows = lit.config.train.batch_size * trainer.world_size * trainer.accumulate_grad_batches
    return Fitted(
        model=model if model is not None else lit.model.eval(),
        is_global_zero=trainer.is_global_zero,
        seconds=seconds,
        steps=steps,
        tokens_seen=steps * windows * (data.window - 1),
        train_bits=train_bits,
        val_bits=val[f"val/{metric}"],
        val_bits_per_genome={name: val[f"val/{name}/{metric}"] for name in data.names} if len(data.names) > 1 else {},
        stopped_by=stop.stopped_by,
    )


def _export(fitted: Fitted, data: RunData, config: Config, run_dir: Path) -> Path:
    """Write the exported model directory (global rank 0 only: one writer under DDP and FSDP); its path."""
    metric = f"bits_per_{data.tokenizer.unit}"
    entries = data.entries
    info = {
        "trained_on": str(entries[0].path.resolve()) if len(entries) == 1 else [str(e.path.resolve()) for e in entries],
        "steps": fitted.steps,
        "tokens_seen": fitted.tokens_seen,
        f"val_{metric}": fitted.val_bits,
        "data": config.to_dict()["data"],
    }
    if fitted.val_bits_per_genome:
        info[f"val_{metric}_per_genome"] = fitted.val_bits_per_genome
        info["held_out_genomes"] = data.lost
    model_dir = run_dir / "model"
    if fitted.is_global_zero:
        export_model(model_dir, fitted.model, data.tokenizer, info, data.tags)
    return model_dir


def _result(fitted: Fitted, data: RunData, parameters: int, run_dir: Path, model_dir: Path) -> PretrainResult:
    """The run's numbers and paths for the caller (and its summary)."""
    return PretrainResult(
        model=fitted.model,
        is_global_zero=fitted.is_global_zero,
        model_dir=model_dir,
        run_dir=run_dir,
        parameters=parameters,
        steps=fitted.steps,
        tokens_seen=fitted.tokens_seen,
        bases_seen=int(fitted.tokens_seen * data.tokenizer.bases_per_token),
        seconds=fitted.seconds,
        val_bits=fitted.val_bits,
        train_bits=fitted.train_bits,
        unit=data.tokenizer.unit,
        val_bits_per_genome=fitted.val_bits_per_genome,
        held_out=data.lost,
        curves=run_dir / CURVES_PNG if (run_dir / CURVES_PNG).exists() else None,
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
