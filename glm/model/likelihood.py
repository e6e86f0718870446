"""Log-probabilities of target tokens: the one path behind the training loss, log-likelihoods and variant scores.

A target that is PAD, UNK (a k-mer holding an N) or SEP is never scored (`scored_targets`): its
log-probability is 0, so sums over a window count real bases only. Training uses the same two
functions for its loss (glm.training.lit): `logits_log_probs` for every target, weighted 0 where
`scored_targets` is False.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from glm.model.tokenizers import NOT_A_TARGET
from glm.model.transformer import Transformer


def scored_targets(targets: torch.Tensor) -> torch.Tensor:
    """True where a target token is scored: a real base (or character), not PAD, UNK or SEP."""
    return ~torch.isin(targets, torch.tensor(NOT_A_TARGET, device=targets.device))


def logits_log_probs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log P(target) of every target, float32 (batch, time), from logits (batch, time, vocab)."""
    return -F.cross_entropy(logits.float().transpose(1, 2), targets, reduction="none")


def float32_logits(model: Transformer, final_states: torch.Tensor) -> torch.Tensor:
    """The output layer in float32, also under bf16 autocast: bf16 logits keep ~3 digits, and an llr sums hundreds."""
    with torch.autocast(final_states.device.type, enabled=False):
        return model.logits(final_states.float())


def target_log_probs(model: Transformer, final_states: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log P(target) at each position, float32 (batch, time), 0 at targets that are not scored.

    `final_states[:, t]` is the model's final (normed) hidden state that predicts `targets[:, t]`.
    """
    return logits_log_probs(float32_logits(model, final_states), targets) * scored_targets(targets)


def token_log_probs(model: Transformer, ids: torch.Tensor) -> torch.Tensor:
    """log P(ids[:, t] | ids[:, :t]) for t = 1 .. time-1, shape (batch, time - 1); 0 at special targets."""
    final = model.hidden_states(ids[:, :-1])[-1]
    return target_log_probs(model, final, ids[:, 1:])
