"""Subcommands about the model itself: pretrain it, plot its training curves, evaluate it, sample from it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from glm.arguments import ConfigOptions, Help, command
from glm.commands.options import Device, ModelDir, Quiet
from glm.config import Config


def run_name(fasta: Path) -> str:
    """A run directory name from the FASTA file name: data/lambda_virus.fa.gz -> lambda_virus."""
    name = fasta.name
    for suffix in (".gz", ".fasta", ".fna", ".fa", ".txt"):
        name = name.removesuffix(suffix)
    return name or "run"


@command(
    "pretrain",
    help="train a causal DNA language model on a FASTA file",
    description="Train a causal DNA language model on a FASTA file (plain or gzipped) and export it to "
    "OUT/model. Without --config a preset is chosen for the hardware found. Options override the config.",
)
def pretrain(
    fasta: Annotated[str, Help("FASTA file to train on (.gz allowed; many records allowed)")],
    *,
    config: Annotated[str | None, Help("preset name (tiny, small, base) or a YAML file")] = None,
    out: Annotated[str | None, Help("run directory (default: runs/<fasta name>)")] = None,
    resume: Annotated[bool, Help("continue the run in --out from checkpoints/last.ckpt")] = False,
    quiet: Quiet = False,
    overrides: Annotated[dict[str, Any], ConfigOptions(Config)],
) -> None:
    from glm.training.pretrain import pretrain as run  # noqa: PLC0415 - Lightning only here
    from glm.training.pretrain import resolve_config

    run_dir = Path(out) if out else Path("runs") / run_name(Path(fasta))
    resolved = resolve_config(config, overrides, run_dir, resume)
    try:
        result = run(fasta, resolved, run_dir, resume=resume, progress=not quiet)
    except FloatingPointError as error:  # the run diverged: say at which step, without a traceback
        raise SystemExit(f"error: {error}") from None
    if result.is_global_zero:
        print("\n" + result.summary())


@command(
    "plot",
    help="redraw a run's training curves (RUN/curves.png)",
    description="Draw train and validation bits per base against bases seen, with the learning rate below, from "
    "RUN/logs/version_N/metrics.csv (all versions of a resumed run). Works on a run that is still training; "
    "fit-classifier --finetune runs are in OUT/finetune/NAME.",
)
def plot(
    run_dir: Annotated[str, Help("run directory (runs/NAME)")],
    *,
    out: Annotated[str | None, Help("picture to write (default: RUN/curves.png)")] = None,
) -> None:
    from glm.plots import CURVES_PNG, plot_training_curves, read_training_curves  # noqa: PLC0415

    picture = Path(out) if out else Path(run_dir) / CURVES_PNG
    curves = read_training_curves(run_dir)
    plot_training_curves(curves, picture, title=Path(run_dir).name)
    print(f"{len(curves.train.x)} training and {len(curves.val.x)} validation points -> {picture}")


@command(
    "eval",
    help="bits per base of a model on a FASTA file",
    description="Bits per base of an exported model on each record of a FASTA file, and overall.",
)
def evaluate(
    model: ModelDir,
    fasta: Annotated[str, Help("FASTA file to score")],
    *,
    device: Device = None,
    quiet: Quiet = False,
) -> None:
    import glm  # noqa: PLC0415
    from glm.api import evaluation_table  # noqa: PLC0415

    print(evaluation_table(glm.load(model, device=device).evaluate(fasta, progress=not quiet)))


@command(
    "generate",
    help="sample sequences (or text) from a model",
    description="Continue a prompt by sampling from an exported model, printing as it goes. DNA prompts are "
    "bases; the output is the prompt followed by the sampled bases.",
)
def generate(
    model: ModelDir,
    *,
    prompt: Annotated[str, Help("bases (DNA models) or text to continue")],
    num_samples: Annotated[int, Help("independent samples (seeds seed, seed+1, ...)")] = 1,
    max_new_tokens: Annotated[int, Help("tokens to sample (k bases each for k-mers)")] = 200,
    max_bases: Annotated[int | None, Help("stop after this many new bases (or characters)")] = None,
    temperature: Annotated[float, Help("0 is greedy; higher is more random")] = 1.0,
    top_k: Annotated[int | None, Help("sample only among the k most likely tokens")] = None,
    top_p: Annotated[float | None, Help("sample only among the most likely tokens holding this mass")] = None,
    seed: Annotated[int | None, Help("fixes the samples")] = None,
    no_cache: Annotated[bool, Help("recompute the whole window for every token (slow)")] = False,
    device: Device = None,
) -> None:
    import glm  # noqa: PLC0415

    lm = glm.load(model, device=device)
    for sample in range(num_samples):
        if sample:
            print("---")
        print(prompt, end="", flush=True)
        pieces = lm.generate_stream(
            prompt,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            seed=None if seed is None else seed + sample,
            max_bases=max_bases,
            use_cache=not no_cache,
        )
        for piece in pieces:
            print(piece, end="", flush=True)
        print()
