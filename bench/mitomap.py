"""MITOMAP: confirmed pathogenic mtDNA variants against common polymorphisms, zero-shot and with heads.

    python bench/mitomap.py build                      # writes data/mitomap_labelled.tsv from ../shared/data
    python bench/mitomap.py evaluate runs/MT-human/model

`build` labels MITOMAP's confirmed pathogenic mutations "pathogenic" and its polymorphisms with
allele frequency >= 1% of GenBank genomes "common" (a variant in both lists is dropped from both),
and groups every variant by its 1-kb block of the mitochondrial genome (positions 1-1000 are
block 0, ...) so grouped cross-validation keeps neighbouring variants out of the fold that scores
them. `evaluate` reports AUROC and AUPRC (positive = pathogenic), each with a 95% bootstrap interval
over the variants, of the zero-shot scores
(-llr: lower llr = more damaging; embedding distances) and the out-of-fold metrics of variant
heads (logistic and boosting on the five scores, logistic on scores + embedding delta) with 5-fold
CV grouped by block (AUROC/AUPRC/MCC with intervals and per-fold values, and the head's paired
difference from -llr on the same variants); it appends one JSON line per run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import glm
from glm.heads.evaluation import score_metrics
from glm.heads.settings import VariantHeadSettings
from glm.heads.variant_heads import fit_variant_head
from glm.io.genome import Genome
from glm.io.variant_readers import read_variants

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data" / "variants" / "mitomap"
GENOME = ROOT / "data" / "MT-human.fa"
LABELLED = ROOT / "data" / "mitomap_labelled.tsv"
ALIASES = {"MT": "MT_human"}
MIN_AF_PERCENT = 1.0


def build(out: Path) -> None:
    genome = Genome(GENOME)
    confirmed = read_variants(SHARED / "mitomap_confirmed_mutations.vcf.gz", genome, ALIASES)
    polymorphisms = read_variants(SHARED / "mitomap_polymorphisms.vcf.gz", genome, ALIASES)
    key = lambda v: (v.pos, v.ref, v.alt)  # noqa: E731
    common = [v for v in polymorphisms if not v.status and float(v.fields.get("AF", "0")) >= MIN_AF_PERCENT]
    both = {key(v) for v in confirmed} & {key(v) for v in common}
    rows = [(v, "pathogenic", v.fields.get("Locus", "")) for v in confirmed if key(v) not in both and not v.status]
    rows += [(v, "common", "") for v in common if key(v) not in both]
    rows.sort(key=lambda row: key(row[0]))
    lines = ["chrom\tpos\tref\talt\tlabel\tblock\tlocus\taf_percent"]
    for variant, label, locus in rows:
        cells = [variant.chrom, variant.pos + 1, variant.ref, variant.alt, label, variant.pos // 1000, locus]
        lines.append("\t".join(map(str, [*cells, variant.fields.get("AF", "")])))
    out.write_text("\n".join(lines) + "\n")
    labels = [label for _, label, _ in rows]
    print(
        f"{out}: {labels.count('pathogenic')} pathogenic, {labels.count('common')} common (AF >= {MIN_AF_PERCENT}%); "
        f"{len(both)} in both lists dropped"
    )


def evaluate(model: str, labelled: Path, json_path: Path) -> None:
    lm = glm.load(model, device="cpu")
    genome = Genome(GENOME)
    variants = read_variants(labelled, genome, ALIASES)
    scores = lm.score_variants(variants, genome, method=["llr", "embedding"], progress=True)
    truth = np.array([v.fields["label"] == "pathogenic" for v in variants])
    scored = np.isfinite(scores["llr"])
    result: dict[str, object] = {
        "model": model,
        "variants": int(scored.sum()),
        "pathogenic": int(truth[scored].sum()),
        "common": int((~truth[scored]).sum()),
    }
    zero_shot = {
        "-llr": -scores["llr"],
        "embedding_cosine": scores["embedding_cosine"],
        "embedding_l2": scores["embedding_l2"],
    }
    for name, values in zero_shot.items():
        result[f"zero_shot {name}"] = score_metrics(truth[scored], values[scored])
    for variant, value in zip(variants, scores["llr"]):  # a column the heads compare themselves with
        variant.fields["llr"] = f"{value:.9g}"
    for kind, features in (("logistic", "scores"), ("boosting", "scores"), ("logistic", "all")):
        out = ROOT / "bench" / "out" / f"mitomap_head_{kind}_{features}"
        report = fit_variant_head(
            lm.model,
            lm.tokenizer,
            variants,
            genome,
            # baselines: the zero-shot score, on the same variants
            VariantHeadSettings(label="label", group="block", kind=kind, features=features, baselines=["-llr"]),
            out=out,
            progress=True,
        )
        result[f"head {kind} on {features} (5-fold CV grouped by 1-kb block)"] = {
            **{key: report.cv.metrics[key] for key in ("auroc", "auprc", "accuracy", "mcc")},
            "intervals": report.cv.intervals,
            "fold_metrics": report.cv.fold_metrics,
            "minus_zero_shot_llr": report.baselines["-llr"]["difference"],
        }
        print(report.summary())
    print(json.dumps(result, indent=2))
    json_path.parent.mkdir(parents=True, exist_ok=True)
    with open(json_path, "a") as handle:
        handle.write(json.dumps(result) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("build")
    make.add_argument("--out", type=Path, default=LABELLED)
    run = commands.add_parser("evaluate")
    run.add_argument("model")
    run.add_argument("--labelled", type=Path, default=LABELLED)
    run.add_argument("--json", type=Path, default=ROOT / "bench" / "out" / "mitomap.json")
    args = parser.parse_args()
    if args.command == "build":
        build(args.out)
    else:
        evaluate(args.model, args.labelled, args.json)


if __name__ == "__main__":
    main()
