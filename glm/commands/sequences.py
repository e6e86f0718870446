"""Subcommands about sets of sequences: embeddings, layer choice, classifiers, FASTA conversion."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from glm.arguments import ConfigOptions, Help, command, setting
from glm.commands.options import (
    Device,
    EmbeddingsOutput,
    GenomeName,
    Layer,
    ModelDir,
    PoolingChoice,
    Quiet,
    StrandChoice,
    inputs,
)
from glm.config import FeatureKind, FinetuneConfig, Pooling, ProbeKind
from glm.fields import check_fields, option, with_overrides
from glm.errors import InputError
from glm.io.paths import OutputDirectory, OutputFile


@dataclass(frozen=True)
class EmbeddingSettings:
    """Which hidden states are pooled, and how."""

    layer: Layer = setting(Layer, -1)
    pooling: PoolingChoice = setting(PoolingChoice, "mean")
    strands: StrandChoice = setting(StrandChoice, "both")
    batch_size: int = option(32, "windows per forward pass", bounds="[1, inf)")

    def __post_init__(self) -> None:
        check_fields(self)


@command(
    "embed",
    help="pooled embeddings of sequences, to a .npy file",
    description="Embed sequences with an exported model: one pooled vector per sequence, saved as OUT (.npy, "
    "float32, one row per sequence) and OUT's .names.tsv (row index, name, label when given). Sequences longer "
    "than the model's context are embedded in sliding windows advancing by half a context, each token taken "
    "from one window (so memory stays bounded).",
)
def embed(
    model: ModelDir,
    *,
    input: inputs("sequences to embed"),  # noqa: A002 - the option is --input
    out: Annotated[EmbeddingsOutput, Help("output .npy file (the name is used as given)")],
    embedding: Annotated[dict[str, Any], ConfigOptions(EmbeddingSettings, "embedding", show_defaults=True)],
    genome_name: GenomeName = None,
    device: Device = None,
    quiet: Quiet = False,
) -> None:
    import numpy as np

    from glm.api import load
    from glm.io.files import atomic_file
    from glm.io.sequences import read_sequences, write_names

    chosen = EmbeddingSettings(**embedding)
    sequences = read_sequences(input)
    lm = load(model, device=device)
    lm.batch_size = chosen.batch_size
    embeddings = lm.embed(
        sequences.sequences, chosen.layer, chosen.pooling, chosen.strands, progress=not quiet, genome_name=genome_name
    )
    with atomic_file(out) as partial, open(partial, "wb") as handle:
        np.save(handle, embeddings)  # to a handle: numpy would add .npy to a file name without it
    write_names(out.names, sequences)
    print(f"{embeddings.shape[0]:,} embeddings of width {embeddings.shape[1]} -> {out} (names: {out.names})")


@command(
    "layers",
    help="which layer's embeddings classify best (cross-validated probe per layer)",
    description="Fit a logistic probe on each layer's pooled embeddings of a labelled set and print its "
    "cross-validated AUROC, AUPRC, accuracy and MCC, to pick the layer for embed and fit-classifier.",
)
def layers(
    model: ModelDir,
    *,
    input: inputs("labelled sequences"),  # noqa: A002 - the option is --input
    pooling: PoolingChoice = "mean",
    strands: StrandChoice = "both",
    folds: Annotated[int, Help("cross-validation folds", bounds="[2, inf)")] = 5,
    device: Device = None,
    quiet: Quiet = False,
) -> None:
    from glm.api import load
    from glm.heads.evaluation import compare_layers, layer_table
    from glm.io.sequences import read_sequences

    sequences = read_sequences(input, labelled=True)
    lm = load(model, device=device)
    scores = compare_layers(
        lm, sequences.sequences, sequences.labels, pooling=pooling, strands=strands, folds=folds, progress=not quiet
    )
    print(f"{folds}-fold cross-validation of a logistic probe on each layer ({pooling} pooling)")
    print(layer_table(scores))


@dataclass(frozen=True)
class ClassifierSettings:
    """What the classifier reads, what it is, and how it is evaluated."""

    features: FeatureKind = option("embedding", "probe features")
    kmer_k: int = option(4, "k-mer features: frequencies of every length 1..k", bounds="[1, 8]")
    probe: ProbeKind = option("logistic", "probe classifier")
    layer: Layer = setting(Layer, -1)
    pooling: Pooling | None = option(None, "over tokens (default: mean for probes, last for --finetune)")
    strands: StrandChoice = setting(StrandChoice, "both")
    folds: int = option(5, "cross-validation folds when no --test is given", bounds="[2, inf)")
    seed: int = option(0, "fixes folds, splits, initialisation and batches", bounds="[0, inf)")
    seeds: int = option(1, "repeat with seeds SEED, SEED+1, ... (fine-tuning is random: try 3)", bounds="[1, inf)")
    finetune: bool = option(False, "train the whole model with a linear head (options below)", negatable=False)

    def __post_init__(self) -> None:
        check_fields(self)

    @property
    def seed_range(self) -> range:
        """The seeds of the repeated fits: seed, seed + 1, ..."""
        return range(self.seed, self.seed + self.seeds)


@command(
    "fit-classifier",
    help="train a sequence classifier (frozen probe or fine-tuned) and evaluate it",
    description="Train a classifier of labelled sequences: a logistic probe on a frozen model's pooled "
    "embeddings (default), a probe on k-mer frequencies (--features kmer, no model needed), or the whole model "
    "fine-tuned with a linear head (--finetune, early stopping on --dev). Inputs: CSV/TSV with sequence and "
    "label columns, or LABEL=FASTA per class (repeat the option). Without --test, the estimate is k-fold "
    "cross-validation on --train. Writes OUT/head (the classifier, for `classify`), OUT/metrics.json, "
    "predictions, ROC curves and confusion matrices (PNG). AUROC, AUPRC and MCC come with 95% bootstrap "
    "intervals (and per-fold values); --seeds N repeats the whole fit with N seeds, each in OUT/seed_S, and "
    "writes their spread to OUT/seeds.json.",
)
def fit_classifier(
    model: Annotated[str | None, Help("exported model directory (runs/NAME/model)")] = None,
    *,
    train: Annotated[list[str], Help("labelled training sequences", metavar="FILE")],
    out: Annotated[OutputDirectory, Help("output directory")],
    dev: Annotated[list[str] | None, Help("labelled dev sequences (model selection)", metavar="FILE")] = None,
    test: Annotated[list[str] | None, Help("labelled test sequences (the reported numbers)", metavar="FILE")] = None,
    classifier: Annotated[dict[str, Any], ConfigOptions(ClassifierSettings, "the classifier", show_defaults=True)],
    quiet: Quiet = False,
    tuning: Annotated[
        dict[str, Any],
        ConfigOptions(FinetuneConfig, "fine-tuning (with --finetune)", show_defaults=True),
    ],
) -> None:
    from glm.heads.features import FeatureSpec
    from glm.heads.sequence_tasks import ProbeFitter, fit_classifier_seeds, spread_line
    from glm.io.sequences import read_sequences

    chosen = ClassifierSettings(**classifier)
    if model is None and (chosen.features == "embedding" or chosen.finetune):
        raise InputError("fit-classifier: give a MODEL directory (only --features kmer works without one)")
    train_set = read_sequences(train, labelled=True)
    dev_set = read_sequences(dev, labelled=True) if dev else None
    test_set = read_sequences(test, labelled=True) if test else None

    def fitter(seed: int, run: Path) -> Any:
        if chosen.finetune:
            from glm.training.finetune import FinetuneFitter  # Lightning only when fine-tuning

            shared = {"layer": chosen.layer, "pooling": chosen.pooling or "last", "strands": chosen.strands}
            options = with_overrides(FinetuneConfig(), {**tuning, **shared, "train.seed": seed})
            return FinetuneFitter(model, options, run, progress=not quiet)  # type: ignore[arg-type]
        spec = FeatureSpec(
            chosen.features, model, chosen.layer, chosen.pooling or "mean", chosen.strands, chosen.kmer_k
        )
        return ProbeFitter(spec, chosen.probe, seed, progress=not quiet)

    fitted = fit_classifier_seeds(
        train_set, out, fitter, chosen.seed_range, dev_set, test_set, chosen.folds, progress=not quiet
    )
    spread = fitted.spread or {}
    for split in ("cv", "dev", "test"):
        if split in spread:
            print(f"{split} over {chosen.seeds} seeds: {spread_line(spread[split])}")
    heads = ", ".join(str(run / "head") for run in fitted.runs.values())
    print(f"classifier -> {heads}; metrics, predictions and plots in {out}")
    if chosen.finetune:
        runs = Path(out) / ("seed_*" if chosen.seeds > 1 else "")
        print(f"training curves: {runs / 'finetune' / '*' / 'curves.png'}")


@command(
    "classify",
    help="apply a classifier made by fit-classifier",
    description="Predict the class of each sequence with a classifier directory written by fit-classifier; "
    "writes a TSV: name, (label,) predicted class, one probability column per class.",
)
def classify(
    head: Annotated[str, Help("classifier directory (fit-classifier's OUT or OUT/head)")],
    *,
    input: inputs("sequences to classify"),  # noqa: A002 - the option is --input
    out: Annotated[OutputFile, Help("output TSV")],
    device: Device = None,
    quiet: Quiet = False,
) -> None:
    from glm.heads.classifiers import load_classifier, write_predictions
    from glm.io.sequences import read_sequences

    classifier = load_classifier(head, device=device)
    sequences = read_sequences(input)
    probabilities = classifier.predict_proba(sequences.sequences, progress=not quiet)
    write_predictions(out, sequences, probabilities, classifier.classes)
    print(f"{len(sequences):,} predictions -> {out}")


@command(
    "to-fasta",
    help="write sequences from tables (CSV/TSV) as FASTA, e.g. to pretrain on a task's training sequences",
    description="Write the sequences of CSV/TSV tables (or FASTA files) as one FASTA file, one record per "
    "sequence (labels dropped), so `pretrain` can train on a labelled task's sequences.",
)
def to_fasta(*, input: inputs("sequences"), out: Annotated[OutputFile, Help("output FASTA file")]) -> None:  # noqa: A002
    from glm.io.sequences import read_sequences, write_fasta

    sequences = read_sequences(input)
    write_fasta(sequences, out)
    print(f"{len(sequences):,} sequences -> {out}")
