"""Subcommands about the model itself: pretrain it, plot its training curves, evaluate it, sample from it,
export it for Hugging Face transformers."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from glm.arguments import ConfigOptions, Help, command
from glm.commands.options import Device, GenomeName, ModelDir, Quiet
from glm.config import Config
from glm.fields import check_fields, option
from glm.errors import InputError
from glm.io.corpus import genome_name as genome_name_of
from glm.io.paths import OutputDirectory, OutputFile


def run_name(first: Path) -> str:
    """A run directory name from the (first) input's name: data/lambda_virus.fa.gz -> lambda_virus."""
    return genome_name_of(first.resolve()).removesuffix(".tsv") or "run"


@command(
    "pretrain",
    help="train a causal DNA language model on a FASTA file",
    description="Train a causal DNA language model on a FASTA file (plain or gzipped) and export it to "
    "OUT/model. Without --config a preset is chosen for the hardware found. Options override the config.",
)
def pretrain(
    fasta: Annotated[
        list[str],
        Help(
            "FASTA files to train on (.gz allowed; many records allowed), or folders of them: several genomes "
            "train one model, validated per genome"
        ),
    ] = [],  # noqa: B006 - read only; empty when --corpus names the genomes
    *,
    corpus: Annotated[
        str | None, Help("manifest of genomes: a TSV with a path column and optional name, weight and group")
    ] = None,
    config: Annotated[str | None, Help("preset name (tiny, small, base) or a YAML file")] = None,
    out: Annotated[OutputDirectory | None, Help("run directory (default: runs/<fasta name>)")] = None,
    resume: Annotated[bool, Help("continue the run in --out from checkpoints/last.ckpt")] = False,
    quiet: Quiet = False,
    overrides: Annotated[dict[str, Any], ConfigOptions(Config)],
) -> None:
    from glm.training.pretrain import pretrain as run  # Lightning only here
    from glm.training.pretrain import resolve_config

    if not fasta and corpus is None:
        raise InputError("pretrain: give a FASTA file (or several, or a folder), or --corpus MANIFEST")
    run_dir = Path(out) if out else Path("runs") / run_name(Path(fasta[0] if fasta else corpus))
    resolved = resolve_config(config, overrides, run_dir, resume)
    try:
        result = run(fasta, resolved, run_dir, resume=resume, progress=not quiet, corpus=corpus)
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
    out: Annotated[OutputFile | None, Help("picture to write (default: RUN/curves.png)")] = None,
) -> None:
    from glm.plots import CURVES_PNG, plot_training_curves, read_training_curves

    picture = Path(out) if out else Path(run_dir) / CURVES_PNG
    curves = read_training_curves(run_dir)
    plot_training_curves(curves, picture, title=Path(run_dir).name)
    print(f"{len(curves.train.x)} training and {len(curves.val.x)} validation points -> {picture}")


@command(
    "eval",
    help="bits per base of a model on a FASTA file",
    description="Bits per base of an exported model on each record of FASTA files, per file and overall. A model "
    "trained with --genome-tokens conditions each file on its own genome's token (the file's name, as in "
    "training) unless --genome-name names one for all.",
)
def evaluate(
    model: ModelDir,
    fasta: Annotated[list[str], Help("FASTA files to score (one table each, then all together)")],
    *,
    genome_name: GenomeName = None,
    device: Device = None,
    quiet: Quiet = False,
) -> None:
    from glm.api import LogLikelihood, evaluation_table, load

    lm = load(model, device=device)
    names = [genome_name] * len(fasta)
    if genome_name is None and lm.genome_tags is not None:  # each file's own token, named as pretrain names it
        names = [genome_name_of(Path(path)) for path in fasta]
        for path, name in zip(fasta, names):  # every file's, before the first is evaluated
            if not lm.genome_tags.knows(name):
                raise InputError(
                    f"no genome token for this file's name {name!r} (known: {', '.join(lm.genome_names)}); "
                    "choose one with --genome-name",
                    path,
                )
    totals = []
    for path, name in zip(fasta, names):
        rows = lm.evaluate(path, progress=not quiet, genome_name=name)
        print(("" if len(fasta) == 1 else f"{path}\n") + evaluation_table(rows) + ("\n" if len(fasta) > 1 else ""))
        bases, bits = rows[-1][1:]
        totals.append(LogLikelihood(-bits * bases * math.log(2), bases) if bases else LogLikelihood(0.0, 0))
    if len(fasta) > 1:
        overall = LogLikelihood(sum(t.total for t in totals), sum(t.bases for t in totals))
        print(f"all {len(fasta)} files: {overall.bases:,} bases, {overall.bits_per_base:.4f} bits/base")


@dataclass(frozen=True)
class GenerationSettings:
    """How the samples are drawn."""

    # glm.model.generation.generate_pieces declares these options, with the same defaults.
    num_samples: int = option(1, "independent samples (seeds seed, seed+1, ...)", bounds="[1, inf)")
    max_new_tokens: int = option(200, "tokens to sample (k bases each for k-mers; at least 1)")
    max_bases: int | None = option(None, "stop after this many new bases (or characters; at least 1)")
    temperature: float = option(1.0, "0 or more: 0 always takes the most likely token; higher is more random")
    top_k: int | None = option(None, "sample only among the k most likely tokens (at least 1)")
    top_p: float | None = option(None, "sample only among the most likely tokens holding this mass, in (0, 1]")
    seed: int | None = option(None, "fixes the samples", bounds="[0, inf)")

    def __post_init__(self) -> None:
        check_fields(self)

    def sample_options(self, sample: int) -> dict[str, Any]:
        """generate_pieces' options for sample number `sample` (seeded seed + sample)."""
        return {
            "max_new_tokens": self.max_new_tokens,
            "max_bases": self.max_bases,
            "temperature": self.temperature,
            "top_k": self.top_k,
            "top_p": self.top_p,
            "seed": None if self.seed is None else self.seed + sample,
        }


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
    sampling: Annotated[dict[str, Any], ConfigOptions(GenerationSettings, "sampling", show_defaults=True)],
    no_cache: Annotated[bool, Help("recompute the whole window for every token (slow)")] = False,
    genome_name: GenomeName = None,
    device: Device = None,
) -> None:
    from glm.api import load

    chosen = GenerationSettings(**sampling)
    lm = load(model, device=device)
    for sample in range(chosen.num_samples):
        pieces = lm.generate_stream(  # checks every option before anything is printed
            prompt, use_cache=not no_cache, genome_name=genome_name, **chosen.sample_options(sample)
        )
        if sample:
            print("---")
        print(prompt, end="", flush=True)
        for piece in pieces:
            print(piece, end="", flush=True)
        print()


@command(
    "export-hf",
    help="export a model as a Hugging Face transformers directory",
    description="Write MODEL as a transformers-native directory (Llama, or Qwen3 when QK-norm is on): config.json, "
    "model.safetensors, tokenizer files AutoTokenizer loads, and a model card (README.md). A model option with no "
    'native equivalent is refused by name. Needs transformers: pip install "glm[hf]".',
)
def export_hf(
    model: ModelDir,
    out: Annotated[OutputDirectory, Help("directory to write (an existing one is replaced)")],
    *,
    license: Annotated[str, Help("the weights' license in the model card (a Hub license id)")] = "other",  # noqa: A002
) -> None:
    from glm.api import load

    load(model, device="cpu").save_hf(out, license=license)
    print(f"{out}: a transformers model directory (model card: {Path(out) / 'README.md'})")
