"""Training throughput: glm's Lightning trainer against a plain PyTorch loop of the same model.

    python bench/lightning_overhead.py data/ecoli_K12_MG1655.fa.gz --steps 150 --rounds 2
    python bench/lightning_overhead.py data/tinyshakespeare.txt --config text --steps 300 --rounds 2
    python bench/lightning_overhead.py data/tinyshakespeare.txt --config text --set train.optimizer=muon

Both sides use the same LitGLM loss, optimizer, schedule, gradient clipping, batches and
precision; the plain loop is `loss.backward(); clip; step; schedule` over the same TrainWindows
stream. Each side is timed over `--steps` optimizer steps after `--warmup` untimed ones, and the
two alternate for `--rounds` rounds so drifts in machine speed hit both. Validation is off on
both sides (it is not loop overhead). Reports tokens/s, bases/s and the Lightning/plain ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from glm.config import load_config
from glm.model.tokenizers import build_tokenizer
from glm.training.data import prepare
from glm.training.lit import GenomeDataModule, LitGLM
from glm.training.run_data import input_format
from glm.training.trainer import build_trainer, resolve_precision
from glm.training.windows import TrainWindows


class StepTimer(pl.Callback):
    def __init__(self, warmup: int):
        self.warmup, self.started, self.ended = warmup, None, None

    def on_train_batch_start(self, trainer: pl.Trainer, *args) -> None:
        if trainer.global_step == self.warmup and self.started is None:
            self.started = time.perf_counter()

    def on_train_end(self, trainer: pl.Trainer, *args) -> None:
        self.ended = time.perf_counter()


def lightning_seconds(config, store, tokenizer, window, warmup, steps, run_dir) -> float:
    pl.seed_everything(0, verbose=False)
    lit = LitGLM(config.to_dict(), tokenizer.bases_per_token, tokenizer.unit)
    timer = StepTimer(warmup)
    config = config.with_overrides({"train.max_steps": warmup + steps, "train.val_every": 10**9})
    trainer = build_trainer(config, Path(run_dir), progress=False, extra_callbacks=[timer], unit=tokenizer.unit)
    trainer.fit(lit, datamodule=GenomeDataModule(store, tokenizer, config, window))
    return timer.ended - timer.started


def plain_seconds(config, store, tokenizer, window, warmup, steps, precision) -> float:
    pl.seed_everything(0, verbose=False)
    lit = LitGLM(config.to_dict(), tokenizer.bases_per_token, tokenizer.unit)
    optimizers = lit.configure_optimizers()
    optimizer, schedule = optimizers["optimizer"], optimizers["lr_scheduler"]["scheduler"]
    rc_table = tokenizer.reverse_complement_table() if tokenizer.kind == "kmer" and config.data.rc_augment else None
    stream = iter(TrainWindows(store, window, config.train.batch_size, seed=0, rc_table=rc_table))
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16-mixed" else contextlib.nullcontext()
    lit.train()
    for step in range(warmup + steps):
        if step == warmup:
            started = time.perf_counter()
        batch = next(stream)
        with autocast:
            loss, _, _ = lit._shared_step(batch, "train")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(lit.parameters(), config.train.grad_clip)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("fasta")
    parser.add_argument("--config", default="tiny")
    parser.add_argument("--precision", default=None, help="override the preset's precision")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--set", nargs="*", default=[], help="config overrides, e.g. train.optimizer=muon")
    parser.add_argument("--json", default="bench/out/lightning_overhead.json")
    args = parser.parse_args()

    config = load_config(args.config).with_overrides(
        {key: yaml.safe_load(value) for key, value in (item.split("=", 1) for item in args.set)}
    )
    if args.precision:
        config = config.with_overrides({"train.precision": args.precision})
    precision = resolve_precision(config.train.precision, config.train.accelerator)
    config = config.with_overrides({"train.precision": precision})
    fmt = input_format(args.fasta, config)
    tokenizer = build_tokenizer(config.data, args.fasta)
    config.model.vocab_size = tokenizer.vocab_size
    cache = config.data.resolved_cache_dir()
    store = prepare(args.fasta, tokenizer, cache, config.data.split, config.data.val_fraction, input_format=fmt)
    window = config.model.context + 1
    tokens_per_step = config.train.batch_size * (window - 1)
    timings = {"plain": [], "lightning": []}
    with tempfile.TemporaryDirectory() as scratch:
        for round_index in range(args.rounds):
            timings["plain"].append(plain_seconds(config, store, tokenizer, window, args.warmup, args.steps, precision))
            run_dir = Path(scratch) / f"round{round_index}"
            timings["lightning"].append(
                lightning_seconds(config, store, tokenizer, window, args.warmup, args.steps, run_dir)
            )
            print(
                f"round {round_index}: plain {timings['plain'][-1]:.1f} s, lightning {timings['lightning'][-1]:.1f} s"
            )
    rates = {side: args.steps * tokens_per_step / min(seconds) for side, seconds in timings.items()}
    result = {
        "config": args.config,
        "overrides": args.set,
        "precision": precision,
        "steps": args.steps,
        "tokens_per_step": tokens_per_step,
        "plain_tokens_per_s": round(rates["plain"]),
        "lightning_tokens_per_s": round(rates["lightning"]),
        "plain_ms_per_step": round(1000 * min(timings["plain"]) / args.steps, 2),
        "lightning_ms_per_step": round(1000 * min(timings["lightning"]) / args.steps, 2),
        "bases_per_token": tokenizer.bases_per_token,
        "lightning_over_plain": round(rates["lightning"] / rates["plain"], 4),
        "seconds": timings,
    }
    print(json.dumps(result, indent=1))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
