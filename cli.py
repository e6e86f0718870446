"""glm command line: one subcommand, one glm function.

    python cli.py pretrain data/lambda_virus.fa
    python cli.py eval runs/lambda_virus/model data/phiX174.fa
    python cli.py pretrain data/tinyshakespeare.txt --config text
    python cli.py generate runs/tinyshakespeare/model --prompt "ROMEO:" --num-samples 2
    python cli.py score runs/MT-human/model --genome data/MT-human.fa \
        --variants data/mitomap_confirmed_mutations.vcf.gz --alias MT=MT_human --out scores.vcf.gz
    python cli.py mutagenesis runs/MT-human/model --genome data/MT-human.fa --region MT_human:3230-3304 --out mt_tl1
    python cli.py fit-head runs/MT-human/model --genome data/MT-human.fa --variants data/mitomap_labelled.tsv \
        --alias MT=MT_human --label label --group block --out heads/mitomap
    python cli.py embed runs/lambda_virus/model --input seqs.fa --out emb.npy
    python cli.py fit-classifier runs/x/model --train train.csv --dev dev.csv --test test.csv --out heads/x
    python cli.py classify heads/x --input new.fa --out preds.tsv

Bad input prints one line (`error: file:line: field: problem`) and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from glm.errors import InputError

if TYPE_CHECKING:
    from glm.scoring import VariantScores

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
    "global_batch_tokens": "train.global_batch_tokens",
    "precision": "train.precision",
    "accelerator": "train.accelerator",
    "devices": "train.devices",
    "num_nodes": "train.num_nodes",
    "strategy": "train.strategy",
    "compile": "train.compile",
    "activation_checkpointing": "train.activation_checkpointing",
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
    try:
        result = pretrain(fasta, config, run_dir, resume=args.resume, progress=not args.quiet)
    except FloatingPointError as error:  # the run diverged: say at which step, without a traceback
        raise SystemExit(f"error: {error}") from None
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


def parse_aliases(pairs: list[str] | None) -> dict[str, str]:
    """["MT=MT_human", ...] -> {"MT": "MT_human", ...}."""
    aliases = {}
    for pair in pairs or []:
        name, equals, target = pair.partition("=")
        if not (equals and name and target):
            raise InputError(f"--alias: expected NAME=CONTIG (e.g. MT=chrM), got {pair!r}")
        aliases[name] = target
    return aliases


def report_scores(scores: VariantScores, out: Path) -> None:
    """Print how many variants were scored, why the others were not, and where the table went."""
    statuses = Counter(variant.status for variant in scores.variants if variant.status)
    print(f"{len(scores) - sum(statuses.values()):,} of {len(scores):,} variants scored -> {out}")
    for status, count in statuses.most_common():
        print(f"  not scored ({count:,}): {status}")
    mostly_n = int(np.sum(scores["window_n"] > 0.5))
    if mostly_n:
        print(f"  warning: {mostly_n:,} scored variants have windows more than half N (column window_n)")


def cmd_score(args: argparse.Namespace) -> None:
    import glm  # noqa: PLC0415

    lm = glm.load(args.model, device=args.device)
    scores = lm.score_variants(
        args.variants,
        args.genome,
        method=args.method or ["llr"],
        window=args.window,
        strands=args.strands,
        batch_size=args.batch_size,
        aliases=parse_aliases(args.alias),
        on_ref_mismatch="skip" if args.skip_ref_mismatch else "error",
        head=args.head,
        progress=not args.quiet,
    )
    report_scores(scores, scores.write(args.out))


def cmd_mutagenesis(args: argparse.Namespace) -> None:
    import glm  # noqa: PLC0415
    from glm.plots import plot_mutagenesis  # noqa: PLC0415
    from glm.scoring import mutagenesis_matrix  # noqa: PLC0415

    lm = glm.load(args.model, device=args.device)
    methods = args.method or ["llr"]
    scores = lm.mutagenesis(
        args.genome,
        args.region,
        method=methods,
        window=args.window,
        strands=args.strands,
        batch_size=args.batch_size,
        progress=not args.quiet,
    )
    prefix = Path(args.out)
    table = scores.write(prefix.with_name(prefix.name + ".tsv"))
    report_scores(scores, table)
    column = "llr" if "llr" in methods else "embedding_cosine"
    positions, reference, matrix = mutagenesis_matrix(scores, column)
    picture = prefix.with_name(prefix.name + ".png")
    plot_mutagenesis(positions, reference, matrix, picture, title=f"{args.region}: {column}", label=column)
    print(f"heatmap -> {picture}")


def cmd_fit_head(args: argparse.Namespace) -> None:
    import glm  # noqa: PLC0415
    from glm.variant_heads import fit_variant_head  # noqa: PLC0415

    lm = glm.load(args.model, device=args.device)
    report = fit_variant_head(
        lm.model,
        lm.tokenizer,
        args.variants,
        args.genome,
        label=args.label,
        group=args.group,
        kind=args.kind,
        features=args.features,
        folds=args.folds,
        seed=args.seed,
        window=args.window,
        batch_size=args.batch_size or lm.batch_size,
        aliases=parse_aliases(args.alias),
        out=args.out,
        progress=not args.quiet,
    )
    print(report.summary())


def add_scoring_options(command: argparse.ArgumentParser) -> None:
    """The options shared by score, mutagenesis and fit-head."""
    command.add_argument("model", help="exported model directory (runs/NAME/model)")
    command.add_argument("--genome", required=True, help="reference FASTA the variants refer to (.gz allowed)")
    command.add_argument("--window", type=int, help="bases per scoring window (default: the model's context)")
    command.add_argument("--batch-size", type=int, help="windows per forward pass (default 16)")
    command.add_argument("--device", help="cpu or cuda (default: cuda when present)")
    command.add_argument("--quiet", action="store_true", help="no progress bar")


def add_method_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--method",
        action="append",
        choices=["llr", "embedding"],
        help="score to compute; repeat for several (default llr)",
    )
    command.add_argument(
        "--strands",
        choices=["both", "forward"],
        default="both",
        help="both: average the forward and reverse-complement scores",
    )


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
    train.add_argument(
        "--global-batch-tokens",
        type=int,
        help="tokens per optimizer step over all processes; sets accumulate = this / (batch size x context x "
        "processes), so a run makes the same steps on 1 or 64 GPUs",
    )
    train.add_argument("--precision", help="auto, 32-true, bf16-mixed, 16-mixed (auto: bf16-mixed on GPUs, else 32)")
    train.add_argument("--accelerator", help="auto, cpu, gpu")
    train.add_argument("--devices", help="processes per node: auto, a count, or a list of GPU indices such as 0,1")
    train.add_argument("--num-nodes", type=int, help="machines (for multi-node runs under SLURM or torchrun)")
    train.add_argument(
        "--strategy", choices=["auto", "ddp", "fsdp"], help="auto: DDP when several processes; fsdp shards the model"
    )
    train.add_argument("--compile", action="store_const", const=True, help="torch.compile each Transformer block")
    train.add_argument(
        "--activation-checkpointing",
        action="store_const",
        const=True,
        help="recompute activations in the backward pass: less memory for long contexts, about 1/3 more compute",
    )
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

    score = commands.add_parser(
        "score",
        help="score variants (VCF or TSV) against a genome",
        description="Zero-shot variant effect scores. llr = log P(alt window) - log P(ref window) in nats, averaged "
        "over both strands: negative means the model finds the alternative less likely (predicted more damaging). "
        "Output is TSV or VCF (scores as INFO fields), chosen by the --out suffix.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_scoring_options(score)
    score.add_argument("--variants", required=True, help="VCF (.vcf, .vcf.gz) or TSV/CSV with chrom, pos, ref, alt")
    score.add_argument("--out", required=True, help="output file: .tsv, .vcf or .vcf.gz")
    add_method_options(score)
    score.add_argument("--alias", action="append", help="contig name mapping VARIANT_NAME=GENOME_NAME (repeatable)")
    score.add_argument(
        "--skip-ref-mismatch", action="store_true", help="report variants whose REF disagrees with the genome, not stop"
    )
    score.add_argument("--head", help="variant head directory from fit-head: adds a head_probability column")
    score.set_defaults(handler=cmd_score)

    mutagenesis = commands.add_parser(
        "mutagenesis",
        help="score every SNV of a region; TSV and heatmap",
        description="Saturation mutagenesis: score all three alternatives at every base of a region and write "
        "OUT.tsv and OUT.png (heatmap of positions x alternative bases, with the per-position minimum).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_scoring_options(mutagenesis)
    mutagenesis.add_argument("--region", required=True, help="CONTIG:START-END, 1-based inclusive")
    mutagenesis.add_argument("--out", required=True, help="output prefix: writes PREFIX.tsv and PREFIX.png")
    add_method_options(mutagenesis)
    mutagenesis.set_defaults(handler=cmd_mutagenesis)

    fit = commands.add_parser(
        "fit-head",
        help="fit a supervised variant head with (grouped) cross-validation",
        description="Fit a probe on model features of labelled variants, report out-of-fold AUROC/AUPRC, draw the "
        "ROC curve and save the head (JSON + safetensors) to OUT for `score --head`.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_scoring_options(fit)
    fit.add_argument("--variants", required=True, help="labelled variants: TSV/CSV (or VCF with the label in INFO)")
    fit.add_argument("--label", required=True, help="column holding each variant's class")
    fit.add_argument("--group", help="column of groups (gene, exon, block) kept whole within a test fold")
    fit.add_argument("--out", required=True, help="output directory for the head, roc.png and predictions")
    fit.add_argument("--kind", choices=["logistic", "boosting"], default="logistic", help="probe")
    fit.add_argument(
        "--features",
        choices=["all", "scores"],
        default="all",
        help="all: the five scores and the embedding delta; scores: the five scores only (few labels)",
    )
    fit.add_argument("--folds", type=int, default=5, help="cross-validation folds")
    fit.add_argument("--seed", type=int, default=0, help="fold assignment and probe seed")
    fit.add_argument("--alias", action="append", help="contig name mapping VARIANT_NAME=GENOME_NAME (repeatable)")
    fit.set_defaults(handler=cmd_fit_head)

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
