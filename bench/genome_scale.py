"""Genome-scale I/O: open time, windows/s (vs pyfaidx/pysam when importable), score memory, rate and the
share of its time outside the model (`score` times glm.scoring.passes.score_pairs, the forward passes).

Generates a human-shaped assembly (chromosomes scaled down from --largest, plus small contigs),
plain and BGZF, and SNVs across all contigs; nothing is committed. Each measurement runs in a
fresh process so peak memory (VmHWM, bench/peak_memory.py) is its own. Results: docs/BENCHMARKS.md.

    python bench/genome_scale.py --out bench/out/scale --largest 50_000_000 --chromosomes 24 --contigs 100
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path

from Bio import bgzf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.peak_memory import peak_mb  # noqa: E402


def generate(out: Path, largest: int, chromosomes: int, contigs: int, variants: int) -> dict:
    """Write the assembly (plain and BGZF) and pick variant sites; reused when `out` holds the same one."""
    layout = out / "layout.json"
    asked = [largest, chromosomes, contigs, variants]
    if layout.exists() and (known := json.loads(layout.read_text()))["asked"] == asked:
        known["rows"] = [tuple(row) for row in known["rows"]]
        return known
    rng = random.Random(0)
    lengths = {f"chr{i + 1}": int(largest * (1 - 0.8 * i / chromosomes)) for i in range(chromosomes)}
    lengths.update({f"chrUn_KI27{i:04d}v1": rng.randint(2_000, 200_000) for i in range(contigs)})
    plain, packed = out / "genome.fa", out / "genome.fa.gz"
    block = "".join(rng.choice("ACGTacgt") for _ in range(1 << 16)) + "N" * 1000
    with open(plain, "w") as handle, bgzf.BgzfWriter(packed, "wb") as writer:
        for name, length in lengths.items():
            text = [f">{name}\n"]
            for start in range(0, length, 60):
                offset = (start * 7919 + len(name)) % (len(block) - 60)
                text.append(block[offset : offset + min(60, length - start)] + "\n")
            chunk = "".join(text)
            handle.write(chunk)
            writer.write(chunk.encode())
    names = list(lengths)
    rows = sorted(
        (name, rng.randrange(1, lengths[name]))
        for name in rng.choices(names, weights=list(lengths.values()), k=variants)
    )
    data = {"asked": asked, "plain": str(plain), "bgzf": str(packed), "lengths": lengths, "rows": rows}
    layout.write_text(json.dumps(data))
    return data


def measure(kind: str, args: list[str]) -> dict:
    """Run one measurement in a fresh interpreter; returns its JSON plus peak RSS in MB."""
    code = f"import sys; sys.path.insert(0, {str(ROOT)!r}); import bench.genome_scale as b; b.{kind}(*sys.argv[1:])"
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _report(values: dict) -> None:
    values["peak_mb"] = peak_mb()
    print(json.dumps(values))


def open_and_fetch(path: str, library: str, windows: str) -> None:
    spans = json.loads(Path(windows).read_text())
    from glm.io.genome import Genome  # imports (torch, via glm) before the clock starts

    start = time.perf_counter()
    if library == "glm":
        genome = Genome(path)
        fetch = genome.fetch
    elif library == "pyfaidx":
        import pyfaidx

        fasta = pyfaidx.Fasta(path, as_raw=True)
        fetch = lambda name, a, b: fasta[name][a:b]  # noqa: E731
    else:
        import pysam

        fasta = pysam.FastaFile(path)
        fetch = lambda name, a, b: fasta.fetch(name, a, b)  # noqa: E731
    opened = time.perf_counter() - start
    start = time.perf_counter()
    total = sum(len(fetch(name, a, b)) for name, a, b in spans)
    elapsed = time.perf_counter() - start
    _report({"open_s": opened, "windows_per_s": len(spans) / elapsed, "bases": total})


def random_model(directory: str, preset: str = "tiny", **shape: int) -> None:
    """Export a randomly initialised model of `preset`'s shape (speed does not depend on the weights)."""
    import torch

    from glm.config import load_config
    from glm.model.checkpoint import export_model
    from glm.model.tokenizers import build_tokenizer
    from glm.model.transformer import Transformer

    config = load_config(preset)
    tokenizer = build_tokenizer(config.data)
    overrides = {"model.vocab_size": tokenizer.vocab_size, **{f"model.{key}": value for key, value in shape.items()}}
    config = config.with_overrides(overrides)
    torch.manual_seed(0)
    export_model(directory, Transformer(config.model), tokenizer, {"note": f"random weights, {preset} shape"})


def score(model: str, genome: str, variants: str, out: str, *regions: str) -> None:
    """Score a file; time inside the forward passes (glm.scoring.passes.score_pairs) against the whole run."""
    import glm
    import glm.scoring.zero_shot as zero_shot
    from glm.io.genome import Genome
    from glm.io.variants import resolve_regions

    inside = [0.0]
    score_pairs = zero_shot.score_pairs

    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return score_pairs(*args, **kwargs)
        finally:
            inside[0] += time.perf_counter() - started

    zero_shot.score_pairs = timed
    lm = glm.load(model, device="cpu")
    start = time.perf_counter()
    reference = Genome(genome)
    counts, _ = lm.score_file(variants, reference, out, regions=resolve_regions(regions, reference))
    elapsed = time.perf_counter() - start
    _report({"variants": counts.total, "variants_per_s": counts.total / elapsed, "seconds": elapsed,
             "model_s": inside[0], "outside_model_share": 1 - inside[0] / elapsed})  # fmt: skip


def read_regions(genome: str, variants: str, *regions: str) -> None:
    """Seconds to read the variants of `regions` (through the input's tabix index when it has one)."""
    from glm.io.genome import Genome
    from glm.io.variant_readers import read_variant_chunks
    from glm.io.variants import resolve_regions

    reference = Genome(genome)
    start = time.perf_counter()
    rows = sum(
        len(chunk) for chunk in read_variant_chunks(variants, reference, regions=resolve_regions(regions, reference))
    )
    _report({"rows": rows, "seconds": time.perf_counter() - start})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="bench/out/scale")
    parser.add_argument("--largest", type=int, default=50_000_000)
    parser.add_argument("--chromosomes", type=int, default=24)
    parser.add_argument("--contigs", type=int, default=100)
    parser.add_argument("--variants", type=int, default=2000)
    parser.add_argument("--model", default=None, help="exported model for the score rows (optional)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    data = generate(out, args.largest, args.chromosomes, args.contigs, args.variants)
    print(f"generated {sum(data['lengths'].values()) / 1e6:.0f} Mb in {time.perf_counter() - start:.0f} s")
    rng = random.Random(1)
    spans = []
    for name, pos in data["rows"][:2000]:
        low = max(0, pos - rng.randint(100, 500))
        spans.append((name, low, min(data["lengths"][name], low + 1000)))
    (out / "windows.json").write_text(json.dumps(spans))
    for label in ("plain", "bgzf"):
        for index in (".fai", ".gzi"):  # built below, on first use, as a user's first run builds it
            Path(data[label] + index).unlink(missing_ok=True)
        start = time.perf_counter()
        from glm.io.genome import Genome

        Genome(data[label])
        print(f"{label}: index built in {time.perf_counter() - start:.1f} s")
        for library in ("glm", "pyfaidx", "pysam"):
            try:
                result = measure("open_and_fetch", [data[label], library, str(out / "windows.json")])
            except subprocess.CalledProcessError as error:
                result = {"error": error.stderr.strip().splitlines()[-1]}
            print(f"  {library:8s} {result}")
    if args.model:
        table = out / "variants.tsv"
        lines = ["chrom\tpos\tref\talt"]
        genome = Genome(data["plain"])
        for name, pos in data["rows"]:
            ref = genome.fetch(name, pos - 1, pos).upper()
            if ref in "ACGT":
                lines.append(f"{name}\t{pos}\t{ref}\t{'C' if ref != 'C' else 'G'}")
        table.write_text("\n".join(lines) + "\n")
        print("score:", measure("score", [args.model, data["plain"], str(table), str(out / "scored.vcf.gz")]))


if __name__ == "__main__":
    main()
