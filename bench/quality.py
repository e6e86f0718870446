"""Quality per compute: train glm for a wall-clock budget, then score the whole held-out split.

    python bench/quality.py data/ecoli_K12_MG1655.fa.gz --minutes 15 --k 1
    python bench/quality.py data/ecoli_K12_MG1655.fa.gz --minutes 3 --k 1 2 3 4 6   # choose k

Each run trains with the given preset (default tiny) plus overrides, for the wall-clock budget
(the learning-rate schedule decays to fit it), then computes bits/base over every held-out
base with glm's sliding-window log-likelihood (not the capped validation subset used during
training). Results append to --json as one line per run; the table compares with bench/markov.py
numbers on the same split.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from glm.api import GenomicLM
from glm.config import load_config
from glm.io.genome import Genome
from glm.model.tokenizers import build_tokenizer
from glm.training.data import heldout_regions, prepare
from glm.training.pretrain import pretrain


def heldout_bits_per_base(lm: GenomicLM, fasta: str, config) -> tuple[float, int]:
    """Bits/base over every held-out base (exactly the split the model was trained with)."""
    with tempfile.TemporaryDirectory() as cache:
        store = prepare(fasta, lm.tokenizer, cache, config.data.split, config.data.val_fraction, progress=False)
    genome = Genome(fasta)
    results = lm.log_likelihood([genome.fetch(*region) for region in heldout_regions(store)])
    total, bases = sum(r.total for r in results), sum(r.bases for r in results)
    return -total / bases / 0.6931471805599453, bases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("fasta")
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--k", type=int, nargs="+", default=[1])
    parser.add_argument("--config", default="tiny")
    parser.add_argument(
        "--set", nargs="*", default=[], help="extra overrides, e.g. model.width=256 train.precision=bf16-mixed"
    )
    parser.add_argument("--out", default="bench/out")
    parser.add_argument("--json", default="bench/out/quality.jsonl")
    args = parser.parse_args()

    extra = dict(item.split("=", 1) for item in args.set)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    for k in args.k:
        overrides = {"data.k": k, "train.max_time": f"{args.minutes}m", "train.max_steps": 10**7, **extra}
        config = load_config(args.config).with_overrides(overrides)
        run_dir = Path(args.out) / f"quality-k{k}-{int(time.time())}"
        result = pretrain(args.fasta, config, run_dir, progress=False)
        lm = GenomicLM(result.model, build_tokenizer(config.data))
        bits, bases = heldout_bits_per_base(lm, args.fasta, config)
        row = {
            "fasta": args.fasta,
            "k": k,
            "minutes": args.minutes,
            "config": args.config,
            "overrides": extra,
            "parameters": result.parameters,
            "steps": result.steps,
            "bases_seen": result.bases_seen,
            "train_seconds": round(result.seconds, 1),
            "bases_per_second": round(result.bases_seen / result.seconds),
            "heldout_bits_per_base": round(bits, 4),
            "heldout_bases": bases,
        }
        print(json.dumps(row), flush=True)
        with open(args.json, "a") as handle:
            handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
