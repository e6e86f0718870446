"""Generation speed: with the key/value cache against recomputing the window for every token.

    python bench/generate.py runs/tinyshakespeare/model --prompt "ROMEO:" --new-tokens 500

Both paths sample the same tokens for the same seed (checked here); each is timed over
`--new-tokens` tokens, alternating for `--rounds` rounds, and the faster round of each is kept.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import glm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--prompt", default="ROMEO:")
    parser.add_argument("--new-tokens", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", default="bench/out/generate.json")
    args = parser.parse_args()

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
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
