"""glm command line: one subcommand, one glm function.

    python cli.py pretrain data/lambda_virus.fa
    python cli.py eval runs/lambda_virus/model data/phiX174.fa
    python cli.py pretrain data/tinyshakespeare.txt --config text
    python cli.py generate runs/tinyshakespeare/model --prompt "ROMEO:" --num-samples 2

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
