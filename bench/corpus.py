"""Many genomes in one run, at equal steps: per-genome models, one joint model, genome tokens, transfer.

    python bench/corpus.py G1.fa G2.fa ... --steps 300 --set model.n_layers=2 model.width=64

Parts (--parts, default all):
  single       one model per genome, --steps each
  joint        one model on all the genomes (windows drawn by size, temperature 1)
  tagged       the same with --genome-tokens, each genome scored with its own token
  temperature  the joint model at --genome-temperature 0 and 0.5 (1 is `joint`)
  logo         leave one genome out (--logo names which): a model on the others, scored on it,
               against the best order-k Markov model counted on the others (bench/markov.py)

Every model trains --steps optimizer steps from the same seed with the same settings (the
--config preset plus --set), then is scored on each genome's held-out part (the split glm
validates on; at most --eval-bases bases per genome, taken evenly from its held-out pieces: the
same bases for every model and for the Markov baseline) with GenomicLM.log_likelihood. Each
result is one JSON line in --json; the tables of docs/BENCHMARKS.md are printed at the end.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from markov import ALPHAS, markov_bits, split_sequences

from glm.api import GenomicLM
from glm.config import Config, load_config
from glm.io.corpus import genome_name
from glm.training.pretrain import pretrain

PARTS = ("single", "joint", "tagged", "temperature", "logo")


def eval_pieces(fasta: str, config: Config, cap: int) -> list[str]:
    """At most `cap` held-out bases of a genome, taken from every held-out piece in proportion to its length."""
    heldout = split_sequences(fasta, config.data.split, config.data.val_fraction)[1]
    total = sum(map(len, heldout))
    share = min(1.0, cap / total)
    return [piece[: max(int(len(piece) * share), 1)] for piece in heldout]


def bits_per_base(lm: GenomicLM, pieces: list[str], genome: str | None = None) -> float:
    results = lm.log_likelihood(pieces, genome_name=genome)
    return -sum(r.total for r in results) / sum(r.bases for r in results) / math.log(2)


def train(fastas: list[str], config: Config, out: Path, label: str) -> tuple[GenomicLM, dict]:
    started = time.perf_counter()
    result = pretrain(fastas, config, out / f"{label}-{int(time.time())}", progress=False, say=lambda *_: None)
    lm = GenomicLM.load(result.model_dir, device="cpu")
    return lm, {"steps": result.steps, "seconds": round(time.perf_counter() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("fasta", nargs="+")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--config", default="tiny")
    parser.add_argument("--set", nargs="*", default=[], help="overrides, e.g. model.width=64 train.batch_size=16")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--logo", nargs="+", help="genomes to leave out one at a time (default: all)")
    parser.add_argument("--eval-bases", type=int, default=20_000)
    parser.add_argument("--markov-orders", type=int, nargs="+", default=list(range(2, 9)))
    parser.add_argument("--out", default="bench/out/corpus")
    parser.add_argument("--json", default="bench/out/corpus.jsonl")
    args = parser.parse_args()

    overrides = {
        "train.max_steps": args.steps,
        "train.val_every": args.steps,
        **dict(s.split("=", 1) for s in args.set),
    }
    config = load_config(args.config).with_overrides(overrides)
    names = [genome_name(Path(fasta)) for fasta in args.fasta]
    pieces = {name: eval_pieces(fasta, config, args.eval_bases) for name, fasta in zip(names, args.fasta)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def record(part: str, variant: str, bits: dict[str, float], extra: dict) -> None:
        row = {"part": part, "variant": variant, "bits_per_base": {k: round(v, 4) for k, v in bits.items()}, **extra}
        row["settings"] = {"steps": args.steps, "config": args.config, "set": args.set, "eval_bases": args.eval_bases}
        print(json.dumps(row), flush=True)
        with open(args.json, "a") as handle:
            handle.write(json.dumps(row) + "\n")

    if "single" in args.parts:
        for name, fasta in zip(names, args.fasta):
            lm, info = train([fasta], config, out, f"single-{name}")
            record("single", name, {name: bits_per_base(lm, pieces[name])}, info)
    if "joint" in args.parts:
        lm, info = train(args.fasta, config, out, "joint")
        record("joint", "temperature 1", {name: bits_per_base(lm, pieces[name]) for name in names}, info)
    if "tagged" in args.parts:
        lm, info = train(args.fasta, config.with_overrides({"data.genome_tokens": True}), out, "tagged")
        record("tagged", "genome tokens", {name: bits_per_base(lm, pieces[name], name) for name in names}, info)
    if "temperature" in args.parts:
        for temperature in (0.0, 0.5):
            tempered = config.with_overrides({"data.genome_temperature": temperature})
            lm, info = train(args.fasta, tempered, out, f"temperature-{temperature}")
            bits = {name: bits_per_base(lm, pieces[name]) for name in names}
            record("temperature", f"temperature {temperature:g}", bits, info)
    if "logo" in args.parts:
        for left in args.logo or names:
            others = [fasta for name, fasta in zip(names, args.fasta) if name != left]
            lm, info = train(others, config, out, f"logo-{left}")
            split = (config.data.split, config.data.val_fraction)
            counted = [piece for fasta in others for piece in split_sequences(fasta, *split)[0]]
            markov = {
                order: markov_bits(counted, pieces[left], order) for order in args.markov_orders
            }  # alpha and order picked on the held-out data: flatters the baseline
            order, alpha = min(((o, a) for o in markov for a in ALPHAS), key=lambda oa: markov[oa[0]][oa[1]])
            info |= {"markov": round(markov[order][alpha], 4), "markov_order": order, "markov_alpha": alpha}
            record("logo", left, {left: bits_per_base(lm, pieces[left])}, info)


if __name__ == "__main__":
    main()
