"""Recipe ablations: each training-recipe option alone, and combinations, side by side.

    python bench/recipe.py ecoli --minutes 3 --rows baseline muon qk_norm relu2 ...     # equal wall-clock
    python bench/recipe.py ecoli --steps 400 --rows baseline muon qk_norm relu2 ...     # equal steps
    python bench/recipe.py shakespeare --rows baseline muon ...            # 2,000 steps (nanoGPT budget)
    python bench/recipe.py ecoli --minutes 3 --rows baseline best --define best=muon+qk_norm

Every row starts from the recipe before issue 12 (AdamW, no QK-norm, width 128: BASELINE) and
adds its changes; the row `preset` is the preset as shipped. E. coli: the `tiny` preset on
data/ecoli_K12_MG1655.fa.gz for a wall-clock budget (the learning rate decays to fit it) or
--steps, then bits/base over every held-out base (bench/quality.py's measure).
Shakespeare: the `text` preset (batch 12, block 64, 2,000 steps), validation loss in nats/char
over the whole validation text. Rows run back to back in the given order, and in reverse order
for every second seed, so slow drifts of a shared machine's load do not favour one row; the
load average before and after each run is recorded. Results append to --json, one line per run,
and a table is printed at the end.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from pathlib import Path

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import heldout_bits_per_base

from glm.api import GenomicLM
from glm.config import load_config
from glm.model.tokenizers import build_tokenizer
from glm.training.pretrain import pretrain

# Every row starts from the recipe before issue 12 (AdamW, no QK-norm, width 128), whatever the
# presets now say, so the table reproduces; "preset" is the preset as shipped.
BASELINE: dict[str, object] = {"train.optimizer": "adamw", "model.qk_norm": False, "model.width": 128}
# One change each, from the list (docs/BENCHMARKS.md says where each idea comes from).
CHANGES: dict[str, dict[str, object]] = {
    "baseline": {},
    "muon": {"train.optimizer": "muon"},
    "qk_norm": {"model.qk_norm": True},
    "relu2": {"model.mlp": "relu2"},
    "zero_init": {"model.zero_init": True},
    "untied": {"model.tie_embeddings": False},
    "value_emb": {"model.value_embeddings": True},
    "logit_cap": {"model.logit_cap": 15.0},
    "wsd": {"train.schedule": "wsd"},
}
PRESET = "preset"
TASKS = {
    "ecoli": ("data/ecoli_K12_MG1655.fa.gz", "tiny"),
    "shakespeare": ("data/tinyshakespeare.txt", "text"),
}


def overrides_of(name: str, defined: dict[str, str]) -> dict[str, object]:
    """A row's config overrides: a named change, a `--define`d sum of changes, or key=value pairs."""
    if name == PRESET:
        return {}
    if name in CHANGES:
        return dict(CHANGES[name])
    if name in defined:
        merged: dict[str, object] = {}
        for part in defined[name].split("+"):
            merged.update(overrides_of(part, defined))
        return merged
    if "=" in name:
        key, value = name.split("=", 1)
        return {key: yaml.safe_load(value)}
    raise SystemExit(f"unknown row {name!r}: one of {', '.join(CHANGES)}, {PRESET}, a --define'd name, or key=value")


def run_row(
    task: str, name: str, overrides: dict[str, object], seed: int, minutes: float | None, steps: int | None, out: Path
) -> dict:
    path, preset = TASKS[task]
    budget = {"train.max_time": f"{minutes}m", "train.max_steps": 10**7} if minutes else {"train.max_steps": steps}
    start = {} if name == PRESET else BASELINE
    config = load_config(preset).with_overrides({**start, **overrides, **budget, "train.seed": seed})
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(dir=out) as run_dir:
        result = pretrain(path, config, run_dir, progress=False, say=lambda _: None)
        row = {
            "task": task,
            "row": name,
            "overrides": overrides,
            "seed": seed,
            "parameters": result.parameters,
            "steps": result.steps,
            "train_seconds": round(result.seconds, 1),
            "tokens_per_second": round(result.tokens_seen / result.seconds),
        }
        if task == "ecoli":
            lm = GenomicLM(result.model, build_tokenizer(config.data))
            row["heldout_bits_per_base"] = round(heldout_bits_per_base(lm, path, config)[0], 4)
        else:  # the text preset validates on the whole validation text
            row["val_nats_per_char"] = round(result.val_bits * math.log(2), 4)
    row["load_before"], row["load_after"] = round(load_before, 2), round(os.getloadavg()[0], 2)
    row["threads"] = torch.get_num_threads()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", choices=TASKS)
    parser.add_argument("--rows", nargs="+", default=list(CHANGES))
    parser.add_argument("--define", nargs="*", default=[], help="NAME=change+change+key=value")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--minutes", type=float, help="wall-clock budget per run (default: --steps)")
    parser.add_argument("--steps", type=int, help="optimizer steps per run (default: the preset's)")
    parser.add_argument("--out", default="bench/out")
    parser.add_argument("--json", default="bench/out/recipe.jsonl")
    args = parser.parse_args()

    defined = dict(item.split("=", 1) for item in args.define)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for index, seed in enumerate(args.seeds):
        for name in args.rows if index % 2 == 0 else args.rows[::-1]:
            row = run_row(args.task, name, overrides_of(name, defined), seed, args.minutes, args.steps, out)
            results.append(row)
            print(json.dumps(row), flush=True)
            with open(args.json, "a") as handle:
                handle.write(json.dumps(row) + "\n")
    metric = "heldout_bits_per_base" if args.task == "ecoli" else "val_nats_per_char"
    print(f"\n| row | seed | {metric} | steps | tokens/s | parameters | load |\n|---|---|---|---|---|---|---|")
    for row in results:
        print(
            f"| {row['row']} | {row['seed']} | {row[metric]:.4f} | {row['steps']} | {row['tokens_per_second']:,} "
            f"| {row['parameters']:,} | {row['load_before']}-{row['load_after']} |"
        )


if __name__ == "__main__":
    main()
