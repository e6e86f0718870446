"""Sequence-classification benchmarks: k-mer baseline, frozen probe and fine-tuned glm head.

    python bench/classification.py --task prom_300_tata            # every stage of one task
    python bench/classification.py --task splice --stage kmer      # one stage
    python bench/classification.py --table                         # the markdown table of all results

Tasks (data in ../shared/data/classification; see docs/BENCHMARKS.md):
  prom_300_tata   GUE human TATA promoters, 300 bp, the GUE train/dev/test splits
  prom_core_all   GUE human core promoters, 70 bp, the GUE train/dev/test splits
  arabidopsis     CNNProm Arabidopsis TATA promoters vs non-promoters, 251 bp
  splice          UCI splice junctions, 60 nt, 3 classes (EI, IE, N)
The two sets without splits get a stratified 10% test split (seed 0); the k-mer baseline and the
probe are also 5-fold cross-validated on the remaining 90%.

Stages: pretrain (a small model on unlabelled sequences: the task's training split, or a genome),
kmer (k-mer frequencies 1..k + logistic regression, k picked on dev), probe (logistic regression
on the pretrained model's mean-pooled, strand-averaged final-layer embeddings) and finetune (the
whole model plus a linear head on the last token's state, early stopping on dev). Results go to
RESULTS/TASK/STAGE/metrics.json and summary.json; every AUROC, AUPRC and MCC carries a 95% bootstrap
interval over the test sequences (and per-fold values for cross-validation). --seeds N repeats the
finetune stage with N seeds and reports their mean and spread.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from glm.config import FinetuneConfig, TrainConfig  # noqa: E402
from glm.heads.evaluation import classification_metrics, cross_validate  # noqa: E402
from glm.heads.features import FeatureSpec, kmer_features  # noqa: E402
from glm.heads.probes import fit_head  # noqa: E402
from glm.heads.sequence_tasks import ProbeFitter, fit_classifier, seed_spread, split_off  # noqa: E402
from glm.io.sequences import read_sequences, write_fasta  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
CLASSIFICATION = DATA / "classification"
GUE = CLASSIFICATION / "gue"
CNNPROM = CLASSIFICATION / "cnnprom_umarov2016"

TASKS = {
    "prom_300_tata": {
        "splits": {s: [str(GUE / "prom_prom_300_tata" / f"{s}.csv.gz")] for s in ("train", "dev", "test")},
        "pretrain_on": "train",
        "k": 3,
        "published": "DNABERT-2 0.765, NT-v2 0.779, HyenaDNA 0.808, Caduceus 0.760, GROVER 0.780",
        "best_published": 0.808,
    },
    "prom_core_all": {
        "splits": {s: [str(GUE / "prom_prom_core_all" / f"{s}.csv.gz")] for s in ("train", "dev", "test")},
        "pretrain_on": "train",
        "k": 1,
        "published": "0.831-0.875",
        "best_published": 0.875,
    },
    "arabidopsis": {
        "inputs": [
            f"TATA={CNNPROM / 'Arabidopsis_tata.fa.gz'}",
            f"non_promoter={CNNPROM / 'Arabidopsis_non_prom.fa.gz'}",
        ],
        "pretrain_on": str(DATA / "genomes" / "A.thaliana_1pct_slices.fa.gz"),
        "k": 3,
        "published": "0.937-0.961",
        "best_published": 0.961,
    },
    "splice": {
        "inputs": [str(CLASSIFICATION / "uci_splice_junctions.tsv.gz")],
        # GUE's reconstructed splice set (human, 400 bp around splice sites), labels unused.
        "pretrain_on": [str(GUE / "splice_reconstructed" / f"{s}.csv.gz") for s in ("dev", "test")],
        "k": 1,
        "published": "none (UCI splice is not in the Nature Communications 2025 benchmark)",
        "best_published": None,
    },
}
# A quarter of the tiny preset's width: on this shared 2-core machine the tiny preset managed
# only 30-125 pretraining steps in 6 minutes, too few to learn anything.
PRETRAIN_SHAPE = {"model.n_layers": 4, "model.n_heads": 4, "model.width": 64, "model.context": 128}
KMER_K = (3, 4, 5)  # 1..6 lost to 1..4 on prom_300_tata dev (0.732 vs 0.787) and costs 4x the memory


def load_splits(task: dict) -> dict:
    """train/dev/test SequenceSets: the task's own splits, or a stratified 10% test of the whole set."""
    if "splits" in task:
        return {name: read_sequences(paths, labelled=True) for name, paths in task["splits"].items()}
    pool, test = split_off(read_sequences(task["inputs"], labelled=True), 0.1, seed=0)
    return {"train": pool, "dev": None, "test": test}


def pretrain_stage(name: str, task: dict, out: Path, minutes: float) -> None:
    from glm.training.pretrain import pretrain, resolve_config

    source = task["pretrain_on"]
    if source == "train" or isinstance(source, list):
        sequences = load_splits(task)["train"] if source == "train" else read_sequences(source)
        fasta = out / "pretrain.fa"
        write_fasta(sequences, fasta)
        source = fasta
    overrides = {
        "data.k": task["k"],
        **PRETRAIN_SHAPE,
        "train.max_time": f"{minutes}m",
        "train.max_steps": 100000,
    }
    config = resolve_config("tiny", overrides, out / "pretrain", resume=False)
    result = pretrain(source, config, out / "pretrain", progress=False)
    print(result.summary())


def kmer_stage(splits: dict, out: Path) -> dict:
    """k-mer baseline with the longest k-mer picked by dev AUROC (or 5-fold CV AUROC without a dev split)."""
    train, dev = splits["train"], splits["dev"]
    chosen, best = KMER_K[0], -1.0
    for k in KMER_K:
        features, _ = kmer_features(train.sequences, k)
        if dev is not None:
            head = fit_head(features, train.labels)
            probabilities = head.predict_proba(kmer_features(dev.sequences, k)[0])
            auroc = classification_metrics(dev.labels, probabilities, head.classes)["auroc"]
        else:
            auroc = cross_validate(features, train.labels, folds=5).metrics["auroc"]
        print(f"k-mer lengths 1..{k}: selection AUROC {auroc:.4f}")
        if auroc > best:
            chosen, best = k, auroc
    return probe_stage(splits, out, FeatureSpec("kmer", k=chosen))


def probe_stage(splits: dict, out: Path, spec: FeatureSpec) -> dict:
    fitter = ProbeFitter(spec, progress=False)
    results = fit_classifier(splits["train"], out, fitter, splits["dev"], splits["test"], progress=False)
    if splits["dev"] is None:  # also the cross-validated estimate on the 90% pool
        results["cv"] = fit_classifier(splits["train"], out / "cv", fitter, folds=5, progress=False)["cv"]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=sorted(TASKS))
    parser.add_argument("--stage", choices=["pretrain", "kmer", "probe", "finetune"], action="append")
    parser.add_argument("--results", default="runs/bench-classification", help="where runs and results go")
    parser.add_argument("--pretrain-minutes", type=float, default=5.0)
    parser.add_argument("--finetune-minutes", type=float, default=10.0)
    parser.add_argument("--finetune-pooling", choices=["last", "mean"], default="last")
    parser.add_argument("--seeds", type=int, default=1, help="fine-tune with seeds 0..N-1; report their spread")
    parser.add_argument("--table", action="store_true", help="print the results table and exit")
    args = parser.parse_args()
    results_dir = Path(args.results)
    if args.table:
        print_table(results_dir)
        return
    task = TASKS[args.task]
    out = results_dir / args.task
    out.mkdir(parents=True, exist_ok=True)
    stages = args.stage or ["pretrain", "kmer", "probe", "finetune"]
    if "pretrain" in stages and not (out / "pretrain" / "model").exists():
        pretrain_stage(args.task, task, out, args.pretrain_minutes)
    splits = load_splits(task)
    model = str(out / "pretrain" / "model")
    for stage in stages:
        if stage == "pretrain":
            continue
        started = time.perf_counter()
        if stage == "kmer":
            results = kmer_stage(splits, out / "kmer")
        elif stage == "probe":
            results = probe_stage(splits, out / "probe", FeatureSpec("embedding", model))
        else:
            from glm.training.finetune import FinetuneFitter  # Lightning only for this stage

            by_seed = {}
            for seed in range(args.seeds):
                training = TrainConfig(
                    lr=1e-3, max_steps=5000, max_time=f"{args.finetune_minutes}m", val_every=100, seed=seed
                )
                options = FinetuneConfig(pooling=args.finetune_pooling, patience=5, train=training)
                run = out / "finetune" / (f"seed_{seed}" if args.seeds > 1 else "")
                fitter = FinetuneFitter(model, options, run, progress=False)
                by_seed[seed] = fit_classifier(
                    splits["train"], run, fitter, splits["dev"], splits["test"], progress=False
                )
            results = {**by_seed[0], "seed_spread": seed_spread(by_seed)} if args.seeds > 1 else by_seed[0]
        results["seconds"] = time.perf_counter() - started
        (out / stage / "summary.json").write_text(json.dumps(results, indent=2) + "\n")
        print(f"{args.task} {stage}: test {results['test']}  ({results['seconds']:.0f} s)")


def print_table(results_dir: Path) -> None:
    print("| task | method | test AUROC [95% CI] | test accuracy | test MCC [95% CI] | CV AUROC (90% pool) | budget |")
    print("|---|---|---|---|---|---|---|")
    for name in TASKS:
        for stage in ("kmer", "probe", "finetune"):
            path = results_dir / name / stage / "summary.json"
            if not path.exists():
                continue
            r = json.loads(path.read_text())
            test, cv = r["test"], r.get("cv", {})
            cv_auroc = _with_interval(cv, "auroc") if cv else ""
            budget = f"{r['seconds']:.0f} s"
            if stage == "finetune":
                budget += f", {r['head_info'].get('steps')} steps"
            auroc, mcc = _with_interval(test, "auroc"), _with_interval(test, "mcc")
            if "seed_spread" in r:  # the first seed's interval, then the spread over seeds
                spread = r["seed_spread"]["test"]["auroc"]
                auroc += f"; {spread['mean']:.3f} ± {spread['sd']:.3f} over {len(spread['per_seed'])} seeds"
            row = f"{auroc} | {test['accuracy']:.3f} | {mcc} | {cv_auroc} | {budget}"
            print(f"| {name} | {r['method']} | {row} |")


def _with_interval(metrics: dict, name: str) -> str:
    """'0.812 [0.790, 0.833]'; the value alone for results written before intervals were."""
    low, high = metrics.get("intervals", {}).get(name, (None, None))
    return f"{metrics[name]:.3f}" + (f" [{low:.3f}, {high:.3f}]" if low is not None else "")


if __name__ == "__main__":
    main()
