"""Training and eval speed on a shared machine: glm's thread policy against torch's default threads,
under a background load this benchmark starts itself (0, 1, 2 busy processes).

    python bench/threads.py                      # docs/BENCHMARKS.md, "Threads on a shared machine"
    python bench/threads.py --busy 0 1 --steps 10

Each row runs one glm command in a fresh interpreter (thread settings cannot leak between rows),
timed around glm.commands.main: `pretrain data/phiX174.fa` (tiny preset, --steps steps, no
validation; tokens/s over the whole command, setup included) and `eval MODEL data/lambda_virus.fa`
(bases/s) on a model the benchmark trains first. "policy" passes no --threads (glm.threads decides);
"default" passes torch's thread count at start, what glm used before it had a policy. The busy
processes are `python -c "while True: pass"` children, killed after each row. The machine may be
shared: the 1-minute load average before each row is printed, and a row whose ratio looks
disturbed can be repeated with --repeat.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAMBDA = ROOT / "data" / "lambda_virus.fa"
PHIX = ROOT / "data" / "phiX174.fa"

# Run in the child: glm's command, timed from just before main (imports excluded), and the threads used.
CHILD = """
import json, sys, time, torch
sys.path.insert(0, {root!r})
from glm.commands import main
argv = {argv!r}
if {default}:
    argv += ["--threads", str(torch.get_num_threads())]  # torch's default: what glm did before its policy
started = time.perf_counter()
assert main(argv) == 0, argv
print(json.dumps({{"seconds": time.perf_counter() - started, "threads": torch.get_num_threads()}}))
"""


def run_child(argv: list[str], default: bool, busy: int) -> dict:
    """One glm command in a fresh interpreter beside `busy` spinning processes."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
    try:
        load = os.getloadavg()[0]
        code = CHILD.format(root=str(ROOT), argv=argv, default=default)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
    return {"load": load, **json.loads(out.stdout.strip().splitlines()[-1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busy", type=int, nargs="+", default=[0, 1, 2], help="busy background processes")
    parser.add_argument("--steps", type=int, default=20, help="training steps of each pretrain row")
    parser.add_argument("--batch-size", type=int, default=8, help="windows per training step")
    parser.add_argument("--repeat", type=int, default=1, help="runs per row (the fastest is kept)")
    parser.add_argument("--json", type=Path, help="append the rows as JSON lines")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="glm-threads-"))
    tokens = args.steps * args.batch_size * 256  # the tiny preset's context
    train = ["pretrain", str(PHIX), "--max-steps", str(args.steps), "--batch-size", str(args.batch_size)]
    train += ["--val-every", "100000", "--quiet", "--seed", "0"]
    model = work / "model-run"
    subprocess.run([sys.executable, str(ROOT / "cli.py"), *train, "--out", str(model)], check=True, capture_output=True)
    tasks = {
        "pretrain tokens/s": (lambda i: [*train, "--out", str(work / f"run{i}")], tokens),
        "eval bases/s": (lambda i: ["eval", str(model / "model"), str(LAMBDA), "--quiet"], LAMBDA.stat().st_size),
    }
    rows = []
    idle: dict[tuple[str, str], float] = {}
    print(f"{'task':18} {'threads':8} {'busy':>4} {'load':>5} {'used':>4} {'rate':>8} {'vs idle':>7}", flush=True)
    for busy in args.busy:
        for task, (argv, amount) in tasks.items():
            for mode in ("default", "policy"):
                runs = [run_child(argv(len(rows) * 10 + r), mode == "default", busy) for r in range(args.repeat)]
                best = min(runs, key=lambda run: run["seconds"])
                rate = amount / best["seconds"]
                idle.setdefault((task, mode), rate) if busy == 0 else None
                ratio = rate / idle[(task, mode)] if (task, mode) in idle else float("nan")
                row = {"task": task, "mode": mode, "busy": busy, **best, "rate": rate, "vs_idle": ratio}
                rows.append(row)
                print(
                    f"{task:18} {mode:8} {busy:>4} {best['load']:5.2f} {best['threads']:>4} {rate:8.0f} {ratio:7.2f}",
                    flush=True,
                )
    if args.json:
        with args.json.open("a") as out:
            out.writelines(json.dumps(row) + "\n" for row in rows)


if __name__ == "__main__":
    main()
