"""The one token-batch builder: token lists with a leading SEP, padded after with PAD.

Every forward pass in glm (log-likelihoods, embeddings, variant windows, classifiers, validation
windows) starts a sequence with SEP, the record separator the model saw before each record in
training, so its first token is predicted too; and pads a batch's shorter rows *after* their
tokens, which a causal model never attends to, so padding changes no real position.
A model trained with genome tokens (glm.model.genome_tags) has its genome's token first instead
of SEP (`first`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from glm.model.tokenizers import PAD, SEP, Tokenizer


def with_separator(ids: np.ndarray, first: int = SEP) -> np.ndarray:
    """SEP (or `first`, a genome token) followed by `ids`, as int64."""
    return np.concatenate([np.array([first], dtype=np.int64), np.asarray(ids, dtype=np.int64)])


def sequence_tokens(tokenizer: Tokenizer, sequence: str, first: int = SEP) -> np.ndarray:
    """SEP (or `first`, a genome token) then the tokens of `sequence`."""
    return with_separator(tokenizer.encode(sequence).ids, first)


def pad_batch(
    pieces: Sequence[np.ndarray], length: int | None = None, fill: int = PAD, dtype: type = np.int64
) -> np.ndarray:
    """(len(pieces), length) array of the pieces, left-aligned, `fill` after; length defaults to the longest."""
    length = max(len(piece) for piece in pieces) if length is None else length
    batch = np.full((len(pieces), length), fill, dtype=dtype)
    for row, piece in enumerate(pieces):
        batch[row, : len(piece)] = piece
    return batch
