"""glm command line: one subcommand, one glm function.

    python cli.py pretrain data/lambda_virus.fa
    python cli.py eval runs/lambda_virus/model data/phiX174.fa
    python cli.py pretrain data/tinyshakespeare.txt --config text
    python cli.py generate runs/tinyshakespeare/model --prompt "ROMEO:" --num-samples 2
    python cli.py embed runs/lambda_virus/model --input seqs.fa --out emb.npy
    python cli.py fit-classifier runs/x/model --train train.csv --dev dev.csv --test test.csv --out heads/x
    python cli.py classify heads/x --input new.fa --out preds.tsv

Bad input prints one line (`error: file:line: field: problem`) and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from glm.errors import InputError

# CLI option -> config key (section.field)
PRETRAIN_OVERRIDES = {
    "format": "data.format",
    "tokenizer": "data.tokenizer",
    "k": "data.k",
    "stride": "data.stride",
    "split": "data.split",
    "val_fraction": "data.val_fraction",
    "soft_mask_weight": "data.soft_mask_weight",
    "rc_augment": "data.rc_augment",
    "workers": "data.num_workers",
    "cache_dir": "data.cache_dir",
    "layers": "model.n_layers",
    "heads": "model.n_heads",
    "width": "model.width",
    "context": "model.context",
    "batch_size": "train.batch_size",
    "max_steps": "train.max_steps",
    "max_time": "train.max_time",
    "lr": "train.lr",
    "warmup_steps": "train.warmup_steps",
    "accumulate": "train.accumulate",
    "precision": "train.precision",
    "accelerator": "train.accelerator",
    "devices": "train.devices",
    "num_nodes": "train.num_nodes",
    "val_every": "train.val_every",
    "seed": "train.seed",
}


def run_name(fasta: Path) -> str:
    """A run directory name from the FASTA file name: data/lambda_virus.fa.gz -> lambda_virus."""
    name = fasta.name
    for suffix in (".gz", ".fasta", ".fna", ".fa", ".txt"):
        name = name.removesuffix(suffix)
    return name or "run"


def cmd_pretrain(args: argparse.Namespace) -> None:
    from glm.train import pretrain, resolve_config  # noqa: PLC0415 - keep `eval` free of Lightning

    fasta = Path(args.fasta)
    run_dir = Path(args.out) if args.out else Path("runs") / run_name(fasta)
    overrides = {key: getattr(args, option) for option, key in PRETRAIN_OVERRIDES.items()}
    config = resolve_config(args.config, overrides, run_dir, args.resume)
    result = pretrain(fasta, config, run_dir, resume=args.resume, progress=not args.quiet)
    if result.is_global_zero:
        print("\n" + result.summary())


def cmd_eval(args: argparse.Namespace) -> None:
    import glm  # noqa: PLC0415

    lm = glm.load(args.model, device=args.device)
    rows = lm.evaluate(args.fasta, progress=not args.quiet)
    width = max(len(name) for name, _, _ in rows)
    print(f"{'record':<{width}}  {'bases':>12}  bits/base")
    for name, bases, bits in rows:
        print(f"{name:<{width}}  {bases:>12,}  {bits:.4f}")


def cmd_generate(args: argparse.Namespace) -> None:
    import glm  # noqa: PLC0415

    lm = glm.load(args.model, device=args.device)
    for sample in range(args.num_samples):
        if sample:
            print("---")
        print(args.prompt, end="", flush=True)
        seed = None if args.seed is None else args.seed + sample
        for piece in lm.generate_stream(
            args.prompt,
            max_new_tokens=args.max_new_tokens,
            temperature=args.temperature,
            top_k=args.top_k,
            top_p=args.top_p,
            seed=seed,
            max_bases=args.max_bases,
            use_cache=not args.no_cache,
        ):
            print(piece, end="", flush=True)
        print()


def cmd_embed(args: argparse.Namespace) -> None:
    import numpy as np  # noqa: PLC0415

    import glm  # noqa: PLC0415
    from glm.files import atomic_file  # noqa: PLC0415
    from glm.sequences import read_sequences  # noqa: PLC0415

    sequences = read_sequences(args.input)
    lm = glm.load(args.model, device=args.device)
    lm.batch_size = args.batch_size
    embeddings = lm.embed(
        sequences.sequences, layer=args.layer, pooling=args.pooling, strands=args.strands, progress=not args.quiet
    )
    out = Path(args.out)
    names = out.with_name(out.name.removesuffix(".npy") + ".names.tsv")
    with atomic_file(out) as partial:
        np.save(partial, embeddings)
    with atomic_file(names) as partial:
        labelled = sequences.labels is not None
        rows = [
            f"{i}\t{name}" + (f"\t{sequences.labels[i]}" if labelled else "") for i, name in enumerate(sequences.names)
        ]
        partial.write_text("index\tname" + ("\tlabel" if labelled else "") + "\n" + "\n".join(rows) + "\n")
    print(f"{embeddings.shape[0]:,} embeddings of width {embeddings.shape[1]} -> {out} (names: {names})")


def cmd_layers(args: argparse.Namespace) -> None:
    import glm  # noqa: PLC0415
    from glm.heads import compare_layers  # noqa: PLC0415
    from glm.sequences import read_sequences  # noqa: PLC0415

    sequences = read_sequences(args.input, labelled=True)
    lm = glm.load(args.model, device=args.device)
    scores = compare_layers(
        lm,
        sequences.sequences,
        sequences.labels,
        pooling=args.pooling,
        strands=args.strands,
        folds=args.folds,
        progress=not args.quiet,
    )
    print(f"{args.folds}-fold cross-validation of a logistic probe on each layer ({args.pooling} pooling)")
    print(f"{'layer':>5}  {'auroc':>6}  {'auprc':>6}  {'accuracy':>8}  {'mcc':>6}")
    best = max(scores, key=lambda score: score.metrics["auroc"])
    for score in scores:
        m = score.metrics
        mark = "  <- best" if score is best else ""
        print(f"{score.layer:>5}  {m['auroc']:6.4f}  {m['auprc']:6.4f}  {m['accuracy']:8.4f}  {m['mcc']:6.4f}{mark}")


def cmd_to_fasta(args: argparse.Namespace) -> None:
    from glm.files import atomic_file  # noqa: PLC0415
    from glm.sequences import read_sequences, write_fasta  # noqa: PLC0415

    sequences = read_sequences(args.input)
    with atomic_file(args.out) as partial, open(partial, "w") as handle:
        write_fasta(sequences, handle)
    print(f"{len(sequences):,} sequences -> {args.out}")


def cmd_fit_classifier(args: argparse.Namespace) -> None:
    from glm.classify import FeatureSpec, FinetuneOptions, fit_classifier  # noqa: PLC0415
    from glm.sequences import read_sequences  # noqa: PLC0415

    if args.model is None and (args.features == "embedding" or args.finetune):
        raise InputError("fit-classifier: give a MODEL directory (only --features kmer works without one)")
    train = read_sequences(args.train, labelled=True)
    dev = read_sequences(args.dev, labelled=True) if args.dev else None
    test = read_sequences(args.test, labelled=True) if args.test else None
    spec = FeatureSpec(args.features, args.model, args.layer, args.pooling or "mean", args.strands, args.kmer_k)
    finetune = None
    if args.finetune:
        finetune = FinetuneOptions(
            **{name: getattr(args, name) for name in FINETUNE_OPTIONS if getattr(args, name) is not None},
            layer=args.layer,
            pooling=args.pooling or "last",
            strands=args.strands,
            seed=args.seed,
        )
    fit_classifier(
        train, args.out, dev, test, spec, finetune, args.probe, args.folds, args.seed, progress=not args.quiet
    )
    print(f"classifier -> {Path(args.out) / 'head'}; metrics, predictions and plots in {args.out}")


def cmd_classify(args: argparse.Namespace) -> None:
    from glm.classify import load_classifier, write_predictions  # noqa: PLC0415
    from glm.sequences import read_sequences  # noqa: PLC0415

    classifier = load_classifier(args.head, device=args.device)
    sequences = read_sequences(args.input)
    probabilities = classifier.predict_proba(sequences.sequences, progress=not args.quiet)
    write_predictions(args.out, sequences, probabilities, classifier.classes)
    print(f"{len(sequences):,} predictions -> {args.out}")


FINETUNE_OPTIONS = (
    "lr",
    "batch_size",
    "max_steps",
    "max_time",
    "val_every",
    "patience",
    "precision",
    "accelerator",
    "devices",
    "num_nodes",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cli.py", description="glm: genomic language models.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    pre = commands.add_parser(
        "pretrain",
        help="train a causal DNA language model on a FASTA file",
        description="Train a causal DNA language model on a FASTA file (plain or gzipped) and export it to "
        "OUT/model. Without --config a preset is chosen for the hardware found. Options override the config.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    pre.add_argument("fasta", help="FASTA file to train on (.gz allowed; many records allowed)")
    pre.add_argument("--config", help="preset name (tiny, small, base) or a YAML file")
    pre.add_argument("--out", help="run directory (default: runs/<fasta name>)")
    pre.add_argument("--resume", action="store_true", help="continue the run in --out from checkpoints/last.ckpt")
    pre.add_argument("--quiet", action="store_true", help="no progress bars")
    model = pre.add_argument_group("model")
    model.add_argument("--layers", type=int, help="Transformer blocks")
    model.add_argument("--heads", type=int, help="attention heads per block")
    model.add_argument("--width", type=int, help="hidden width (a multiple of --heads)")
    model.add_argument("--context", type=int, help="tokens per training window")
    data = pre.add_argument_group("data")
    data.add_argument("--format", choices=["auto", "fasta", "text"], help="input kind (auto: from the file's content)")
    data.add_argument("--tokenizer", choices=["kmer", "char", "byte"], help="kmer for DNA; char or byte for text")
    data.add_argument("--k", type=int, help="k-mer length, 1 to 8")
    data.add_argument("--stride", type=int, help="bases between k-mer starts (default k: non-overlapping)")
    data.add_argument("--split", choices=["auto", "tail", "records"], help="how validation data is held out")
    data.add_argument("--val-fraction", type=float, help="fraction of bases held out for validation")
    data.add_argument("--soft-mask-weight", type=float, help="loss weight of lowercase (soft-masked) bases, 0 to 1")
    data.add_argument(
        "--no-rc", dest="rc_augment", action="store_const", const=False, help="no reverse-complement augmentation"
    )
    data.add_argument("--workers", type=int, help="DataLoader worker processes")
    data.add_argument("--cache-dir", help="where token stores are cached (default $GLM_CACHE or ~/.cache/glm)")
    train = pre.add_argument_group("training")
    train.add_argument("--batch-size", type=int, help="windows per step per device")
    train.add_argument("--max-steps", type=int, help="optimizer steps")
    train.add_argument("--max-time", help="wall-clock budget, e.g. 15m, 2h, 90s; the learning rate decays to fit it")
    train.add_argument("--lr", type=float, help="peak learning rate")
    train.add_argument("--warmup-steps", type=int, help="linear warmup steps")
    train.add_argument("--accumulate", type=int, help="batches per optimizer step (gradient accumulation)")
    train.add_argument("--precision", help="auto, 32-true, bf16-mixed, 16-mixed (auto: bf16-mixed on GPUs, else 32)")
    train.add_argument("--accelerator", help="auto, cpu, gpu")
    train.add_argument("--devices", help="devices per node: auto, a count, or a list such as 0,1")
    train.add_argument("--num-nodes", type=int, help="machines (for multi-node runs under SLURM or torchrun)")
    train.add_argument("--val-every", type=int, help="optimizer steps between validations (and checkpoints)")
    train.add_argument("--seed", type=int, help="seed for initialisation and data order")
    pre.set_defaults(handler=cmd_pretrain)

    ev = commands.add_parser(
        "eval",
        help="bits per base of a model on a FASTA file",
        description="Bits per base of an exported model on each record of a FASTA file, and overall.",
    )
    ev.add_argument("model", help="exported model directory (runs/NAME/model)")
    ev.add_argument("fasta", help="FASTA file to score")
    ev.add_argument("--device", help="cpu or cuda (default: cuda when present)")
    ev.add_argument("--quiet", action="store_true", help="no progress bars")
    ev.set_defaults(handler=cmd_eval)

    gen = commands.add_parser(
        "generate",
        help="sample sequences (or text) from a model",
        description="Continue a prompt by sampling from an exported model, printing as it goes. DNA prompts are "
        "bases; the output is the prompt followed by the sampled bases.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    gen.add_argument("model", help="exported model directory (runs/NAME/model)")
    gen.add_argument("--prompt", required=True, help="bases (DNA models) or text to continue")
    gen.add_argument("--num-samples", type=int, default=1, help="independent samples (seeds seed, seed+1, ...)")
    gen.add_argument("--max-new-tokens", type=int, default=200, help="tokens to sample (k bases each for k-mers)")
    gen.add_argument("--max-bases", type=int, help="stop after this many new bases (or characters)")
    gen.add_argument("--temperature", type=float, default=1.0, help="0 is greedy; higher is more random")
    gen.add_argument("--top-k", type=int, help="sample only among the k most likely tokens")
    gen.add_argument("--top-p", type=float, help="sample only among the most likely tokens holding this mass")
    gen.add_argument("--seed", type=int, help="fixes the samples")
    gen.add_argument("--no-cache", action="store_true", help="recompute the whole window for every token (slow)")
    gen.add_argument("--device", help="cpu or cuda (default: cuda when present)")
    gen.set_defaults(handler=cmd_generate)

    def add_input(command: argparse.ArgumentParser, what: str) -> None:
        command.add_argument(
            "--input",
            "--fasta",
            "--table",
            dest="input",
            action="append",
            required=True,
            metavar="FILE",
            help=f"{what}: FASTA, CSV/TSV with a 'sequence' column, or LABEL=FASTA (kind read from the content; "
            "repeat for several files)",
        )

    def add_embedding(command: argparse.ArgumentParser, pooling: str = "mean") -> None:
        command.add_argument("--layer", type=int, default=-1, help="0 = token embeddings, i = block i, -1 = final")
        command.add_argument(
            "--pooling",
            choices=["mean", "max", "last"],
            default=pooling,
            help="over tokens (fit-classifier: mean for probes, last for --finetune)",
        )
        command.add_argument(
            "--strands", choices=["forward", "both"], default="both", help="both: average with the reverse complement"
        )

    emb = commands.add_parser(
        "embed",
        help="pooled embeddings of sequences, to a .npy file",
        description="Embed sequences with an exported model: one pooled vector per sequence, saved as OUT (.npy, "
        "float32, one row per sequence) and OUT's .names.tsv (row index, name, label when given). Sequences longer "
        "than the model's context are embedded in sliding windows advancing by half a context, each token taken "
        "from one window (so memory stays bounded).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    emb.add_argument("model", help="exported model directory (runs/NAME/model)")
    add_input(emb, "sequences to embed")
    emb.add_argument("--out", required=True, help="output .npy file")
    add_embedding(emb)
    emb.add_argument("--batch-size", type=int, default=32, help="windows per forward pass")
    emb.add_argument("--device", help="cpu or cuda (default: cuda when present)")
    emb.add_argument("--quiet", action="store_true", help="no progress bars")
    emb.set_defaults(handler=cmd_embed)

    lay = commands.add_parser(
        "layers",
        help="which layer's embeddings classify best (cross-validated probe per layer)",
        description="Fit a logistic probe on each layer's pooled embeddings of a labelled set and print its "
        "cross-validated AUROC, AUPRC, accuracy and MCC, to pick the layer for embed and fit-classifier.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    lay.add_argument("model", help="exported model directory (runs/NAME/model)")
    add_input(lay, "labelled sequences")
    lay.add_argument("--pooling", choices=["mean", "max", "last"], default="mean", help="over tokens")
    lay.add_argument("--strands", choices=["forward", "both"], default="both", help="both: average with the RC")
    lay.add_argument("--folds", type=int, default=5, help="cross-validation folds")
    lay.add_argument("--device", help="cpu or cuda (default: cuda when present)")
    lay.add_argument("--quiet", action="store_true", help="no progress bars")
    lay.set_defaults(handler=cmd_layers)

    fit = commands.add_parser(
        "fit-classifier",
        help="train a sequence classifier (frozen probe or fine-tuned) and evaluate it",
        description="Train a classifier of labelled sequences: a logistic probe on a frozen model's pooled "
        "embeddings (default), a probe on k-mer frequencies (--features kmer, no model needed), or the whole model "
        "fine-tuned with a linear head (--finetune, early stopping on --dev). Inputs: CSV/TSV with sequence and "
        "label columns, or LABEL=FASTA per class (repeat the option). Without --test, the estimate is k-fold "
        "cross-validation on --train. Writes OUT/head (the classifier, for `classify`), OUT/metrics.json, "
        "predictions, ROC curves and confusion matrices (PNG).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    fit.add_argument("model", nargs="?", help="exported model directory (runs/NAME/model)")
    fit.add_argument("--train", action="append", required=True, metavar="FILE", help="labelled training sequences")
    fit.add_argument("--dev", action="append", metavar="FILE", help="labelled dev sequences (model selection)")
    fit.add_argument("--test", action="append", metavar="FILE", help="labelled test sequences (the reported numbers)")
    fit.add_argument("--out", required=True, help="output directory")
    fit.add_argument("--features", choices=["embedding", "kmer"], default="embedding", help="probe features")
    fit.add_argument("--kmer-k", type=int, default=4, help="k-mer features: frequencies of every length 1..k")
    fit.add_argument("--probe", choices=["logistic", "boosting"], default="logistic", help="probe classifier")
    add_embedding(fit, pooling=None)
    fit.add_argument("--folds", type=int, default=5, help="cross-validation folds when no --test is given")
    fit.add_argument("--seed", type=int, default=0, help="fixes folds, splits, initialisation and batches")
    fit.add_argument("--quiet", action="store_true", help="no progress bars")
    tune = fit.add_argument_group("fine-tuning (with --finetune; Trainer options as in pretrain)")
    tune.add_argument("--finetune", action="store_true", help="train the whole model with a linear head")
    tune.add_argument("--lr", type=float, help="peak learning rate (default 5e-4)")
    tune.add_argument("--batch-size", type=int, help="sequences per step per device (default 32)")
    tune.add_argument("--max-steps", type=int, help="optimizer steps at most (default 2000)")
    tune.add_argument("--max-time", help="wall-clock budget per fine-tuning run, e.g. 10m")
    tune.add_argument("--val-every", type=int, help="steps between dev evaluations (default 100)")
    tune.add_argument("--patience", type=int, help="dev evaluations without improvement before stopping (default 5)")
    tune.add_argument("--precision", help="auto, 32-true, bf16-mixed, 16-mixed")
    tune.add_argument("--accelerator", help="auto, cpu, gpu")
    tune.add_argument("--devices", help="devices per node: auto, a count, or a list such as 0,1")
    tune.add_argument("--num-nodes", type=int, help="machines")
    fit.set_defaults(handler=cmd_fit_classifier)

    cls = commands.add_parser(
        "classify",
        help="apply a classifier made by fit-classifier",
        description="Predict the class of each sequence with a classifier directory written by fit-classifier; "
        "writes a TSV: name, (label,) predicted class, one probability column per class.",
    )
    cls.add_argument("head", help="classifier directory (fit-classifier's OUT or OUT/head)")
    add_input(cls, "sequences to classify")
    cls.add_argument("--out", required=True, help="output TSV")
    cls.add_argument("--device", help="cpu or cuda (default: cuda when present)")
    cls.add_argument("--quiet", action="store_true", help="no progress bars")
    cls.set_defaults(handler=cmd_classify)

    conv = commands.add_parser(
        "to-fasta",
        help="write sequences from tables (CSV/TSV) as FASTA, e.g. to pretrain on a task's training sequences",
        description="Write the sequences of CSV/TSV tables (or FASTA files) as one FASTA file, one record per "
        "sequence (labels dropped), so `pretrain` can train on a labelled task's sequences.",
    )
    add_input(conv, "sequences")
    conv.add_argument("--out", required=True, help="output FASTA file")
    conv.set_defaults(handler=cmd_to_fasta)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
