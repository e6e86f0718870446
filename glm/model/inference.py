"""Sliding-window inference: log-likelihoods and pooled embeddings of sequences of any length.

Every sequence is scored after a leading SEP token (the record separator the model saw before
each record in training), so its first token is predicted too. Sequences longer than the
model's context are processed in sliding windows that advance by half a context; every token
is scored (or embedded) in the window that gives it the most preceding context, at least half a
context once the sequence is that long. Windows run in batches of `batch_size`, so memory stays
bounded however long the input; `record_log_likelihood` also reads a genome record `READ_PIECE`
bases at a time, so not even the sequence is held (`GenomicLM.evaluate`).

A model trained with genome tokens sees its genome's token at position 0 of every window, as in
training (`genome_token`): in place of the leading SEP in the first window, and in place of the
first token of each later one (a position no later window keeps: it was scored earlier). The tag
is never a target, so log-likelihoods and bits per base count the sequence's bases only.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from glm.alphabet import reverse_complement
from glm.config import Pooling, Strands
from glm.fields import check_bounds
from glm.errors import InputError, check_choice
from glm.io.genome import RecordView
from glm.io.progress import Progress, progress_bar
from glm.model.batching import pad_batch, with_separator
from glm.model.likelihood import token_log_probs
from glm.model.tokenizers import NOT_A_TARGET, Encoding, Tokenizer, encode_in_chunks
from glm.model.transformer import Transformer

READ_PIECE = 1 << 20  # bases of a genome record read (and encoded) at a time by record_log_likelihood


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
    ids: np.ndarray  # the window's tokens


def plan_windows(n_tokens: int, window: int) -> list[tuple[int, int]]:
    """(start, keep_from) for sliding windows of `window` tokens advancing by half a window.

    Each position p >= 0 of the token list is kept from exactly one window: the first window
    keeps everything it holds, each later one only the positions no earlier window kept.
    """
    return list(_window_plan(lambda wanted: n_tokens, window))


def _window_plan(tokens_up_to: Callable[[int], int], window: int) -> Iterator[tuple[int, int]]:
    """plan_windows for a token list whose length is learnt as it is read.

    tokens_up_to(wanted): the list's length when it is shorter than `wanted`, else any number
    >= wanted (so a reader reads only as far as the next window needs).
    """
    yield 0, 0
    if tokens_up_to(window + 1) <= window:
        return
    step = max(window // 2, 1)
    covered, start = window, 0
    while tokens_up_to(covered + 1) > covered:
        start = min(start + step, tokens_up_to(start + step + window) - window)  # the last window ends at the end
        yield start, covered
        covered = start + window


def encode(tokenizer: Tokenizer, sequence: str) -> tuple[Encoding, np.ndarray]:
    """The encoding of `sequence` and its token ids with the leading SEP."""
    _require_bases(sequence)
    try:
        encoding = tokenizer.encode(sequence)
    except InputError as error:
        raise InputError(f"{error} (in an input sequence of length {len(sequence)})") from None
    return encoding, with_separator(encoding.ids)


def _require_bases(sequence: str | RecordView) -> None:
    if not len(sequence):
        raise InputError("sequence: empty input sequence")


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
        totals[index] += _kept_log_prob(start, keep_from, log_probs)
    results = []
    for (encoding, ids), total in zip(encodings, totals):
        scored = ~np.isin(ids[1:], NOT_A_TARGET)
        results.append(LogLikelihood(total=total, bases=int(encoding.new_bases()[scored].sum())))
    return results


def record_log_likelihood(
    model: Transformer,
    tokenizer: Tokenizer,
    sequence: RecordView,
    batch_size: int = 16,
    progress: bool = False,
    genome_token: int | None = None,
) -> LogLikelihood:
    """`log_likelihoods` of one genome record, read `READ_PIECE` bases at a time.

    The same windows in the same batches, so the same numbers, with memory bounded by a piece
    and a batch of windows however long the record.
    """
    _require_bases(sequence)
    check_bounds("batch_size", batch_size, "[1, inf)")
    window = model.config.context + 1
    shown = progress and len(sequence) > READ_PIECE  # a record of one piece is read at once: no bar
    bar = progress_bar(len(sequence), "bases", f"{tokenizer.unit}s", enabled=shown, scale=True)
    with bar:
        stream = _TokenStream(tokenizer, sequence, bar)
        plan = _window_plan(stream.tokens_up_to, window)
        jobs = (_Window(0, start, keep_from, stream.window(start, window)) for start, keep_from in plan)
        total = 0.0  # added window by window, in the order log_likelihoods adds them: the same float
        for _, start, keep_from, log_probs in _run_batches(model, jobs, "log_probs", batch_size, genome_token):
            total += _kept_log_prob(start, keep_from, log_probs)
    return LogLikelihood(total=total, bases=stream.bases)


def _kept_log_prob(start: int, keep_from: int, log_probs: np.ndarray) -> float:
    """The summed log-probabilities of the targets a window keeps (0 at N and other non-targets)."""
    positions = np.arange(max(keep_from, 1), start + len(log_probs) + 1)  # target positions in the token list
    return float(log_probs[positions - start - 1].sum())


class _TokenStream:
    """The token list of a record (leading SEP first), encoded a piece at a time as windows ask for it.

    Only the tokens from the latest window's start on are held; `bases` counts the scored bases
    of the pieces read, as `log_likelihoods` counts them over the whole encoding.
    """

    def __init__(self, tokenizer: Tokenizer, sequence: RecordView, bar: Progress):
        self._pieces = encode_in_chunks(tokenizer, sequence, READ_PIECE)  # type: ignore[arg-type]
        self._bar = bar
        self.held, self.first = with_separator([]), 0  # held[0] is token `first` of the list
        self.bases = 0
        # Bases of a piece's first token that the piece before already counted: 0 for the first
        # piece, then k - stride (the overlap of k-mers taken every stride < k bases).
        self._counted, self._overlap = 0, getattr(tokenizer, "k", 1) - getattr(tokenizer, "stride", 1)

    def tokens_up_to(self, wanted: int) -> int:
        """Read pieces until `wanted` tokens are known or the record ends; how many are known."""
        while self.first + len(self.held) < wanted and (encoding := next(self._pieces, None)) is not None:
            new_bases = encoding.new_bases()
            new_bases[0] -= self._counted
            self._counted = self._overlap
            self.bases += int(new_bases[~np.isin(encoding.ids, NOT_A_TARGET)].sum())
            self.held = np.concatenate([self.held, encoding.ids])
            self._bar.update(int(new_bases.sum()))
        return self.first + len(self.held)

    def window(self, start: int, length: int) -> np.ndarray:
        """Tokens [start, start + length) of the list (fewer at its end); earlier tokens are let go."""
        self.tokens_up_to(start + length)
        self.held, self.first = self.held[start - self.first :], start  # later windows start no earlier
        return self.held[:length].copy()


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
    window = model.config.context + 1
    jobs = [
        _Window(index, start, keep_from, ids[start : start + window])
        for index, ids in enumerate(token_lists)
        for start, keep_from in plan_windows(len(ids), window)
    ]
    batches = -(-len(jobs) // batch_size)
    with progress_bar(batches, "windows", "batches", enabled=progress and batches > 1) as bar:
        yield from _run_batches(model, jobs, output, batch_size, genome_token, bar)


@torch.inference_mode()
def _run_batches(
    model: Transformer,
    jobs: Iterable[_Window],
    output: str | int,
    batch_size: int,
    genome_token: int | None,
    bar: Progress | None = None,
) -> Iterator[tuple[int, int, int, np.ndarray]]:
    """run_windows over windows given one by one (so they can be read as they go), `batch_size` at a time."""
    device = next(model.parameters()).device
    windows = iter(jobs)
    while batch := list(itertools.islice(windows, batch_size)):
        pieces = [job.ids for job in batch]
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
        if bar is not None:
            bar.update(1)
