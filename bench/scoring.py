"""Variant scoring speed: shared reference windows + KV-cache prefix reuse against the naive path.

    python bench/scoring.py runs/MT-human/model --genome data/MT-human.fa --region MT_human:3001-4000
    python bench/scoring.py runs/MT-human/model --device cuda --precision bf16   # bf16 autocast on the GPU

Saturation mutagenesis of the region (every SNV: 3 per base), llr on both strands with the
model's default window. The naive path runs two full windows per variant and strand; the fast
path runs each distinct reference window once and only the suffix of each alternative window.
Both run in this process on the same variants and must agree to 1e-5. To be fair under a
changing machine load, the region is cut into --slices consecutive pieces and each piece is scored
by both paths back to back (alternating which goes first); the totals over all pieces are compared.
A piece needs its own reference windows, so slicing slightly favours the naive path. Without a
model directory, a randomly initialised model of the tiny preset is used (speed does not depend on the weights).
--precision float32 (the default here) holds both paths to the 1e-5 agreement; with bf16
the difference is reported, not checked: bf16 rounds differently in differently shaped batches.
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
import glm
from glm.api import GenomicLM
from glm.config import load_config
from glm.io.coordinates import parse_region
from glm.io.genome import Genome
from glm.io.variants import VariantList
from glm.model.checkpoint import resolve_device
from glm.model.tokenizers import KmerTokenizer
from glm.model.transformer import Transformer
from glm.scoring import mutagenesis_variants, score_variants
from glm.scoring.windows import default_window


def tiny_model(device: str = "cpu") -> GenomicLM:
    config = load_config("tiny")
    tokenizer = KmerTokenizer(config.data.k, config.data.stride or config.data.k)
    config.model.vocab_size = tokenizer.vocab_size
    torch.manual_seed(0)
    return GenomicLM(Transformer(config.model).to(resolve_device(device)), tokenizer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", help="exported model directory (default: random tiny preset)")
    parser.add_argument("--genome", default="data/MT-human.fa")
    parser.add_argument("--region", default="MT_human:3001-4000")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--slices", type=int, default=10, help="pieces of the region, each timed both ways")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--precision", default="float32", choices=["float32", "bf16"])
    parser.add_argument("--json", default="bench/out/scoring.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    lm = glm.load(args.model, device=args.device) if args.model else tiny_model(args.device)
    genome = Genome(args.genome)
    variants = mutagenesis_variants(genome, *parse_region(args.region, genome.lengths, str(genome.path)))
    print(f"{lm!r}; {len(variants)} SNVs in {args.region}; both strands; {torch.get_num_threads()} threads")
    print(f"device {lm.device}, precision {args.precision}")

    seconds = {"naive": 0.0, "reuse": 0.0}
    scores: dict[str, list[np.ndarray]] = {"naive": [], "reuse": []}
    size = -(-len(variants) // args.slices)
    for index, first in enumerate(range(0, len(variants), size)):
        piece = VariantList(variants[first : first + size], source=variants.source)
        for name in ("naive", "reuse") if index % 2 == 0 else ("reuse", "naive"):
            start = time.perf_counter()
            result = score_variants(
                lm.model,
                lm.tokenizer,
                piece,
                genome,
                batch_size=args.batch_size,
                reuse=name == "reuse",
                precision=args.precision,
            )
            seconds[name] += time.perf_counter() - start
            scores[name].append(result["llr"])
        print(f"  slice {index + 1}: naive {seconds['naive']:7.1f} s, reuse {seconds['reuse']:7.1f} s so far")
    difference = float(np.max(np.abs(np.concatenate(scores["naive"]) - np.concatenate(scores["reuse"]))))
    naive, reuse = seconds["naive"], seconds["reuse"]
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
        "slices": args.slices,
        "device": str(lm.device),
        "precision": args.precision,
    }
    print(json.dumps(result, indent=2))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    with open(args.json, "a") as handle:
        handle.write(json.dumps(result) + "\n")
    if difference > 1e-5 and args.precision == "float32":
        sys.exit(f"FAIL: fast and naive scores differ by {difference:.2e} (> 1e-5)")


if __name__ == "__main__":
    main()
