"""Scoring on several processes: variants/s of `glm score` on 1 and 2 processes, 1 thread each, side by side.

    python bench/sharded_scoring.py [MODEL] --genome data/MT-human.fa --region MT_human:1-12000 --chunk-size 1000

The SNVs of the region (saturation mutagenesis: 3 per base) are written to a TSV, then scored by
the `score` command as users run it, in a fresh process: `--devices 1`, and `--devices 2` (Lightning
starts the second process; gloo on CPU), each process with one thread (OMP_NUM_THREADS=1,
--threads 1), llr on both strands. The rounds alternate which goes first (--repeats). The time is
the command's wall clock: start-up (Python, torch, Lightning and the process group for 2), model
load, reading, scoring, formatting and joining the parts. The start-up alone is measured too, on
one chunk of the same input, and the rates less it are reported too (what a longer input
approaches: on a busy machine importing Lightning alone can take 10 s a process, and the second
process starts after the first has imported it). The two outputs must be byte-identical.
The goal is 2 processes >= 1.8x the variants/s of 1 (docs/BENCHMARKS.md): with about 10 s of
start-up for 2 processes that needs some 3 minutes of work on one, hence the default region
(36,000 SNVs, 36 chunks; about 3 minutes at 200 variants/s). Without a model
directory a randomly initialised model of the tiny preset is used (speed does not depend on the weights).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from scoring import tiny_model  # noqa: E402 - bench/scoring.py, beside this file

from glm.io.coordinates import parse_region  # noqa: E402
from glm.io.genome import Genome  # noqa: E402
from glm.io.variant_writer import write_variants  # noqa: E402
from glm.model.checkpoint import export_model  # noqa: E402
from glm.scoring import mutagenesis_variants  # noqa: E402

ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))


def score_command(model: Path, genome: str, variants: Path, out: Path, processes: int, chunk_size: int) -> list[str]:
    """The `glm score` command line on `processes` processes, 1 thread each."""
    command = [sys.executable, str(ROOT / "cli.py"), "score", str(model), "--genome", genome, "--variants"]
    command += [str(variants), "--out", str(out), "--chunk-size", str(chunk_size), "--devices", str(processes)]
    return [*command, "--device", "cpu", "--threads", "1", "--quiet"]


def timed_runs(*commands: list[str]) -> float:
    """Seconds until every command, all started at once, has finished."""
    start = time.perf_counter()
    running = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
        for command in commands
    ]
    for command, process in zip(commands, running):
        _, stderr = process.communicate()
        if process.returncode:
            sys.exit(f"FAIL: {' '.join(command)}\n{stderr[-3000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", help="exported model directory (default: random tiny preset)")
    parser.add_argument("--genome", default="data/MT-human.fa")
    parser.add_argument("--region", default="MT_human:1-12000")
    parser.add_argument("--chunk-size", type=int, default=1000, help="variants per chunk (shard)")
    parser.add_argument("--repeats", type=int, default=1, help="rounds of 1 and 2 processes, alternating order")
    parser.add_argument("--ceiling", action="store_true", help="also time two independent 1-process runs at once")
    parser.add_argument("--json", default="bench/out/sharded_scoring.json")
    args = parser.parse_args()

    genome = Genome(args.genome)
    variants = mutagenesis_variants(genome, *parse_region(args.region, genome.lengths, args.genome))
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        model = Path(args.model) if args.model else None
        if model is None:
            lm = tiny_model()
            model = export_model(work / "model", lm.model, lm.tokenizer)
        table = write_variants(variants, None, work / "variants.tsv")
        first = write_variants(variants[:1], None, work / "one.tsv")
        print(f"{len(variants)} SNVs in {args.region}, chunks of {args.chunk_size}; 1 thread a process")
        seconds: dict[int, list[float]] = {1: [], 2: []}
        start_up: dict[int, float] = {}
        for round_number in range(args.repeats):
            for processes in (1, 2) if round_number % 2 == 0 else (2, 1):
                out = work / f"out{processes}.tsv"
                command = score_command(model, args.genome, table, out, processes, args.chunk_size)
                seconds[processes].append(timed_runs(command))
                print(f"  round {round_number + 1}, {processes} process(es): {seconds[processes][-1]:.1f} s")
        for processes in (1, 2):
            start_up[processes] = timed_runs(score_command(model, args.genome, first, work / "start.tsv", processes, 1))
        if args.ceiling:  # two independent one-process runs at once: what this machine gives two processes
            pair = [
                score_command(model, args.genome, table, work / f"alone{n}.tsv", 1, args.chunk_size) for n in (1, 2)
            ]
            ceiling_seconds = timed_runs(*pair)
        identical = (work / "out1.tsv").read_bytes() == (work / "out2.tsv").read_bytes()

    rate = {processes: len(variants) * len(times) / sum(times) for processes, times in seconds.items()}
    # The same less the start-up: the rate of the work itself, which a longer input approaches.
    net = {
        processes: len(variants) * len(times) / (sum(times) - len(times) * start_up[processes])
        for processes, times in seconds.items()
    }
    result = {
        "model": args.model or "random tiny preset",
        "region": args.region,
        "variants": len(variants),
        "chunk_size": args.chunk_size,
        "repeats": args.repeats,
        "variants_per_s_1_process": rate[1],
        "variants_per_s_2_processes": rate[2],
        "speedup": rate[2] / rate[1],
        "start_up_s_1_process": start_up[1],
        "start_up_s_2_processes": start_up[2],
        "variants_per_s_1_process_after_start_up": net[1],
        "variants_per_s_2_processes_after_start_up": net[2],
        "speedup_after_start_up": net[2] / net[1],
        "byte_identical": identical,
    }
    if args.ceiling:  # the machine's own limit for two processes (shared caches, memory bandwidth, clocks)
        result["ceiling_speedup_two_independent_runs"] = 2 * len(variants) / ceiling_seconds / rate[1]
    print(json.dumps(result, indent=2))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    with open(args.json, "a") as handle:
        handle.write(json.dumps(result) + "\n")
    if not identical:
        sys.exit("FAIL: the outputs of 1 and 2 processes differ")


if __name__ == "__main__":
    main()
