"""Training throughput and model FLOPs utilisation (MFU) of each preset, through glm's own trainer.

    python bench/throughput.py --presets tiny small base --context 256 --batch-size 4 --steps 5
    python bench/throughput.py --presets small base --context 1024 --precision bf16-mixed --compile   # a GPU
    python bench/throughput.py --presets tiny --set train.optimizer=muon model.qk_norm=true   # overrides

Each preset trains for `--warmup` untimed and `--steps` timed optimizer steps on one device (no
validation), built exactly as `cli.py pretrain` builds it (LitGLM, GenomeDataModule,
build_trainer: the same precision, compile and activation checkpointing). Reports tokens/s,
bases/s, achieved TFLOP/s, MFU and peak GPU memory; `--json FILE` appends one JSON line per preset.

FLOPs per token = 6 N + 12 L W T (N parameters, L layers, width W, context T): the forward and
backward matmuls of the weights plus attention scores, the count of the PaLM paper (appendix B)
and nanoGPT. Recomputation under activation checkpointing is not counted (it is overhead). MFU
= achieved FLOP/s / the device's peak: the dense tensor-core peak of known GPUs (bf16, or TF32
for float32 runs), or on a CPU the rate of a large matmul measured here in the same precision.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from glm.config import Config, load_config
from glm.model.tokenizers import build_tokenizer
from glm.training.data import prepare
from glm.training.lit import GenomeDataModule, LitGLM
from glm.training.run_data import input_format
from glm.training.trainer import build_trainer, resolve_precision

# Dense (no sparsity) tensor-core peaks in TFLOP/s from NVIDIA's datasheets: (bf16/fp16, tf32).
# Matched against torch.cuda.get_device_name() in this order, so "H100 PCIe" wins over "H100".
GPU_PEAK_TFLOPS = {
    "H200": (989.4, 494.7),
    "H100 PCIe": (756.0, 378.0),
    "H100 NVL": (835.5, 417.8),
    "H100": (989.4, 494.7),  # SXM
    "A100": (312.0, 156.0),
}
HALF_PRECISIONS = ("bf16-mixed", "16-mixed", "bf16-true")


class StepTimer(pl.Callback):
    """Wall time of optimizer steps warmup .. warmup + steps, and the peak GPU memory over them."""

    def __init__(self, warmup: int, steps: int):
        self.warmup, self.steps = warmup, steps
        self.started: float | None = None
        self.seconds: float | None = None

    def on_train_batch_start(self, trainer: pl.Trainer, *args) -> None:
        if trainer.global_step == self.warmup and self.started is None:
            synchronize()
            if torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()
            self.started = time.perf_counter()

    def on_train_batch_end(self, trainer: pl.Trainer, *args) -> None:
        if trainer.global_step == self.warmup + self.steps and self.seconds is None:
            synchronize()
            self.seconds = time.perf_counter() - self.started


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def flops_per_token(config: Config, parameters: int) -> int:
    model = config.model
    return 6 * parameters + 12 * model.n_layers * model.width * model.context


def peak_flops(precision: str) -> tuple[float | None, str]:
    """(peak FLOP/s of this device in `precision`, where the number comes from)."""
    half = precision in HALF_PRECISIONS
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        for key, (bf16, tf32) in GPU_PEAK_TFLOPS.items():
            if key in name:
                return (bf16 if half else tf32) * 1e12, f"{name}, datasheet {'bf16' if half else 'tf32'} peak"
        return None, f"{name}: peak unknown (add it to GPU_PEAK_TFLOPS)"
    rate = measured_matmul_flops(torch.bfloat16 if half else torch.float32)
    return rate, f"CPU, measured {'bf16' if half else 'float32'} matmul {rate / 1e9:.0f} GFLOP/s"


def measured_matmul_flops(dtype: torch.dtype, size: int = 2048, repeats: int = 5) -> float:
    """The best rate of a size x size matmul on this CPU: a practical peak for MFU on CPUs."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best


def measure(preset: str, args: argparse.Namespace, run_dir: Path) -> dict:
    overrides = {
        "model.context": args.context,
        "train.batch_size": args.batch_size,
        "train.precision": args.precision,
        "train.compile": args.compile,
        "train.activation_checkpointing": args.activation_checkpointing,
        "train.max_steps": args.warmup + args.steps,
        "train.val_every": 10**9,
        "train.devices": "1",
        "data.num_workers": args.workers,
        **{key: yaml.safe_load(value) for key, value in (item.split("=", 1) for item in args.set)},
    }
    config = load_config(preset).with_overrides(overrides)
    tokenizer = build_tokenizer(config.data, args.fasta)
    store = prepare(args.fasta, tokenizer, config.data.resolved_cache_dir(), progress=False,
                    input_format=input_format(args.fasta, config))  # fmt: skip
    config = config.with_overrides({"model.vocab_size": tokenizer.vocab_size})
    pl.seed_everything(0, verbose=False)
    if torch.cuda.is_available():
        torch.set_float32_matmul_precision("high")
    lit = LitGLM(config.to_dict(), tokenizer.bases_per_token, tokenizer.unit)
    timer = StepTimer(args.warmup, args.steps)
    trainer = build_trainer(config, run_dir, progress=False, extra_callbacks=[timer], unit=tokenizer.unit)
    trainer.fit(lit, datamodule=GenomeDataModule(store, tokenizer, config, config.model.context + 1))

    parameters = lit.model.num_parameters()
    tokens_per_second = args.steps * config.train.batch_size * config.model.context / timer.seconds
    achieved = tokens_per_second * flops_per_token(config, parameters)
    precision = resolve_precision(config.train.precision, config.train.accelerator)
    peak, peak_source = peak_flops(precision)
    return {
        "preset": preset,
        "overrides": args.set,
        "parameters": parameters,
        "k": config.data.k,
        "context": config.model.context,
        "batch_size": config.train.batch_size,
        "precision": precision,
        "compile": config.train.compile,
        "activation_checkpointing": config.train.activation_checkpointing,
        "tokens_per_s": tokens_per_second,
        "bases_per_s": tokens_per_second * tokenizer.bases_per_token,
        "tflops": achieved / 1e12,
        "mfu": achieved / peak if peak else None,
        "peak": peak_source,
        "peak_memory_gb": torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None,
        "seconds_per_step": timer.seconds / args.steps,
    }


def print_table(rows: list[dict]) -> None:
    print("\n| preset | parameters | context | batch | precision | compile | tokens/s | bases/s | TFLOP/s | MFU "
          "| peak memory |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        mfu = f"{100 * row['mfu']:.1f}%" if row["mfu"] is not None else "n/a"
        memory = f"{row['peak_memory_gb']:.1f} GiB" if row["peak_memory_gb"] is not None else "n/a"
        print(
            f"| {row['preset']} | {row['parameters']:,} | {row['context']} | {row['batch_size']} | {row['precision']} "
            f"| {'on' if row['compile'] else 'off'} | {row['tokens_per_s']:,.0f} | {row['bases_per_s']:,.0f} "
            f"| {row['tflops']:.3f} | {mfu} | {memory} |"
        )
    print("\npeak (MFU is against it): " + "; ".join(f"{row['preset']}: {row['peak']}" for row in rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["tiny", "small", "base"])
    parser.add_argument("--fasta", default=str(Path(__file__).resolve().parent.parent / "data/ecoli_K12_MG1655.fa.gz"))
    parser.add_argument("--context", type=int, help="tokens per window (default: the preset's)")
    parser.add_argument("--batch-size", type=int, help="windows per step (default: the preset's)")
    parser.add_argument("--precision", help="default: auto (bf16-mixed on GPUs and bf16-capable CPUs)")
    parser.add_argument("--compile", action="store_const", const=True, help="torch.compile each block")
    parser.add_argument("--activation-checkpointing", action="store_const", const=True)
    parser.add_argument("--workers", type=int, help="DataLoader workers (default: the preset's)")
    parser.add_argument("--steps", type=int, default=10, help="timed optimizer steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation happens here)")
    parser.add_argument("--set", nargs="*", default=[], help="config overrides, e.g. train.optimizer=muon")
    parser.add_argument("--json", help="append one JSON line per preset to this file")
    args = parser.parse_args()

    rows = []
    for preset in args.presets:
        with tempfile.TemporaryDirectory() as run_dir:
            row = measure(preset, args, Path(run_dir))
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.json:
            with open(args.json, "a") as handle:
                handle.write(json.dumps(row) + "\n")
    print_table(rows)


if __name__ == "__main__":
    main()
