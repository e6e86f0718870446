"""Peak memory against input size: prepare against record length, score against variant count.

    python bench/memory_scale.py --out bench/out/memory --records 10 50 250 --variants 5000 50000

Generated data (random bases, random SNVs; nothing committed). Each measurement runs in a fresh
process (`python -c`) that reports its own peak resident memory (VmHWM), torch's
import included, and the seconds of the work alone (after the imports). Prepare starts from
nothing, as on first use: no token cache and no `.fai` (so the index build and the validating
scan are timed too). The claims checked: prepare's peak does not grow with the longest record
(issue 11: a 250 Mb record within ~100 MB of a 10 Mb one) and score's peak does not grow with
the number of variants (it reads, scores and writes in chunks of 10,000).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "tests" / "data" / "model_format1"


def child(setup: str, work: str) -> tuple[float, float]:
    """(seconds of `work`, peak MB) in a fresh `python -c` process, which reports its own peak (VmHWM).

    `setup` (the imports: torch among them) runs before the clock starts; the peak includes it.
    """
    code = (
        f"{setup}; import time; from bench.peak_memory import peak_mb; started = time.perf_counter(); {work}; "
        "print('seconds', time.perf_counter() - started, 'peak_mb', peak_mb())"
    )
    done = subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, capture_output=True, text=True)
    _, seconds, _, peak = done.stdout.split()[-4:]
    return float(seconds), float(peak)


def write_genome(path: Path, megabases: int, seed: int = 0) -> None:
    """One random record of `megabases` Mb, 60 bases a line (regular, as real assemblies are)."""
    rng = np.random.default_rng(seed)
    with open(path, "wb") as handle:
        handle.write(b">chr1\n")
        carry = b""
        for _ in range(megabases):
            bases = carry + np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, size=1_000_000)].tobytes()
            cut = len(bases) // 60 * 60
            handle.write(b"".join(bases[i : i + 60] + b"\n" for i in range(0, cut, 60)))
            carry = bases[cut:]
        handle.write(carry + b"\n" if carry else b"")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="bench/out/memory")
    parser.add_argument("--records", type=int, nargs="+", default=[10, 50, 250], help="record lengths, Mb")
    parser.add_argument("--variants", type=int, nargs="*", default=[5000, 50000])
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for megabases in args.records:
        fasta = out / f"record_{megabases}mb.fa"
        if not fasta.exists():
            write_genome(fasta, megabases)
        setup = "from glm.model.tokenizers import KmerTokenizer; from glm.training.data import prepare"
        work = f"prepare({str(fasta)!r}, KmerTokenizer(3), {str(out / 'cache')!r}, progress=False)"
        # prepare for real, as on first use: neither the token cache nor the FASTA's index exists yet
        subprocess.run(["rm", "-rf", str(out / "cache"), f"{fasta}.fai"], check=True)
        seconds, peak = child(setup, work)
        rows.append({"what": "prepare", "record_mb": megabases, "seconds": seconds, "peak_mb": peak,
                     "mb_per_s": megabases / seconds})  # fmt: skip
        print(json.dumps(rows[-1]))
    genome = out / f"record_{args.records[0]}mb.fa"
    length = args.records[0] * 1_000_000
    for count in args.variants:
        table = out / f"snvs_{count}.tsv"
        rng = np.random.default_rng(count)
        positions = np.sort(rng.integers(100, length - 100, size=count))
        with open(table, "w") as handle:  # REF is taken from the genome below, so every row is valid
            handle.write("chrom\tpos\tref\talt\n")
        code = (
            "import numpy as np; from glm.io.genome import Genome; "
            f"g = Genome({str(genome)!r}); positions = np.load({str(out / 'p.npy')!r}); "
            f"f = open({str(table)!r}, 'a'); "
            '[f.write(f\'chr1\\t{p + 1}\\t{b}\\t{"A" if b != "A" else "C"}\\n\') '
            "for p in positions for b in [g.fetch('chr1', int(p), int(p) + 1).upper()]]; f.close()"
        )
        np.save(out / "p.npy", positions)
        subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
        score = (
            f"assert main(['score', {str(MODEL)!r}, '--genome', {str(genome)!r}, '--variants', {str(table)!r}, "
            f"'--out', {str(out / f'scores_{count}.tsv')!r}, '--quiet', '--device', 'cpu']) == 0"
        )
        seconds, peak = child("from glm.commands import main", score)
        rows.append({"what": "score", "variants": count, "seconds": seconds, "peak_mb": peak,
                     "variants_per_s": count / seconds})  # fmt: skip
        print(json.dumps(rows[-1]))
    (out / "results.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
