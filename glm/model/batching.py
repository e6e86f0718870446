"""The one token-batch builder: token lists with a leading SEP, padded after with PAD.

Every forward pass in glm (log-likelihoods, embeddings, variant windows, classifiers, validation
windows) starts a sequence with SEP, the record separator the model saw before each record in
training, so its first token is predicted too; and pads a batch's shorter rows *after* their
tokens, which a causal model never attends to, so padding changes no real position.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from glm.model.tokenizers import PAD, SEP, Tokenizer


def with_separator(ids: np.ndarray) -> np.ndarray:
    """SEP followed by `ids`, as int64."""
    return np.concatenate([np.array([SEP], dtype=np.int64), np.asarray(ids, dtype=np.int64)])


def sequence_tokens(tokenizer: Tokenizer, sequence: str) -> np.ndarray:
    """SEP then the tokens of `sequence`."""
    return with_separator(tokenizer.encode(sequence).ids)


def pad_batch(
    pieces: Sequence[np.ndarray], length: int | None = None, fill: int = PAD, dtype: type = np.int64
) -> np.ndarray:
    """(len(pieces), length) array of the pieces, left-aligned, `fill` after; length defaults to the longest."""
    length = max(len(piece) for piece in pieces) if length is None else length
    batch = np.full((len(pieces), length), fill, dtype=dtype)
    for row, piece in enumerate(pieces):
        batch[row, : len(piece)] = piece
    return batch
