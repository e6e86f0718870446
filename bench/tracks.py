"""Per-base tracks: the cheap logprob track against the exact llr track, for speed, memory and agreement.

    python bench/tracks.py speed runs/MT-human/model --region MT_human:3001-4000 --threads 1
    python bench/tracks.py quality runs/MT-human/model --region MT_human:3001-4000 --threads 1
    python bench/tracks.py figure runs/MT-human/model      # docs/img/mt_tl1_tracks.png

`speed` computes both tracks of one region in this process, each timed on its own, alternating in
--slices pieces as bench/scoring.py does (the llr track is the scorer's mutagenesis: 3 SNVs per
base, shared windows and prefix reuse): bases per second of each and their ratio. Then the peak
resident memory of writing the logprob track (bigWig) over two regions of --memory-genome, each
in a fresh process (VmHWM, torch's import included): flat in region length when the two agree.
Last, the rank agreement of the two tracks over the region (below).

`quality` compares what the two tracks rank: the Spearman correlation over every SNV of the
region of (a) logp_ALT - logp_REF (the cheap track) with (b) llr_ALT (the exact one); and the
AUROC (positive = pathogenic, score = minus the value: lower = more damaging) of each on the
MITOMAP pathogenic-against-common SNVs of data/mitomap_labelled.tsv (bench/mitomap.py build). It
also scores those SNVs in bf16 autocast on this CPU (`precision="bf16"`, a proxy of CUDA's bf16)
and reports the llr difference to float32 and the AUROC in bf16. Both append a JSON line.

`figure` draws both tracks around MT-TL1 (the tRNA of m.3243A>G) for the README.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import glm
from glm.io.coordinates import parse_region, to_one_based
from glm.io.genome import Genome
from glm.io.variant_readers import read_variants
from glm.io.variants import VariantList
from glm.scoring import score_variants
from glm.scoring.plan import make_plan
from glm.scoring.tracks import track_pieces, write_tracks

ROOT = Path(__file__).resolve().parent.parent


def region_values(lm, genome: Genome, region: tuple[str, int, int], method: str, precision: str) -> np.ndarray:
    plan = make_plan(lm.model, lm.tokenizer, batch_size=lm.batch_size, precision=precision)
    return np.concatenate(
        [piece.values for piece in track_pieces(lm.model, lm.tokenizer, genome, [region], method, plan)]
    )


def cheap_and_exact(logprob: np.ndarray, llr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per SNV (every base with both tracks, each of its 3 alternatives): logp_ALT - logp_REF, llr_ALT, and
    the offset of its base in the region."""
    cheap = logprob[:, :4] - logprob[:, 4:5]
    alternative = (llr[:, :4] != 0) & np.isfinite(llr[:, :4]) & np.isfinite(cheap)
    return cheap[alternative], llr[:, :4][alternative], np.nonzero(alternative)[0]


def spearman_by_phase(cheap: np.ndarray, exact: np.ndarray, positions: np.ndarray, k: int) -> list[float]:
    """Spearman of the SNVs at positions p with p mod k = 0, 1, ..: the llr of a k-mer model swings with it."""
    return [float(spearmanr(cheap[positions % k == p], exact[positions % k == p]).statistic) for p in range(k)]


def speed(args: argparse.Namespace) -> dict:
    lm = glm.load(args.model, device=args.device)
    genome = Genome(args.genome)
    contig, start, end = parse_region(args.region, genome.lengths, str(genome.path))
    seconds, values = {"logprob": 0.0, "llr": 0.0}, {"logprob": [], "llr": []}
    size = -(-(end - start) // args.slices)
    for index, first in enumerate(range(start, end, size)):
        piece = (contig, first, min(first + size, end))
        for method in ("logprob", "llr") if index % 2 == 0 else ("llr", "logprob"):
            began = time.perf_counter()
            values[method].append(region_values(lm, genome, piece, method, args.precision))
            seconds[method] += time.perf_counter() - began
        print(f"  slice {index + 1}: logprob {seconds['logprob']:6.2f} s, llr {seconds['llr']:7.1f} s so far")
    cheap, exact, _ = cheap_and_exact(np.concatenate(values["logprob"]), np.concatenate(values["llr"]))
    memory = {length: memory_child(args, length) for length in args.memory_lengths}
    bases = end - start
    return {
        "model": args.model,
        "region": args.region,
        "device": str(lm.device),
        "precision": args.precision,
        "threads": torch.get_num_threads(),
        "logprob_bases_per_s": bases / seconds["logprob"],
        "llr_bases_per_s": bases / seconds["llr"],
        "logprob_over_llr": seconds["llr"] / seconds["logprob"],
        "spearman_snvs": float(spearmanr(cheap, exact).statistic),
        "snvs": len(cheap),
        "logprob_peak_mb_by_region_bases": memory,
    }


def memory_child(args: argparse.Namespace, length: int) -> float:
    """Peak MB of a fresh process writing the logprob bigWig over the first `length` bases of --memory-genome."""
    with tempfile.TemporaryDirectory() as folder:
        command = [
            sys.executable,
            __file__,
            "child",
            args.model,
            "--genome",
            args.memory_genome,
            "--device",
            args.device,
        ]
        command += ["--bases", str(length), "--out", str(Path(folder) / "t.bw"), "--threads", str(args.threads or 1)]
        done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
    return float(done.stdout.split()[-1])


def child(args: argparse.Namespace) -> None:
    from bench.peak_memory import peak_mb

    lm = glm.load(args.model, device=args.device)
    genome = Genome(args.genome)
    contig = genome.names[0]
    plan = make_plan(lm.model, lm.tokenizer, batch_size=lm.batch_size)
    write_tracks(lm.model, lm.tokenizer, genome, [(contig, 0, args.bases)], args.out, "logprob", plan, args.model)
    print("peak_mb", peak_mb())


def quality(args: argparse.Namespace) -> dict:
    from glm.heads.evaluation import score_metrics

    lm = glm.load(args.model, device=args.device)
    genome = Genome(args.genome)
    region = parse_region(args.region, genome.lengths, str(genome.path))
    cheap, exact, at = cheap_and_exact(*(region_values(lm, genome, region, m, "float32") for m in ("logprob", "llr")))
    every = read_variants(args.labelled, genome, {"MT": genome.names[0]})
    labelled = VariantList([v for v in every if v.kind == "SNV"], every.header_lines, every.source)
    truth = np.array([variant.fields["label"] == "pathogenic" for variant in labelled])
    logprob = region_values(lm, genome, (genome.names[0], 0, genome.lengths[genome.names[0]]), "logprob", "float32")
    sites = np.array([variant.pos for variant in labelled])
    cheap_labelled = logprob[sites, ["ACGT".index(v.alt) for v in labelled]] - logprob[sites, 4]
    llr = {p: score_variants(lm.model, lm.tokenizer, labelled, genome, precision=p)["llr"] for p in ("float32", "bf16")}
    difference = np.abs(llr["bf16"] - llr["float32"])
    return {
        "model": args.model,
        "spearman_region": args.region,
        "spearman_snvs": float(spearmanr(cheap, exact).statistic),
        "snvs": len(cheap),
        "spearman_snvs_by_position_mod_k": spearman_by_phase(cheap, exact, at + region[1], lm.tokenizer.k),
        "mitomap_snvs": len(labelled),
        "pathogenic": int(truth.sum()),
        "auroc_logprob": score_metrics(truth, -cheap_labelled),
        "auroc_llr": score_metrics(truth, -llr["float32"]),
        "spearman_mitomap_logprob_llr": float(spearmanr(cheap_labelled, llr["float32"]).statistic),
        "auroc_llr_bf16_cpu_autocast": score_metrics(truth, -llr["bf16"]),
        "bf16_cpu_llr_abs_difference": {
            "max": float(difference.max()),
            "mean": float(difference.mean()),
            "mean_abs_llr": float(np.abs(llr["float32"]).mean()),
            "spearman_bf16_float32": float(spearmanr(llr["bf16"], llr["float32"]).statistic),
        },
    }


def figure(args: argparse.Namespace) -> None:
    from glm.plots import plot_tracks

    lm = glm.load(args.model, device=args.device)
    genome = Genome(args.genome)
    contig, start, end = parse_region(args.figure_region, genome.lengths, str(genome.path))
    logprob, llr = (region_values(lm, genome, (contig, start, end), m, "float32") for m in ("logprob", "llr"))
    alternatives = logprob[:, :4] - logprob[:, 4:5]
    tracks = {
        "logp_ref\n(logprob)": logprob[:, 4],
        "mean logp_ALT\n- logp_REF": alternatives.sum(1) / 3,  # the three alternatives (the reference adds 0)
        "llr_mean\n(llr)": llr[:, 4],
    }
    features = [(3230, 3304, "MT-TL1"), (3307, end, "MT-ND1")]  # rCRS coordinates, 1-based
    plot_tracks(
        to_one_based(np.arange(start, end)), tracks, args.figure_out, f"{args.figure_region}: {args.model}", features
    )
    print(f"figure -> {args.figure_out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["speed", "quality", "figure", "child"])
    parser.add_argument("model")
    parser.add_argument("--genome", default=str(ROOT / "data" / "MT-human.fa"))
    parser.add_argument("--region", default="MT_human:3001-4000")
    parser.add_argument("--slices", type=int, default=4, help="pieces of the region, each timed both ways")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="float32", choices=["float32", "bf16"])
    parser.add_argument("--memory-genome", default=str(ROOT / "data" / "ecoli_K12_MG1655.fa.gz"))
    parser.add_argument("--memory-lengths", type=int, nargs="+", default=[100_000, 400_000])
    parser.add_argument("--labelled", default=str(ROOT / "data" / "mitomap_labelled.tsv"))
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--bases", type=int, help=argparse.SUPPRESS)  # child: bases of the first record
    parser.add_argument("--out", help=argparse.SUPPRESS)  # child: the bigWig
    parser.add_argument("--figure-region", default="MT_human:3181-3360")
    parser.add_argument("--figure-out", default=str(ROOT / "docs" / "img" / "mt_tl1_tracks.png"))
    parser.add_argument("--json", default=str(ROOT / "bench" / "out" / "tracks.json"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.command in ("child", "figure"):
        (child if args.command == "child" else figure)(args)
        return
    result = speed(args) if args.command == "speed" else quality(args)
    result["command"] = args.command
    print(json.dumps(result, indent=2))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    with open(args.json, "a") as handle:
        handle.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
