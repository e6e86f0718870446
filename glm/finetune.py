"""Fine-tuning a pretrained model end to end as a sequence classifier, through Lightning.

The Trainer is glm.train's `build_trainer` (devices, precision, checkpoints, loggers, progress
bar: the same options as pretraining). The network is glm.classify's SequenceClassifierNet:
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
import warnings
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.callbacks import EarlyStopping
from torch.utils.data import DataLoader, IterableDataset

from glm.checkpoint import load_model
from glm.classify import FinetunedClassifier, FinetuneOptions, SequenceClassifierNet, encode_batch
from glm.config import Config
from glm.genome import reverse_complement
from glm.heads import label_indices
from glm.lit import LitGLM
from glm.sequences import SequenceSet
from glm.tokenizers import Tokenizer
from glm.train import build_trainer

METRIC = "val/bits_per_sequence"
warnings.filterwarnings("ignore", message=".*does not have many workers.*")


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
            yield {"ids": pad(pieces), "labels": torch.from_numpy(self.labels[rows])}
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
            yield {"ids": pad([self.token_lists[row] for row in rows]), "labels": torch.from_numpy(self.labels[rows])}


def pad(pieces: list[np.ndarray]) -> torch.Tensor:
    """Token lists of one batch, PAD (0) after the shorter ones: (batch, longest)."""
    batch = np.zeros((len(pieces), max(len(piece) for piece in pieces)), dtype=np.int64)
    for row, piece in enumerate(pieces):
        batch[row, : len(piece)] = piece
    return torch.from_numpy(batch)


class ClassificationData(pl.LightningDataModule):
    def __init__(
        self,
        train: SequenceSet,
        dev: SequenceSet,
        classes: list[str],
        tokenizer: Tokenizer,
        context: int,
        options: FinetuneOptions,
    ):
        super().__init__()

        def tokens(sequences: list[str]) -> list[np.ndarray]:
            return [row for row in encode_batch(tokenizer, sequences, context).numpy()]

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
        seed = self.options.seed
        dataset = TrainBatches(self.train_tokens, self.train_labels, self.options.batch_size, seed, rank)
        return DataLoader(dataset, batch_size=None)

    def val_dataloader(self) -> DataLoader:
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        dataset = DevBatches(self.dev_tokens, self.dev_labels, 4 * self.options.batch_size, rank, world)
        return DataLoader(dataset, batch_size=None)


def finetune(
    model_dir: str | Path,
    train: SequenceSet,
    dev: SequenceSet,
    classes: list[str],
    run_dir: str | Path,
    options: FinetuneOptions,
    progress: bool = True,
) -> FinetunedClassifier:
    """Fine-tune the model in `model_dir` on labelled train sequences, early-stopping on dev.

    Logs and checkpoints go to `run_dir` (logs/, checkpoints/best.ckpt); returns the classifier
    with the weights of the best dev evaluation.
    """
    run_dir = Path(run_dir)
    backbone, tokenizer, _ = load_model(model_dir, "cpu")
    train_options = {
        "batch_size": options.batch_size,
        "max_steps": options.max_steps,
        "max_time": options.max_time,
        "lr": options.lr,
        "warmup_steps": options.warmup_steps,
        "val_every": options.val_every,
        "precision": options.precision,
        "accelerator": options.accelerator,
        "devices": options.devices,
        "num_nodes": options.num_nodes,
        "seed": options.seed,
    }
    config = Config.from_dict({"model": asdict(backbone.config), "train": train_options})
    pl.seed_everything(options.seed, verbose=False)
    lit = LitClassifier(config.to_dict(), len(classes), options.layer, options.pooling)
    lit.model.backbone.load_state_dict(backbone.state_dict(), strict=True)
    data = ClassificationData(train, dev, classes, tokenizer, backbone.config.context, options)
    stop = EarlyStopping(monitor=METRIC, mode="min", patience=options.patience)
    trainer = build_trainer(config, run_dir, progress, [stop], unit="sequence")
    trainer.fit(lit, datamodule=data)
    if trainer.interrupted:
        raise KeyboardInterrupt
    best = trainer.checkpoint_callback.best_model_path  # our own checkpoint, written by this run
    if best:
        lit.load_state_dict(torch.load(best, map_location="cpu", weights_only=True)["state_dict"])
    info = {
        "pretrained_model": str(Path(model_dir).resolve()),
        "steps": trainer.global_step,
        "best_dev_bits_per_sequence": float(trainer.checkpoint_callback.best_model_score or math.nan),
        "train": len(train),
        "dev": len(dev),
        "options": asdict(options),
    }
    return FinetunedClassifier(lit.model.cpu().eval(), tokenizer, classes, options.strands, info)
