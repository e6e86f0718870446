"""Generation speed: with the key/value cache against recomputing the window for every token.

    python bench/generate.py runs/tinyshakespeare/model --prompt "ROMEO:" --new-tokens 500

Both paths sample the same tokens for the same seed (checked here); each is timed over
`--new-tokens` tokens, alternating for `--rounds` rounds, and the faster round of each is kept.

    OMP_NUM_THREADS=1 python bench/generate.py --cache-growth 1024 4096 16384

Without a model: a random 2-layer, width-64 model whose context holds the longest run generates
each number of new tokens with the cache, with glm's preallocated KVCache and with
`ConcatenatingCache` (the cache before it: torch.cat of every key on every step), back to back
for `--rounds` rounds, alternating which goes first; ms per token of each side's faster round,
their ratio, and whether both sampled the same tokens.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import glm
from glm.config import ModelConfig
from glm.model.generation import sample_tokens
from glm.model.tokenizers import N_SPECIAL
from glm.model.transformer import Transformer

PROMPT = list(range(N_SPECIAL, N_SPECIAL + 16))  # 16 token ids of a 3-mer vocabulary (64 + the specials)


class ConcatenatingCache:
    """The KVCache before preallocation, for comparison: each step concatenates onto every cached key."""

    def __init__(self, n_layers: int):
        self.layers: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * n_layers

    @property
    def length(self) -> int:
        return self.layer_length(0)

    def layer_length(self, layer: int) -> int:
        cached = self.layers[layer]
        return 0 if cached is None else cached[0].shape[2]

    def extend(self, layer: int, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cached = self.layers[layer]
        if cached is not None:
            keys, values = torch.cat([cached[0], keys], dim=2), torch.cat([cached[1], values], dim=2)
        self.layers[layer] = (keys, values)
        return keys, values

    def clear(self) -> None:
        self.layers = [None] * len(self.layers)


class ConcatenatingTransformer(Transformer):
    def new_cache(self, capacity: int | None = None) -> ConcatenatingCache:
        return ConcatenatingCache(self.config.n_layers)


def cache_growth(lengths: list[int], rounds: int) -> dict:
    """ms per new token with the preallocated and the concatenating cache at each length (faster round)."""
    config = ModelConfig(vocab_size=N_SPECIAL + 64, n_layers=2, n_heads=4, width=64, context=max(lengths) + len(PROMPT))
    torch.manual_seed(0)
    preallocated = Transformer(config).eval()
    concatenating = ConcatenatingTransformer(config).eval()
    concatenating.load_state_dict(preallocated.state_dict())
    allowed = torch.arange(config.vocab_size) >= N_SPECIAL
    rows = []
    for new_tokens in lengths:
        seconds: dict[str, list[float]] = {"concatenating": [], "preallocated": []}
        sampled = {}
        for round_ in range(rounds):
            sides = [("concatenating", concatenating), ("preallocated", preallocated)]
            for side, model in sides[:: 1 if round_ % 2 == 0 else -1]:  # alternate who goes first
                list(sample_tokens(model, PROMPT, 32, allowed, seed=0))  # warm-up, untimed
                started = time.perf_counter()
                sampled[side] = list(sample_tokens(model, PROMPT, new_tokens, allowed, seed=0))
                seconds[side].append(time.perf_counter() - started)
        ms_per_token = {side: round(1000 * min(times) / new_tokens, 3) for side, times in seconds.items()}
        rows.append(
            {
                "new_tokens": new_tokens,
                "concatenating_ms_per_token": ms_per_token["concatenating"],
                "preallocated_ms_per_token": ms_per_token["preallocated"],
                "ratio": round(ms_per_token["concatenating"] / ms_per_token["preallocated"], 2),
                "same_tokens": sampled["concatenating"] == sampled["preallocated"],
                "seconds": {side: [round(t, 3) for t in times] for side, times in seconds.items()},
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return {"threads": torch.get_num_threads(), "context": config.context, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", help="a model directory (not needed with --cache-growth)")
    parser.add_argument("--prompt", default="ROMEO:")
    parser.add_argument("--new-tokens", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--cache-growth", type=int, nargs="+", metavar="N", help="new-token counts to time")
    parser.add_argument(
        "--json", help="result file (default bench/out/generate.json; generate_cache_growth.json with --cache-growth)"
    )
    args = parser.parse_args()
    if args.cache_growth:
        result = cache_growth(args.cache_growth, args.rounds)
        json_path = Path(args.json or "bench/out/generate_cache_growth.json")
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result, indent=1))
        return
    if args.model is None:
        parser.error("give a model directory, or --cache-growth")

    lm = glm.load(args.model, device="cpu")
    seconds: dict[str, list[float]] = {"cached": [], "uncached": []}
    outputs = {}
    for _ in range(args.rounds):
        for side, use_cache in (("cached", True), ("uncached", False)):
            started = time.perf_counter()
            outputs[side] = lm.generate(args.prompt, max_new_tokens=args.new_tokens, seed=0, use_cache=use_cache)
            seconds[side].append(time.perf_counter() - started)
    result = {
        "model": args.model,
        "context": lm.context,
        "new_tokens": args.new_tokens,
        "cached_tokens_per_s": round(args.new_tokens / min(seconds["cached"]), 1),
        "uncached_tokens_per_s": round(args.new_tokens / min(seconds["uncached"]), 1),
        "speedup": round(min(seconds["uncached"]) / min(seconds["cached"]), 2),
        "same_tokens": outputs["cached"] == outputs["uncached"],
        "seconds": seconds,
    }
    print(json.dumps(result, indent=1))
    print("sample:", args.prompt + outputs["cached"][:300])
    json_path = Path(args.json or "bench/out/generate.json")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
