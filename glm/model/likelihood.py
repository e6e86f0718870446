"""Log-probabilities of target tokens: the one path behind log-likelihoods and variant scores.

A target that is PAD, UNK (a k-mer holding an N) or SEP is never scored: its log-probability is
0, so sums over a window count real bases only. Training uses the same rule for its loss
(glm.training.lit), weighting those targets 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from glm.model.tokenizers import NOT_A_TARGET
from glm.model.transformer import Transformer


def target_log_probs(model: Transformer, final_states: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log P(target) at each position, float32 (batch, time), from the final states that predict them.

    `final_states[:, t]` is the model's final (normed) hidden state that predicts `targets[:, t]`.
    """
    logits = model.logits(final_states).float()
    log_probs = -F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    scored = ~torch.isin(targets, torch.tensor(NOT_A_TARGET, device=targets.device))
    return log_probs * scored


def token_log_probs(model: Transformer, ids: torch.Tensor) -> torch.Tensor:
    """log P(ids[:, t] | ids[:, :t]) for t = 1 .. time-1, shape (batch, time - 1); 0 at special targets."""
    final = model.hidden_states(ids[:, :-1])[-1]
    return target_log_probs(model, final, ids[:, 1:])
