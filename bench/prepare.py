"""Prepare throughput and peak memory on generated genomes of growing size.

    python bench/prepare.py --sizes 25 50 100 200 400 --record-mb 10 --k 1 6

Writes a random FASTA of each size (records of --record-mb megabases, 60 bases a line, 10% of
bases lowercase in runs, a 10 kb N gap per record), then runs `glm.training.data.prepare` on it in a
fresh process and reports wall time, Mb/s and the process's peak resident memory. Flat memory
means the peak does not grow with the genome (it grows with the largest record). Generated
files are deleted afterwards; nothing is committed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import sys, time
sys.path.insert(0, {root!r})
from bench.peak_memory import peak_mb
from glm.training.data import prepare
from glm.model.tokenizers import KmerTokenizer
started = time.perf_counter()
store = prepare({fasta!r}, KmerTokenizer({k}), {cache!r}, progress=False)
seconds = time.perf_counter() - started
print(seconds, peak_mb(), store.meta["train_tokens"] + store.meta["val_tokens"])
"""


def write_genome(path: Path, megabases: int, record_mb: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"ACGTacgt", dtype=np.uint8)
    with open(path, "wb") as handle:
        remaining, index = megabases * 1_000_000, 0
        while remaining > 0:
            length = min(record_mb * 1_000_000, remaining)
            codes = rng.integers(0, 4, size=length, dtype=np.uint8)
            lower = np.repeat(rng.random(length // 1000 + 1) < 0.1, 1000)[:length]  # 1 kb soft-masked runs
            bases = letters[codes + 4 * lower]
            bases[length // 2 : length // 2 + 10_000] = ord("N")
            handle.write(f">chr{index} generated\n".encode())
            usable = length - length % 60
            handle.write(b"\n".join(bases[:usable].reshape(-1, 60)) if usable else b"")
            handle.write(b"\n" + bases[usable:].tobytes() + b"\n" if length % 60 else b"\n")
            remaining -= length
            index += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[25, 50, 100, 200, 400], help="genome sizes in Mb")
    parser.add_argument("--record-mb", type=int, default=10)
    parser.add_argument("--k", type=int, nargs="+", default=[1, 6])
    parser.add_argument("--json", default="bench/out/prepare.json")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for size in args.sizes:
            fasta = Path(scratch) / f"generated_{size}Mb.fa"
            write_genome(fasta, size, args.record_mb)
            for k in args.k:
                cache = Path(scratch) / f"cache-{size}-{k}"
                code = CHILD.format(root=str(ROOT), fasta=str(fasta), k=k, cache=str(cache))
                output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
                seconds, peak_mb, tokens = output.stdout.split()
                row = {
                    "megabases": size,
                    "record_mb": args.record_mb,
                    "k": k,
                    "seconds": round(float(seconds), 2),
                    "mb_per_s": round(size / float(seconds), 2),
                    "peak_rss_mb": round(float(peak_mb)),
                    "tokens": int(tokens),
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
            fasta.unlink()
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
