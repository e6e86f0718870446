"""Variant scoring speed: shared reference windows + KV-cache prefix reuse against the naive path.

    python bench/scoring.py runs/MT-human/model --genome data/MT-human.fa --region MT_human:3001-4000

Saturation mutagenesis of the region (every SNV: 3 per base), llr on both strands with the
model's default window. The naive path runs two full windows per variant and strand; the fast
path runs each distinct reference window once and only the suffix of each alternative window.
Both run in this process, alternating for --rounds rounds (the faster round of each is kept), and
their scores must agree to 1e-5. Without a model directory, a randomly initialised model of the
tiny preset is used (speed does not depend on the weights).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import glm  # noqa: E402
from glm.api import GenomicLM  # noqa: E402
from glm.config import load_config  # noqa: E402
from glm.genome import Genome, parse_region  # noqa: E402
from glm.model import Transformer  # noqa: E402
from glm.scoring import default_window, mutagenesis_variants, score_variants  # noqa: E402
from glm.tokenizers import KmerTokenizer  # noqa: E402


def tiny_model() -> GenomicLM:
    config = load_config("tiny")
    tokenizer = KmerTokenizer(config.data.k, config.data.stride or config.data.k)
    config.model.vocab_size = tokenizer.vocab_size
    torch.manual_seed(0)
    return GenomicLM(Transformer(config.model), tokenizer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", help="exported model directory (default: random tiny preset)")
    parser.add_argument("--genome", default="data/MT-human.fa")
    parser.add_argument("--region", default="MT_human:3001-4000")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--json", default="bench/out/scoring.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    lm = glm.load(args.model, device="cpu") if args.model else tiny_model()
    genome = Genome(args.genome)
    variants = mutagenesis_variants(genome, *parse_region(args.region, genome))
    print(f"{lm!r}; {len(variants)} SNVs in {args.region}; both strands; {torch.get_num_threads()} threads")

    seconds: dict[str, list[float]] = {"naive": [], "reuse": []}
    scores = {}
    for _ in range(args.rounds):
        for name in ("naive", "reuse"):
            start = time.perf_counter()
            scores[name] = score_variants(
                lm.model, lm.tokenizer, variants, genome, batch_size=args.batch_size, reuse=name == "reuse"
            )["llr"]
            seconds[name].append(time.perf_counter() - start)
            print(f"  {name:5s} {seconds[name][-1]:7.2f} s  {len(variants) / seconds[name][-1]:8.1f} variants/s")
    difference = float(np.max(np.abs(scores["naive"] - scores["reuse"])))
    naive, reuse = min(seconds["naive"]), min(seconds["reuse"])
    result = {
        "model": args.model or "random tiny preset",
        "parameters": lm.model.num_parameters(),
        "window_bases": default_window(lm.model, lm.tokenizer),
        "region": args.region,
        "variants": len(variants),
        "naive_variants_per_s": len(variants) / naive,
        "reuse_variants_per_s": len(variants) / reuse,
        "speedup": naive / reuse,
        "max_abs_difference": difference,
        "threads": torch.get_num_threads(),
    }
    print(json.dumps(result, indent=2))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    with open(args.json, "a") as handle:
        handle.write(json.dumps(result) + "\n")
    if difference > 1e-5:
        sys.exit(f"FAIL: fast and naive scores differ by {difference:.2e} (> 1e-5)")


if __name__ == "__main__":
    main()
