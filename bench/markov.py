"""Order-k Markov baselines: held-out bits/base on the same split glm trains and validates on.

    python bench/markov.py data/ecoli_K12_MG1655.fa.gz --orders 2 3 4 5 6 7 8 9 10 11 12
    python bench/markov.py MT-orang.fa --train-on MT-human.fa yeast.fa   # trained on other genomes

Counts (k+1)-mers on both strands of the training part, predicts each held-out base from the k
bases before it with additive (Lidstone) smoothing. Alpha 0.5 is the Krichevsky-Trofimov
estimator; the table also shows the best alpha of a small grid chosen *on the held-out data*,
which flatters the baseline (a conservative comparison for glm). Positions whose context or
target contains N, and the first k bases of each held-out piece, are not scored. With
--train-on, the counts come from the training parts of those files instead (a genome the model
never saw: bench/corpus.py's leave-one-genome-out baseline).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from glm.alphabet import reverse_complement
from glm.io.genome import Genome
from glm.model.tokenizers import KmerTokenizer
from glm.training.data import heldout_regions, prepare

ALPHAS = (0.01, 0.1, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
CODE = np.full(256, 4, dtype=np.int64)
for _i, _b in enumerate("ACGT"):
    CODE[ord(_b)] = CODE[ord(_b.lower())] = _i


def base_codes(sequence: str) -> np.ndarray:
    return CODE[np.frombuffer(sequence.encode("ascii"), dtype=np.uint8)]


def kmer_codes(codes: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer code of every `length`-mer (as base-4 digits) and whether it contains N."""
    n = len(codes) - length + 1
    value = np.zeros(max(n, 0), dtype=np.int64)
    unknown = np.zeros(max(n, 0), dtype=bool)
    for j in range(length):
        digit = codes[j : j + n]
        unknown |= digit == 4
        value = value * 4 + np.where(digit == 4, 0, digit)
    return value, unknown


def markov_bits(train: list[str], heldout: list[str], order: int) -> dict[float, float]:
    """Held-out bits/base for each alpha in ALPHAS."""
    counts = np.zeros(4 ** (order + 1), dtype=np.int64)
    for sequence in train:
        for strand in (sequence, reverse_complement(sequence)):
            value, unknown = kmer_codes(base_codes(strand), order + 1)
            counts += np.bincount(value[~unknown], minlength=len(counts))
    context_totals = counts.reshape(-1, 4).sum(axis=1)
    hits, totals = [], []
    for sequence in heldout:
        value, unknown = kmer_codes(base_codes(sequence), order + 1)
        value = value[~unknown]
        hits.append(counts[value])
        totals.append(context_totals[value // 4])
    hits, totals = np.concatenate(hits), np.concatenate(totals)
    return {alpha: float(-np.mean(np.log2((hits + alpha) / (totals + 4 * alpha)))) for alpha in ALPHAS} | {
        "scored": len(hits)
    }


def split_sequences(fasta: str | Path, split: str = "auto", val_fraction: float = 0.05) -> tuple[list[str], list[str]]:
    """(training pieces, held-out pieces) of a FASTA file, on the split glm trains and validates on."""
    with tempfile.TemporaryDirectory() as cache:
        store = prepare(fasta, KmerTokenizer(1), cache, split, val_fraction, progress=False)
    genome = Genome(fasta)
    heldout = [genome.fetch(name, start, end) for name, start, end in heldout_regions(store)]
    train = [genome.fetch(entry["name"], *entry["train"]["bases"]) for entry in store.records if "train" in entry]
    return train, heldout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("fasta")
    parser.add_argument("--orders", type=int, nargs="+", default=list(range(2, 13)))
    parser.add_argument("--val-fraction", type=float, default=0.05)
    parser.add_argument("--split", default="auto")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--train-on", nargs="+", metavar="FASTA", help="count these files' training parts instead")
    args = parser.parse_args()

    train, heldout = split_sequences(args.fasta, args.split, args.val_fraction)
    if args.train_on:
        train = [piece for other in args.train_on for piece in split_sequences(other, args.split, args.val_fraction)[0]]
    source = f" (trained on {len(args.train_on)} other files)" if args.train_on else ""
    print(f"{args.fasta}: {sum(map(len, train)):,} train bases{source}, {sum(map(len, heldout)):,} held-out bases")
    print("| order k | bits/base (alpha 0.5) | best alpha | bits/base (best alpha) |")
    print("|---|---|---|---|")
    rows = []
    for order in args.orders:
        result = markov_bits(train, heldout, order)
        best = min(ALPHAS, key=lambda a: result[a])
        rows.append({"order": order, "kt": result[0.5], "best_alpha": best, "best": result[best]})
        print(f"| {order} | {result[0.5]:.4f} | {best} | {result[best]:.4f} |", flush=True)
    winner = min(rows, key=lambda row: row["best"])
    print(f"best: order {winner['order']}, {winner['best']:.4f} bits/base (alpha {winner['best_alpha']})")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
