"""The forward passes behind zero-shot scores: each distinct reference window once, then alt suffixes.

Input: the distinct reference token lists and one `Pair` per (variant, strand). Output: per pair,
the log-likelihood ratio, the cosine and L2 distances of the mean-pooled embeddings and, when
asked, the embedding delta. The fast path runs every reference window once with its keys and
values cached; an alternative window shares every token before the variant with its reference,
so only its suffix is run, attending to the cached prefix. The naive path (`reuse=False`) runs
two full windows per pair: the reference the fast path is tested against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from glm.io.progress import progress_bar
from glm.model.likelihood import target_log_probs
from glm.model.checkpoint import inference_autocast
from glm.model.transformer import KVCache, Transformer
from glm.scoring.plan import ScoringPlan


@dataclass
class Pair:
    """One (variant, strand): which distinct reference window it uses and its alternative tokens."""

    variant: int  # index in the variant list
    strand: int  # 0 forward, 1 reverse
    ref: int  # index of its reference window among the distinct ones
    alt_ids: np.ndarray  # SEP + tokens of the alternative window
    shared: int  # leading tokens identical in the ref and alt token lists (>= 1: the SEP)


@dataclass
class PairResults:
    llr: np.ndarray  # (pairs,)
    cosine: np.ndarray  # (pairs,)
    l2: np.ndarray  # (pairs,)
    delta: np.ndarray | None  # (pairs, width): alt minus ref pooled embedding, when asked for


class _DeviceResults:
    """Results gathered on the model's device, chunk by chunk, and copied to the host once at the end."""

    def __init__(self, keep_delta: bool):
        self.keep_delta = keep_delta
        self.pairs: list[np.ndarray] = []  # pair numbers of each stored chunk (host)
        self.values: list[torch.Tensor] = []  # (chunk, 3 [+ width]) float64 on the device

    def store(self, chunk: list[int], llr: torch.Tensor, ref_pooled: torch.Tensor, alt_pooled: torch.Tensor) -> None:
        """Results of the pairs in `chunk` from their llr and (n, width) float64 pooled embeddings."""
        difference = alt_pooled - ref_pooled
        columns = [llr[:, None], (1 - F.cosine_similarity(ref_pooled, alt_pooled, dim=-1))[:, None]]
        columns += [difference.norm(dim=-1)[:, None]] + ([difference] if self.keep_delta else [])
        self.pairs.append(np.asarray(chunk))
        self.values.append(torch.cat(columns, dim=1))

    def to_host(self, n_pairs: int, width: int) -> PairResults:
        table = np.zeros((n_pairs, 3 + (width if self.keep_delta else 0)))
        if self.values:
            table[np.concatenate(self.pairs)] = torch.cat(self.values).cpu().numpy()  # the one copy back
        return PairResults(table[:, 0], table[:, 1], table[:, 2], table[:, 3:] if self.keep_delta else None)


@dataclass
class _ReferenceBatch:
    """What a batch of reference windows leaves for its alternatives: cache, log-probs, pooled states."""

    cache: KVCache
    log_probs: torch.Tensor  # (refs, T - 1) float64: log P(token t) at column t - 1
    prefix_sums: torch.Tensor  # (refs, T, width): sum of the pooled layer's states 0..t
    pooled: torch.Tensor  # (refs, width): mean over positions 1 .. T-1


def score_pairs(model: Transformer, refs: list[np.ndarray], pairs: list[Pair], plan: ScoringPlan) -> PairResults:
    """Scores of every pair: the cached fast path, or with plan.reuse False two full passes per pair.

    Every value stays on the model's device until all pairs are scored: one copy back in all.
    """
    results = _DeviceResults(plan.keep_delta)
    with inference_autocast(next(model.parameters()).device, plan.precision):
        (_score_reusing if plan.reuse else _score_naive)(model, refs, pairs, plan, results)
    return results.to_host(len(pairs), model.config.width)


@torch.inference_mode()
def _score_reusing(
    model: Transformer, refs: list[np.ndarray], pairs: list[Pair], plan: ScoringPlan, results: _DeviceResults
) -> None:
    """Each distinct reference window once (keys/values cached), then each alternative's suffix only."""
    device, layer, batch_size = next(model.parameters()).device, plan.layer, plan.batch_size
    by_ref: dict[int, list[int]] = {}
    for number, pair in enumerate(pairs):
        by_ref.setdefault(pair.ref, []).append(number)
    order = list(by_ref)
    with progress_bar(len(pairs), "scoring", "windows", enabled=plan.progress) as bar:
        for first in range(0, len(order), batch_size):
            batch_refs = order[first : first + batch_size]
            ids = torch.from_numpy(np.stack([refs[ref] for ref in batch_refs])).to(device)  # (refs, T)
            cache = model.new_cache(ids.shape[1])
            states = model.hidden_states(ids, cache)
            pooled_states = states[layer].double()
            prefix_sums = torch.cumsum(pooled_states, dim=1)
            n_pooled = ids.shape[1] - 1  # positions 1 .. T-1 (the SEP at 0 is not pooled)
            reference = _ReferenceBatch(
                cache=cache,
                log_probs=target_log_probs(model, states[-1][:, :-1], ids[:, 1:]).double(),
                prefix_sums=prefix_sums,
                pooled=(prefix_sums[:, -1] - pooled_states[:, 0]) / n_pooled,
            )
            row_of = {ref: row for row, ref in enumerate(batch_refs)}
            jobs = sorted((pairs[n].shared, n) for ref in batch_refs for n in by_ref[ref])
            numbers = [n for _, n in jobs]
            rows = torch.tensor([row_of[pairs[n].ref] for n in numbers], device=device)  # one upload per batch
            alt_ids = torch.from_numpy(np.stack([pairs[n].alt_ids for n in numbers])).to(device)
            for first_job, last_job in suffix_chunks([shared for shared, _ in jobs], ids.shape[1], batch_size):
                chunk = numbers[first_job:last_job]
                piece = slice(first_job, last_job)
                start = jobs[first_job][0] - 1
                _score_suffixes(model, alt_ids[piece], start, chunk, reference, rows[piece], layer, results)
                bar.update(len(chunk))


def suffix_chunks(shared: list[int], n_tokens: int, batch_size: int) -> list[tuple[int, int]]:
    """[first, last) job ranges whose alternative suffixes hold about batch_size whole windows of tokens.

    `shared` is sorted: a chunk runs from its first job's first difference, so its cost is
    (jobs) x (n_tokens - shared[first] + 1) tokens; short suffixes (late variants) pack densely.
    """
    budget, chunks, first = batch_size * n_tokens, [], 0
    while first < len(shared):
        suffix = max(n_tokens - shared[first] + 1, 1)
        last = min(first + max(budget // suffix, 1), len(shared))
        chunks.append((first, last))
        first = last
    return chunks


def _score_suffixes(
    model: Transformer,
    alt_ids: torch.Tensor,
    start: int,
    chunk: list[int],
    reference: _ReferenceBatch,
    rows: torch.Tensor,
    layer: int,
    results: _DeviceResults,
) -> None:
    """Run the alternative windows (alt_ids, one row per pair of `chunk`) from `start` on the cached prefix.

    All rows restart at one position `start` (the earliest first difference in the chunk, minus one
    so that the token there is predicted): positions before it are identical in ref and alt.
    """
    n_tokens = alt_ids.shape[1]
    ref_log_probs, prefix_sums, ref_pooled = (
        reference.log_probs[rows],
        reference.prefix_sums[rows],
        reference.pooled[rows],
    )
    if start == n_tokens - 1:  # every alt equals its reference: nothing changes
        results.store(chunk, torch.zeros(len(chunk), dtype=torch.float64, device=rows.device), ref_pooled, ref_pooled)
        return
    cache = reference.cache.select(rows, start)
    states = model.hidden_states(alt_ids[:, start:], cache)  # positions start .. T-1
    alt_log_probs = target_log_probs(model, states[-1][:, :-1], alt_ids[:, start + 1 :]).double()
    llr = alt_log_probs.sum(1) - ref_log_probs[:, start:].sum(1)
    suffix = states[layer].double()[:, 1:] if start == 0 else states[layer].double()
    prefix = prefix_sums[:, start - 1] - prefix_sums[:, 0] if start > 1 else 0.0  # positions 1 .. start-1
    alt_pooled = (prefix + suffix.sum(1)) / (n_tokens - 1)
    results.store(chunk, llr, ref_pooled, alt_pooled)


@torch.inference_mode()
def _score_naive(
    model: Transformer, refs: list[np.ndarray], pairs: list[Pair], plan: ScoringPlan, results: _DeviceResults
) -> None:
    """Two full forward passes per pair, nothing shared: the reference for the fast path."""
    device, layer = next(model.parameters()).device, plan.layer
    half = max(plan.batch_size // 2, 1)
    with progress_bar(len(pairs), "scoring", "windows", enabled=plan.progress) as bar:
        for first in range(0, len(pairs), half):
            chunk = list(range(first, min(first + half, len(pairs))))
            windows = [refs[pairs[n].ref] for n in chunk] + [pairs[n].alt_ids for n in chunk]
            ids = torch.from_numpy(np.stack(windows)).to(device)
            states = model.hidden_states(ids)
            totals = target_log_probs(model, states[-1][:, :-1], ids[:, 1:]).double().sum(1)
            pooled = states[layer].double()[:, 1:].mean(1)
            n = len(chunk)
            results.store(chunk, totals[n:] - totals[:n], pooled[:n], pooled[n:])
            bar.update(n)
