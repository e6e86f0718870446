"""Training and validation batches from token stores: one genome or a weighted corpus of them.

`TrainWindows` yields random training batches. Window k of optimizer step s is a pure function
of (seed, s, k): which genome it comes from (drawn by the corpus weights; no draw when there is
one genome), then where. A step's accumulate x world_size x batch_size windows are dealt out to
the micro-batches and ranks in a fixed order. So every rank sees different windows, results do
not depend on the number of DataLoader workers, a resumed run continues with exactly the batches
it would have seen, and a run sees the same windows in each step on 1 or 64 processes as long as
the global batch (accumulate x world_size x batch_size) is the same.

`ValidationWindows` tiles one genome's held-out tokens; `CorpusValidation` chains them over the
genomes of a corpus, each batch tagged with its genome, so metrics come per genome and overall.

With genome tokens (data.genome_tokens, glm.model.genome_tags), every training and validation
window is its genome's token followed by window - 1 tokens of that genome: the tag takes one
position of the context and is never a target (it is only ever at position 0), so a window still
has window - 1 targets. Reverse-complement augmentation turns the genome's tokens only; the tag
is put first afterwards. The genome, and so the tag, is drawn from the window's own generator, so
window k of step s stays a pure function of (seed, s, k).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from glm.errors import InputError
from glm.model.batching import pad_batch
from glm.model.tokenizers import PAD, UNK
from glm.training.data import TokenStore


def sampling_weights(
    stores: Sequence[TokenStore], weights: Sequence[float | None] | None = None, temperature: float = 1.0
) -> np.ndarray:
    """How often each genome's windows are drawn: the given weights, or train tokens ** temperature.

    temperature 1 samples by size (every token equally likely), 0 every genome equally, values
    between flatten the sizes (as multilingual language models do). Normalised to sum to 1.
    """
    given = [weight for weight in (weights or []) if weight is not None]
    if given and len(given) != len(stores):
        raise InputError("corpus: give a weight for every genome of the manifest, or for none")
    if given:
        raw = np.asarray(given, dtype=np.float64)
    else:
        raw = np.array([store.n_tokens("train") for store in stores], dtype=np.float64) ** temperature
    return raw / raw.sum()


class TrainWindows(IterableDataset):
    """An endless stream of training micro-batches of random windows, (batch_size, window) int64 ids.

    `stores` is one TokenStore or several (a corpus) with their `weights` (see sampling_weights).
    Micro-batch i of this rank belongs to optimizer step s = i // accumulate. Window k of step s
    is drawn from its own generator seeded with (seed, s, k), and the step's accumulate x
    world_size x batch_size windows are dealt in order: micro-batch j of rank r takes windows
    (j * world_size + r) * batch_size onwards. Windows are uniform over a genome's train tokens;
    one whose fraction of UNK tokens is above `max_unknown_fraction` is redrawn (up to 64 times).
    With `rc_table`, each window is reverse-complemented with probability 1/2. With `tags` (the
    genome token of each store), each window is its genome's token then window - 1 tokens. Yields
    dicts with "ids" and "soft_masked".
    """

    def __init__(
        self,
        stores: TokenStore | Sequence[TokenStore],
        window: int,
        batch_size: int,
        seed: int,
        rank: int = 0,
        start_batch: int = 0,
        rc_table: np.ndarray | None = None,
        max_unknown_fraction: float = 0.5,
        world_size: int = 1,
        accumulate: int = 1,
        weights: np.ndarray | None = None,
        tags: Sequence[int] | None = None,
    ):
        self.stores = [stores] if isinstance(stores, TokenStore) else list(stores)
        self.tags = None if tags is None else list(tags)
        self.span = window - (tags is not None)  # tokens of the genome per window
        assert all(self.span <= store.n_tokens("train") for store in self.stores), "window longer than a genome"
        assert self.tags is None or len(self.tags) == len(self.stores)
        assert 0 <= rank < world_size, (rank, world_size)
        self.weights = sampling_weights(self.stores) if weights is None else np.asarray(weights)
        assert len(self.weights) == len(self.stores)
        self.window, self.batch_size = window, batch_size
        self.seed, self.rank, self.start_batch = seed, rank, start_batch
        self.world_size, self.accumulate = world_size, accumulate
        self.rc_table, self.max_unknown_fraction = rc_table, max_unknown_fraction

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        worker = get_worker_info()
        worker_id, n_workers = (worker.id, worker.num_workers) if worker else (0, 1)
        # The DataLoader takes one item from each worker in turn, so worker w serving batches
        # w, w + n, w + 2n, ... gives the same order for any number of workers.
        index = self.start_batch + worker_id
        while True:
            yield self.batch(index)
            index += n_workers

    def batch(self, index: int) -> dict[str, torch.Tensor]:
        """This rank's micro-batch number `index` (counted from the start of training)."""
        step, micro = divmod(index, self.accumulate)
        first = (micro * self.world_size + self.rank) * self.batch_size
        ids = np.empty((self.batch_size, self.window), dtype=np.int64)
        masked = np.empty((self.batch_size, self.window), dtype=np.uint8)
        for row in range(self.batch_size):
            ids[row], masked[row] = self.window_of(step, first + row)[1:]
        return {"ids": torch.from_numpy(ids), "soft_masked": torch.from_numpy(masked)}

    def window_of(self, step: int, slot: int) -> tuple[int, np.ndarray, np.ndarray]:
        """Window `slot` of optimizer step `step`: (genome index, ids, soft-masked counts)."""
        rng = np.random.default_rng([self.seed, step, slot])
        genome = 0 if len(self.stores) == 1 else int(rng.choice(len(self.stores), p=self.weights))
        tokens, soft = self.stores[genome].tokens("train"), self.stores[genome].soft_masked("train")
        n_starts = len(tokens) - self.span + 1
        for _ in range(64):  # a window survives only if 64 draws in a row were mostly N
            start = int(rng.integers(0, n_starts))
            ids = np.asarray(tokens[start : start + self.span], dtype=np.int64)
            if (ids == UNK).mean() <= self.max_unknown_fraction:
                break
        masked = np.asarray(soft[start : start + self.span], dtype=np.uint8)
        if self.rc_table is not None and rng.random() < 0.5:
            ids, masked = self.rc_table[ids[::-1]], masked[::-1]
        if self.tags is not None:
            ids, masked = np.concatenate([[self.tags[genome]], ids]), np.concatenate([[0], masked]).astype(np.uint8)
        return genome, ids, masked


class ValidationWindows(IterableDataset):
    """Fixed validation batches that tile one genome's held-out tokens.

    Consecutive windows overlap by one token, so every held-out token after the first is a
    prediction target exactly once. At most `max_windows` windows are used, spread evenly; the
    last window is padded with PAD (never a target). Rank r of `world_size` takes every
    world_size-th window, so ranks share the work without repeating it; a rank left without a
    window (tiny held-out data) yields one all-PAD batch, which adds nothing to the metrics.
    `splits`: the parts tiled, ("val",) for a trained genome, ("train", "val") for a genome held
    out of training whole. Each batch carries `genome`, the index it is reported under. With a
    genome token `tag`, each window is the tag then window - 1 held-out tokens, the pieces
    touching without overlap: the tag predicts the first, so every held-out token is a target once.
    """

    def __init__(
        self,
        store: TokenStore,
        window: int,
        batch_size: int,
        max_windows: int,
        rank: int = 0,
        world_size: int = 1,
        genome: int = 0,
        splits: tuple[str, ...] = ("val",),
        tag: int | None = None,
    ):
        sizes = {split: store.n_tokens(split) for split in splits}
        tagged = tag is not None
        self.span = min(window - tagged, max(sizes.values()))  # short held-out data: one shorter window
        self.store, self.window, self.batch_size, self.genome = store, self.span + tagged, batch_size, genome
        self.tag = tag
        starts = [
            (split, int(start))
            for split, n in sizes.items()
            if n > 0
            for start in np.arange(0, n if tagged else max(n - 1, 1), self.window - 1)
        ]
        if len(starts) > max_windows:
            starts = [starts[i] for i in np.linspace(0, len(starts) - 1, max_windows).round().astype(int)]
        self.starts = starts[rank::world_size]

    def __len__(self) -> int:
        return max(-(-len(self.starts) // self.batch_size), 1)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        genome = torch.tensor(self.genome)
        if len(self.starts) == 0:
            empty = torch.full((1, self.window), PAD, dtype=torch.int64)
            yield {"ids": empty, "soft_masked": torch.zeros_like(empty, dtype=torch.uint8), "genome": genome}
        for first in range(0, len(self.starts), self.batch_size):
            chunk = self.starts[first : first + self.batch_size]
            pieces = [self.store.tokens(split)[start : start + self.span] for split, start in chunk]
            soft = [self.store.soft_masked(split)[start : start + self.span] for split, start in chunk]
            if self.tag is not None:
                pieces = [np.concatenate([[self.tag], piece]) for piece in pieces]
                soft = [np.concatenate([[0], piece]) for piece in soft]
            ids, masked = pad_batch(pieces, self.window), pad_batch(soft, self.window, 0, np.uint8)
            yield {"ids": torch.from_numpy(ids), "soft_masked": torch.from_numpy(masked), "genome": genome}


class CorpusValidation(IterableDataset):
    """The validation batches of every genome of a corpus, one genome after the other."""

    def __init__(self, parts: Sequence[ValidationWindows]):
        self.parts = list(parts)

    def __len__(self) -> int:
        return sum(len(part) for part in self.parts)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        for part in self.parts:
            yield from part
