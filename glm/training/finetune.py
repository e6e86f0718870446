"""Fine-tuning a pretrained model end to end as a sequence classifier, through Lightning.

The Trainer is glm.training.trainer's `build_trainer` (devices, precision, checkpoints, loggers, progress
bar: the same options as pretraining). The network is glm.heads.classifiers' SequenceClassifierNet:
the pretrained Transformer, pooled, then a linear layer. The LightningModule reuses LitGLM's
optimiser (AdamW, warmup, cosine decay fitted to max_steps or max_time) and its train and
validation steps; the metric watched for checkpoints and early stopping is
`val/bits_per_sequence`, the dev cross-entropy in bits per sequence. At the end the weights of
the best dev evaluation are restored.

Training batches are drawn at random (batch i on rank r is a pure function of seed, r and i, as
in pretraining), half of them reverse-complemented when strands="both"; dev batches tile the
dev set, each rank taking its share, and the sums are reduced across ranks.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.callbacks import EarlyStopping
from torch.utils.data import DataLoader, IterableDataset

from glm.alphabet import reverse_complement
from glm.config import Config, FinetuneConfig
from glm.errors import Stopped
from glm.heads.classifiers import FinetunedClassifier, SequenceClassifierNet, classifier_tokens
from glm.heads.probes import label_indices
from glm.heads.sequence_tasks import split_off
from glm.io.sequences import SequenceSet
from glm.model.batching import pad_batch
from glm.model.checkpoint import genome_tags_of, load_model, require_untagged
from glm.model.tokenizers import Tokenizer
from glm.plots import CURVES_PNG
from glm.training.lit import LitGLM
from glm.training.signals import signal_stop
from glm.training.trainer import build_trainer, lightning_notices_silenced

METRIC = "val/bits_per_sequence"


class LitClassifier(LitGLM):
    """LitGLM around a SequenceClassifierNet: only the loss differs (cross-entropy of the class).

    LitGLM's training and validation hooks (non-finite-loss checks, summed validation reduced
    across ranks, logging) run unchanged on `_shared_step`'s (loss, summed nll, count), so
    `val/bits_per_sequence` is the dev cross-entropy in bits per sequence.
    """

    def __init__(self, config: dict[str, Any], n_classes: int, layer: int, pooling: str):
        super().__init__(config, bases_per_token=1.0, unit="sequence")
        self.model = SequenceClassifierNet(self.model, n_classes, layer, pooling)

    def _shared_step(
        self, batch: dict[str, torch.Tensor], stage: str
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        nll = F.cross_entropy(self.model(batch["ids"]).float(), batch["labels"], reduction="none")  # (batch,)
        return nll.mean(), nll.sum(), torch.tensor(float(len(nll)), device=nll.device)

    def units_in(self, batch: dict[str, torch.Tensor]) -> float:
        """Sequences in one micro-batch."""
        return float(len(batch["labels"]))


class TrainBatches(IterableDataset):
    """Endless random training batches: {"ids": (batch, tokens), "labels": (batch,)}."""

    def __init__(
        self, token_lists: list[list[np.ndarray]], labels: np.ndarray, batch_size: int, seed: int, rank: int = 0
    ):
        self.token_lists, self.labels = token_lists, labels  # token_lists[strand][row]
        self.batch_size, self.seed, self.rank = batch_size, seed, rank

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        index = 0
        while True:
            rng = np.random.default_rng([self.seed, self.rank, index])
            rows = rng.integers(0, len(self.labels), size=self.batch_size)
            strands = rng.integers(0, len(self.token_lists), size=self.batch_size)
            pieces = [self.token_lists[strand][row] for strand, row in zip(strands, rows)]
            yield {"ids": torch.from_numpy(pad_batch(pieces)), "labels": torch.from_numpy(self.labels[rows])}
            index += 1


class DevBatches(IterableDataset):
    """The dev set in fixed batches; rank r of world takes rows r, r + world, ..."""

    def __init__(self, token_lists: list[np.ndarray], labels: np.ndarray, batch_size: int, rank: int, world: int):
        self.rows = np.arange(rank, len(labels), world)
        self.token_lists, self.labels, self.batch_size = token_lists, labels, batch_size

    def __len__(self) -> int:
        return -(-len(self.rows) // self.batch_size)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        for first in range(0, len(self.rows), self.batch_size):
            rows = self.rows[first : first + self.batch_size]
            ids = pad_batch([self.token_lists[row] for row in rows])
            yield {"ids": torch.from_numpy(ids), "labels": torch.from_numpy(self.labels[rows])}


class ClassificationData(pl.LightningDataModule):
    def __init__(
        self,
        train: SequenceSet,
        dev: SequenceSet,
        classes: list[str],
        tokenizer: Tokenizer,
        context: int,
        options: FinetuneConfig,
    ):
        super().__init__()

        def tokens(sequences: list[str]) -> list[np.ndarray]:
            return [classifier_tokens(tokenizer, sequence, context) for sequence in sequences]

        strands = [train.sequences]
        if options.strands == "both" and tokenizer.kind == "kmer":
            strands.append([reverse_complement(s) for s in train.sequences])
        self.train_tokens = [tokens(strand) for strand in strands]
        self.dev_tokens = tokens(dev.sequences)
        self.train_labels = label_indices(train.labels, classes)
        self.dev_labels = label_indices(dev.labels, classes)
        self.options = options

    def train_dataloader(self) -> DataLoader:
        rank = self.trainer.global_rank if self.trainer else 0
        train = self.options.train
        dataset = TrainBatches(self.train_tokens, self.train_labels, train.batch_size, train.seed, rank)
        return DataLoader(dataset, batch_size=None)

    def val_dataloader(self) -> DataLoader:
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        dataset = DevBatches(self.dev_tokens, self.dev_labels, 4 * self.options.train.batch_size, rank, world)
        return DataLoader(dataset, batch_size=None)


@lightning_notices_silenced()
def finetune(
    model_dir: str | Path,
    train: SequenceSet,
    dev: SequenceSet,
    classes: list[str],
    run_dir: str | Path,
    options: FinetuneConfig,
    progress: bool = True,
) -> FinetunedClassifier:
    """Fine-tune the model in `model_dir` on labelled train sequences, early-stopping on dev.

    Logs, checkpoints and training curves go to `run_dir` (logs/, checkpoints/best.ckpt, curves.png);
    returns the classifier with the weights of the best dev evaluation.
    """
    run_dir = Path(run_dir)
    options.validate()
    backbone, tokenizer, saved = load_model(model_dir, "cpu")
    require_untagged(genome_tags_of(saved, model_dir), model_dir, "fine-tuning")
    config = Config(model=backbone.config, train=replace(options.train)).validate()
    pl.seed_everything(options.train.seed, verbose=False)
    lit = LitClassifier(config.to_dict(), len(classes), options.layer, options.pooling)
    lit.model.backbone.load_state_dict(backbone.state_dict(), strict=True)
    data = ClassificationData(train, dev, classes, tokenizer, backbone.config.context, options)
    stop = EarlyStopping(monitor=METRIC, mode="min", patience=options.patience)
    trainer = build_trainer(config, run_dir, progress, [stop], unit="sequence")
    stop = signal_stop(trainer)
    with stop.listening():
        trainer.fit(lit, datamodule=data)
    if stop.stopped_by:
        raise Stopped(stop.stopped_by, f"at step {trainer.global_step} (fine-tuning does not resume; run it again)")
    best = trainer.checkpoint_callback.best_model_path  # our own checkpoint, written by this run
    if best:
        lit.load_state_dict(torch.load(best, map_location="cpu", weights_only=True)["state_dict"])
    info = {
        "pretrained_model": str(Path(model_dir).resolve()),
        "steps": trainer.global_step,
        "best_dev_bits_per_sequence": float(trainer.checkpoint_callback.best_model_score or math.nan),
        "train": len(train),
        "dev": len(dev),
        "curves": str(run_dir / CURVES_PNG) if (run_dir / CURVES_PNG).exists() else None,
        "options": asdict(options),
    }
    return FinetunedClassifier(lit.model.cpu().eval(), tokenizer, classes, options.strands, info)


class FinetuneFitter:
    """A glm.heads.sequence_tasks fitter that fine-tunes the model in `model_dir` (dev: 10% of train if none).

    Each fit's logs and checkpoints go to OUT/finetune/NAME.
    """

    method = "fine-tuned"

    def __init__(self, model_dir: str | Path, options: FinetuneConfig, out: str | Path, progress: bool = True):
        self.model_dir, self.options, self.out, self.progress = model_dir, options.validate(), Path(out), progress
        self.features = {
            "kind": "finetuned",
            "model": str(Path(model_dir).resolve()),
            "layer": options.layer,
            "pooling": options.pooling,
            "strands": options.strands,
        }

    def __call__(
        self, train: SequenceSet, dev: SequenceSet | None, classes: list[str], name: str
    ) -> FinetunedClassifier:
        if dev is None:
            train, dev = split_off(train, 0.1, self.options.train.seed)
        return finetune(self.model_dir, train, dev, classes, self.out / "finetune" / name, self.options, self.progress)
