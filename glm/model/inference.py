"""Sliding-window inference: log-likelihoods and pooled embeddings of sequences of any length.

Every sequence is scored after a leading SEP token (the record separator the model saw before
each record in training), so its first token is predicted too. Sequences longer than the
model's context are processed in sliding windows that advance by half a context; every token
is scored (or embedded) in the window that gives it the most preceding context, at least half a
context once the sequence is that long. Windows run in batches of `batch_size`, so memory stays
bounded however long the input.

A model trained with genome tokens sees its genome's token at position 0 of every window, as in
training (`genome_token`): in place of the leading SEP in the first window, and in place of the
first token of each later one (a position no later window keeps: it was scored earlier). The tag
is never a target, so log-likelihoods and bits per base count the sequence's bases only.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from glm.alphabet import reverse_complement
from glm.config import Pooling, Strands, check_bounds
from glm.errors import InputError, check_choice
from glm.model.batching import pad_batch, with_separator
from glm.model.likelihood import token_log_probs
from glm.model.tokenizers import NOT_A_TARGET, Encoding, Tokenizer
from glm.model.transformer import Transformer


@dataclass
class LogLikelihood:
    """Log-likelihood of one sequence: `total` in nats over `bases` scored bases (N excluded)."""

    total: float
    bases: int

    @property
    def bits_per_base(self) -> float:
        return -self.total / math.log(2) / self.bases if self.bases else math.nan


@dataclass
class _Window:
    sequence: int  # which input sequence
    start: int  # first token of the window in that sequence's token list
    keep_from: int  # positions before this are covered by an earlier window


def plan_windows(n_tokens: int, window: int) -> list[tuple[int, int]]:
    """(start, keep_from) for sliding windows of `window` tokens advancing by half a window.

    Each position p >= 0 of the token list is kept from exactly one window: the first window
    keeps everything it holds, each later one only the positions no earlier window kept.
    """
    if n_tokens <= window:
        return [(0, 0)]
    step = max(window // 2, 1)
    plan, covered, start = [(0, 0)], window, 0
    while covered < n_tokens:
        start = min(start + step, n_tokens - window)
        plan.append((start, covered))
        covered = start + window
    return plan


def encode(tokenizer: Tokenizer, sequence: str) -> tuple[Encoding, np.ndarray]:
    """The encoding of `sequence` and its token ids with the leading SEP."""
    if not sequence:
        raise InputError("sequence: empty input sequence")
    try:
        encoding = tokenizer.encode(sequence)
    except InputError as error:
        raise InputError(f"{error} (in an input sequence of length {len(sequence)})") from None
    return encoding, with_separator(encoding.ids)


def log_likelihoods(
    model: Transformer,
    tokenizer: Tokenizer,
    sequences: Sequence[str],
    batch_size: int = 16,
    progress: bool = False,
    genome_token: int | None = None,
) -> list[LogLikelihood]:
    """log P(sequence) of each sequence, summed over every scored base (N and IUPAC excluded).

    genome_token: the tag that starts every window of a model trained with genome tokens.
    """
    encodings = [encode(tokenizer, sequence) for sequence in sequences]
    totals = [0.0] * len(encodings)
    windows = run_windows(model, [ids for _, ids in encodings], "log_probs", batch_size, progress, genome_token)
    for index, start, keep_from, log_probs in windows:
        positions = np.arange(max(keep_from, 1), start + len(log_probs) + 1)  # target positions in ids
        totals[index] += float(log_probs[positions - start - 1].sum())  # 0 at N and other non-targets
    results = []
    for (encoding, ids), total in zip(encodings, totals):
        scored = ~np.isin(ids[1:], NOT_A_TARGET)
        results.append(LogLikelihood(total=total, bases=int(encoding.new_bases()[scored].sum())))
    return results


def embed(
    model: Transformer,
    tokenizer: Tokenizer,
    sequences: Sequence[str],
    layer: int = -1,
    pooling: Pooling = "mean",
    strands: Strands = "forward",
    batch_size: int = 16,
    progress: bool = False,
    genome_token: int | None = None,
) -> np.ndarray:
    """Pooled hidden states of one layer, (n_sequences, width) float32; see GenomicLM.embed.

    genome_token: the tag that starts every window of a model trained with genome tokens.
    """
    check_choice("pooling", pooling, Pooling)
    check_choice("strands", strands, Strands)
    if strands == "both" and tokenizer.kind != "kmer":
        raise InputError("strands='both' needs a DNA model (reverse complements of text do not exist)")
    model.check_layer(layer)
    items = list(sequences)
    if strands == "forward":
        return _pooled(model, tokenizer, items, layer, pooling, batch_size, progress, genome_token)
    both_strands = items + [reverse_complement(s) for s in items]
    both = _pooled(model, tokenizer, both_strands, layer, pooling, batch_size, progress, genome_token)
    return (both[: len(items)] + both[len(items) :]) / 2


def _pooled(
    model: Transformer,
    tokenizer: Tokenizer,
    items: list[str],
    layer: int,
    pooling: str,
    batch_size: int,
    progress: bool,
    genome_token: int | None,
) -> np.ndarray:
    """(len(items), width) pooled states of one layer, each token taken from exactly one window."""
    token_lists = [encode(tokenizer, sequence)[1] for sequence in items]
    pooled = np.zeros((len(items), model.config.width), dtype=np.float32)
    if pooling == "max":
        pooled[:] = -np.inf
    for index, start, keep_from, states in run_windows(model, token_lists, layer, batch_size, progress, genome_token):
        keep = states[max(keep_from, 1) - start :]  # position 0 is the leading SEP: not pooled
        if pooling == "mean":
            pooled[index] += keep.sum(axis=0)
        elif pooling == "max":
            pooled[index] = np.maximum(pooled[index], keep.max(axis=0, initial=-np.inf))
        elif start + len(states) == len(token_lists[index]):
            pooled[index] = states[-1]
    if pooling == "mean":
        pooled /= np.array([max(len(ids) - 1, 1) for ids in token_lists], dtype=np.float32)[:, None]
    return pooled


@torch.inference_mode()
def run_windows(
    model: Transformer,
    token_lists: list[np.ndarray],
    output: str | int,
    batch_size: int,
    progress: bool,
    genome_token: int | None = None,
) -> Iterator[tuple[int, int, int, np.ndarray]]:
    """Run the model over sliding windows of every token list, in batches.

    Yields (sequence index, window start, keep_from, values) where values are, for
    output="log_probs", log P(token[t] | earlier tokens in the window) for t = start+1 ..
    start+len, and for an integer output, that layer's hidden states of the window.
    With a `genome_token`, it replaces each window's first token (never kept: see plan_windows).
    """
    check_bounds("batch_size", batch_size, "[1, inf)")
    device = next(model.parameters()).device
    window = model.config.context + 1
    jobs = [
        _Window(index, start, keep_from)
        for index, ids in enumerate(token_lists)
        for start, keep_from in plan_windows(len(ids), window)
    ]
    batches = range(0, len(jobs), batch_size)
    for first in tqdm(batches, desc="windows", unit="batch", disable=not progress or len(batches) < 2):
        batch = jobs[first : first + batch_size]
        pieces = [token_lists[job.sequence][job.start : job.start + window] for job in batch]
        if genome_token is not None:
            pieces = [np.concatenate([[genome_token], piece[1:]]) for piece in pieces]
        ids = torch.from_numpy(pad_batch(pieces)).to(device)
        if output == "log_probs":
            values = token_log_probs(model, ids).cpu().numpy()
            trim = [len(piece) - 1 for piece in pieces]
        else:
            values = model.hidden_states(ids)[int(output)].float().cpu().numpy()
            trim = [len(piece) for piece in pieces]
        for row, job in enumerate(batch):
            yield job.sequence, job.start, job.keep_from, values[row, : trim[row]]
