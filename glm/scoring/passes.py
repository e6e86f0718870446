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

    @classmethod
    def empty(cls, n_pairs: int, width: int, keep_delta: bool) -> PairResults:
        zeros = np.zeros(n_pairs)
        return cls(zeros.copy(), zeros.copy(), zeros.copy(), np.zeros((n_pairs, width)) if keep_delta else None)

    def store(self, chunk: list[int], llr: torch.Tensor, ref_pooled: torch.Tensor, alt_pooled: torch.Tensor) -> None:
        """Results of the pairs in `chunk` from their llr and (n, width) float64 pooled embeddings."""
        self.llr[chunk] = llr.cpu().numpy()
        self.cosine[chunk] = (1 - F.cosine_similarity(ref_pooled, alt_pooled, dim=-1)).cpu().numpy()
        self.l2[chunk] = (alt_pooled - ref_pooled).norm(dim=-1).cpu().numpy()
        if self.delta is not None:
            self.delta[chunk] = (alt_pooled - ref_pooled).cpu().numpy()


@dataclass
class _ReferenceBatch:
    """What a batch of reference windows leaves for its alternatives: cache, log-probs, pooled states."""

    cache: KVCache
    log_probs: torch.Tensor  # (refs, T - 1) float64: log P(token t) at column t - 1
    prefix_sums: torch.Tensor  # (refs, T, width): sum of the pooled layer's states 0..t
    pooled: torch.Tensor  # (refs, width): mean over positions 1 .. T-1


def score_pairs(model: Transformer, refs: list[np.ndarray], pairs: list[Pair], plan: ScoringPlan) -> PairResults:
    """Scores of every pair: the cached fast path, or with plan.reuse False two full passes per pair."""
    results = PairResults.empty(len(pairs), model.config.width, plan.keep_delta)
    (_score_reusing if plan.reuse else _score_naive)(model, refs, pairs, plan, results)
    return results


@torch.inference_mode()
def _score_reusing(
    model: Transformer, refs: list[np.ndarray], pairs: list[Pair], plan: ScoringPlan, results: PairResults
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
            for chunk_start in range(0, len(jobs), batch_size):
                chunk = [n for _, n in jobs[chunk_start : chunk_start + batch_size]]
                rows = torch.tensor([row_of[pairs[n].ref] for n in chunk], device=device)
                _score_suffixes(model, [pairs[n] for n in chunk], chunk, reference, rows, layer, results)
                bar.update(len(chunk))


def _score_suffixes(
    model: Transformer,
    chunk_pairs: list[Pair],
    chunk: list[int],
    reference: _ReferenceBatch,
    rows: torch.Tensor,
    layer: int,
    results: PairResults,
) -> None:
    """Run the alternative windows of `chunk` from their first differing token, on the cached prefix.

    All rows restart at one position `start` (the earliest first difference in the chunk, minus one
    so that the token there is predicted): positions before it are identical in ref and alt.
    """
    n_tokens = len(chunk_pairs[0].alt_ids)
    start = min(pair.shared for pair in chunk_pairs) - 1
    ref_log_probs, prefix_sums, ref_pooled = (
        reference.log_probs[rows],
        reference.prefix_sums[rows],
        reference.pooled[rows],
    )
    if start == n_tokens - 1:  # every alt equals its reference: nothing changes
        results.store(chunk, torch.zeros(len(chunk), dtype=torch.float64), ref_pooled, ref_pooled)
        return
    cache = reference.cache.select(rows, start)
    alt_ids = torch.from_numpy(np.stack([pair.alt_ids for pair in chunk_pairs])).to(rows.device)
    states = model.hidden_states(alt_ids[:, start:], cache)  # positions start .. T-1
    alt_log_probs = target_log_probs(model, states[-1][:, :-1], alt_ids[:, start + 1 :]).double()
    llr = alt_log_probs.sum(1) - ref_log_probs[:, start:].sum(1)
    suffix = states[layer].double()[:, 1:] if start == 0 else states[layer].double()
    prefix = prefix_sums[:, start - 1] - prefix_sums[:, 0] if start > 1 else 0.0  # positions 1 .. start-1
    alt_pooled = (prefix + suffix.sum(1)) / (n_tokens - 1)
    results.store(chunk, llr, ref_pooled, alt_pooled)


@torch.inference_mode()
def _score_naive(
    model: Transformer, refs: list[np.ndarray], pairs: list[Pair], plan: ScoringPlan, results: PairResults
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
