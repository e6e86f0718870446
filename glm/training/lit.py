"""The thin Lightning layer: one LightningModule with a shared train/val step, and the DataModule.

Metrics are in bits per base: loss per token (nats) / ln 2 / bases per token, so models with
different k compare directly (text models report bits per character or per byte the same way;
`val/loss` stays in nats per token, as nanoGPT reports it). Validation sums
log-losses and token counts on every rank and reduces the sums, so the reported bits/base is
exactly the average over the held-out tokens, whatever the number of processes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Timer

from glm.config import Config, parse_duration
from glm.model.likelihood import logits_log_probs, scored_targets
from glm.model.tokenizers import Tokenizer
from glm.model.transformer import Transformer
from glm.threads import loader_workers
from glm.training.data import TokenStore
from glm.training.optimizers import Schedule, build_optimizer, warmup_steps
from glm.training.windows import CorpusValidation, TrainWindows, ValidationWindows


def target_weights(
    targets: torch.Tensor, soft_masked: torch.Tensor, soft_mask_weight: float, bases: float
) -> torch.Tensor:
    """Loss weight per target token: 0 for PAD/UNK/SEP, down-weighted by its soft-masked bases."""
    weights = scored_targets(targets).float()
    if soft_mask_weight != 1.0:
        lowercase = (soft_masked.float() / bases).clamp(max=1.0)
        weights = weights * (1.0 - (1.0 - soft_mask_weight) * lowercase)
    return weights


class LitGLM(pl.LightningModule):
    def __init__(
        self,
        config: dict[str, Any],
        bases_per_token: float,
        unit: str = "base",
        genomes: list[str] | None = None,
        held_out: list[str] | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()  # plain dicts, lists and floats: checkpoints load with weights_only=True
        # Validation is reported per genome when a corpus has several; the overall metric covers
        # the trained genomes only (held-out genomes are reported on their own).
        self.genomes, self.held_out = list(genomes or ["genome"]), set(held_out or [])
        self.config = Config.from_dict(config)
        self.bases_per_token = bases_per_token
        self.unit = unit
        self.metric = f"bits_per_{unit}"  # bits per base for DNA, per char or byte for text
        self.units_per_step: float | None = None  # bases (or sequences...) per optimizer step, all processes
        self.model = Transformer(self.config.model)
        train = self.config.train
        # Under FSDP the strategy wraps each block for activation checkpointing itself (trainer.build_strategy).
        self.model.activation_checkpointing = train.activation_checkpointing and train.strategy != "fsdp"
        if train.compile:
            for block in self.model.blocks:  # block by block: one small graph, reused for every layer
                block.compile()
        self._val_sums: torch.Tensor | None = None
        self._losses_finite: torch.Tensor | None = None  # over the micro-batches of the current step

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model(ids)

    def _shared_step(
        self, batch: dict[str, torch.Tensor], stage: str
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns (mean loss used for gradients, summed nll of valid targets, number of valid targets)."""
        ids = batch["ids"]
        inputs, targets = ids[:, :-1], ids[:, 1:]
        nll = -logits_log_probs(self.model(inputs), targets)  # (batch, time)
        valid = target_weights(targets, batch["soft_masked"][:, 1:], 1.0, self.bases_per_token)
        weight = valid
        if stage == "train":
            weight = target_weights(
                targets, batch["soft_masked"][:, 1:], self.config.data.soft_mask_weight, self.bases_per_token
            )
        loss = (nll * weight).sum() / weight.sum().clamp(min=1.0)
        return loss, (nll * valid).sum(), valid.sum()

    def units_in(self, batch: dict[str, torch.Tensor]) -> float:
        """Bases (characters, bytes) one micro-batch trains on: windows x (tokens - 1) x bases per token."""
        windows, tokens = batch["ids"].shape
        return windows * (tokens - 1) * self.bases_per_token

    def on_train_batch_start(self, batch: dict[str, torch.Tensor], batch_index: int) -> None:
        """Seed the random state (dropout) from (seed, rank, micro-batch), as the data are seeded.

        A resumed run then draws exactly the random numbers the uninterrupted run would have.
        """
        accumulate = self.trainer.accumulate_grad_batches
        micro_batch = self.global_step * accumulate + batch_index % accumulate
        sequence = np.random.SeedSequence([self.config.train.seed, self.global_rank, micro_batch])
        torch.manual_seed(int(sequence.generate_state(1)[0]))

    def training_step(self, batch: dict[str, torch.Tensor], batch_index: int) -> torch.Tensor:
        loss, nll_sum, count = self._shared_step(batch, "train")
        finite = torch.isfinite(loss.detach())  # checked once per optimizer step, without a sync here
        self._losses_finite = finite if self._losses_finite is None else self._losses_finite & finite
        mean_nll = (nll_sum / count.clamp(min=1.0)).detach()
        self.units_per_step = self.units_in(batch) * self.trainer.accumulate_grad_batches * self.trainer.world_size
        self.log(f"train/{self.unit}s_seen", float((self.global_step + 1) * self.units_per_step))
        self.log("train/loss", mean_nll, prog_bar=False)
        self.log(f"train/{self.metric}", mean_nll / math.log(2) / self.bases_per_token, prog_bar=True)
        return loss

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Stop at the first non-finite loss, on every rank at the same step.

        The flags are summed across ranks first: a rank that stopped alone would leave the others
        waiting for it in their next all-reduce.
        """
        assert self._losses_finite is not None
        ranks_with_bad_loss = self.trainer.strategy.reduce((~self._losses_finite).float(), reduce_op="sum")
        self._losses_finite = None
        if ranks_with_bad_loss.item() > 0:
            raise FloatingPointError(
                f"non-finite training loss (nan or inf) at step {self.global_step} on "
                f"{int(ranks_with_bad_loss.item())} of {self.trainer.world_size} processes; "
                "try a lower --lr, or bf16-mixed instead of 16-mixed precision"
            )

    def on_validation_epoch_start(self) -> None:
        self._val_sums = torch.zeros(len(self.genomes), 2, dtype=torch.float64, device=self.device)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_index: int) -> None:
        _, nll_sum, count = self._shared_step(batch, "val")
        assert self._val_sums is not None
        self._val_sums[int(batch.get("genome", 0))] += torch.stack([nll_sum.double(), count.double()])

    def on_validation_epoch_end(self) -> None:
        assert self._val_sums is not None
        sums = self.trainer.strategy.reduce(self._val_sums, reduce_op="sum")  # (genomes, [nll, count])
        trained = torch.tensor([name not in self.held_out for name in self.genomes], device=sums.device)
        overall = sums[trained].sum(dim=0)
        mean_nll = (overall[0] / overall[1].clamp(min=1.0)).float()
        # Already reduced across ranks: log without a second (averaging) sync.
        self.log("val/loss", mean_nll, sync_dist=False, rank_zero_only=False)
        self.log(f"val/{self.metric}", mean_nll / math.log(2) / self.bases_per_token, prog_bar=True, sync_dist=False)
        if len(self.genomes) > 1:
            for name, (nll, count) in zip(self.genomes, sums):
                bits = (nll / count.clamp(min=1.0)).float() / math.log(2) / self.bases_per_token
                self.log(f"val/{name}/{self.metric}", bits, sync_dist=False)
        if self.units_per_step is not None:  # known once a training step ran
            self.log(f"val/{self.unit}s_seen", float(self.global_step * self.units_per_step), sync_dist=False)

    def configure_optimizers(self) -> dict[str, Any]:
        train = self.config.train
        optimizer = build_optimizer(self.model, train, fused=self.device.type == "cuda")
        multiplier = Schedule(warmup_steps(train), train.min_lr_ratio, train.schedule, train.decay_fraction)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: multiplier(step, self._progress(step)))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def _progress(self, step: int) -> float:
        """Fraction of the training budget used: the larger of the step and wall-clock fractions."""
        progress = step / self.config.train.max_steps
        if self.config.train.max_time and self._trainer is not None:
            budget = parse_duration(self.config.train.max_time).total_seconds()
            timer = next((c for c in self.trainer.callbacks if isinstance(c, Timer)), None)
            if timer is not None:
                progress = max(progress, timer.time_elapsed("train") / budget)
        return progress


class GenomeDataModule(pl.LightningDataModule):
    """Serves prepared token stores: random training windows (weighted across the genomes of a
    corpus) and fixed validation windows of every genome; `held_out` genomes are only validated.
    `tags`: each store's genome token (data.genome_tokens), put first in its windows."""

    def __init__(
        self,
        stores: TokenStore | list[TokenStore],
        tokenizer: Tokenizer,
        config: Config,
        window: int,
        weights: np.ndarray | None = None,
        held_out: list[bool] | None = None,
        tags: list[int] | None = None,
    ):
        super().__init__()
        self.stores = [stores] if isinstance(stores, TokenStore) else list(stores)
        self.held_out = list(held_out or [False] * len(self.stores))
        self.tags = tags
        self.tokenizer, self.config, self.window, self.weights = tokenizer, config, window, weights

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        data, train, trainer = self.config.data, self.config.train, self.trainer
        accumulate = trainer.accumulate_grad_batches
        rc_table = (
            self.tokenizer.reverse_complement_table() if data.rc_augment and self.tokenizer.kind == "kmer" else None
        )
        dataset = TrainWindows(
            [store for store, out in zip(self.stores, self.held_out) if not out],
            window=self.window,
            batch_size=train.batch_size,
            seed=train.seed,
            rank=trainer.global_rank,
            # After a resume, global_step is restored before this is called: continue the batch stream.
            start_batch=trainer.global_step * accumulate,
            rc_table=rc_table,
            max_unknown_fraction=data.max_unknown_fraction,
            world_size=trainer.world_size,
            accumulate=accumulate,
            weights=self.weights,
            tags=None if self.tags is None else [tag for tag, out in zip(self.tags, self.held_out) if not out],
        )
        return self._loader(dataset, loader_workers(data.num_workers))  # workers + threads <= allowed CPUs

    def val_dataloader(self) -> torch.utils.data.DataLoader:
        train = self.config.train
        rank, world = self.trainer.global_rank, self.trainer.world_size
        parts = [
            ValidationWindows(
                store,
                self.window,
                train.batch_size,
                train.val_windows,
                rank,
                world,
                genome=index,
                splits=("train", "val") if out else ("val",),
                tag=None if self.tags is None else self.tags[index],
            )
            for index, (store, out) in enumerate(zip(self.stores, self.held_out))
        ]
        return self._loader(parts[0] if len(parts) == 1 else CorpusValidation(parts), 0)

    @staticmethod
    def _loader(dataset: torch.utils.data.IterableDataset, workers: int) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(
            dataset,
            batch_size=None,
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=torch.cuda.is_available(),
        )
