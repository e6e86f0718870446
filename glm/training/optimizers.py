"""The optimizer and the learning-rate schedule of a training run (pretraining and fine-tuning).

AdamW for everything, or Muon (momentum, then the update's matrix made near-orthogonal by a
Newton-Schulz iteration) for the weight matrices inside the Transformer blocks, with AdamW for the
embeddings, the head, the norms and the scalars, as the modded-nanogpt speedrun does. `Muon` is
torch.optim.Muon's algorithm and state, stepped with one batched Newton-Schulz per matrix shape
instead of one per matrix. Lightning steps one optimizer, so the pair is one `MuonAdamW`. The
schedule is a multiplier of every group's peak rate: linear warmup, then cosine decay or
warmup-stable-decay.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from glm.config import TrainConfig
from glm.model.transformer import Block


class Muon(torch.optim.Muon):
    """torch.optim.Muon (Nesterov momentum, decoupled weight decay, the "original" rate scaling
    by sqrt(max(1, rows / columns))), with the matrices of one shape orthogonalised together.

    A Transformer has a few matrix shapes, each once per layer; one batched iteration per shape
    replaces n_layers small ones (the per-call overhead dominates at small widths). The result
    equals torch's per-matrix step, and the state (momentum_buffer per matrix) is torch's, so
    checkpoints load in either.
    """

    def __init__(self, params, lr: float, weight_decay: float, momentum: float):
        # Only the options step() honours (torch's adjust_lr_fn choices are not among them).
        super().__init__(params, lr=lr, weight_decay=weight_decay, momentum=momentum)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = evaluate(closure)
        for group in self.param_groups:
            by_shape: dict[torch.Size, list[torch.Tensor]] = {}
            for parameter in group["params"]:
                if parameter.grad is not None:
                    by_shape.setdefault(parameter.shape, []).append(parameter)
            for shape, parameters in by_shape.items():
                self._step_shape(group, shape, parameters)
        return loss

    def _step_shape(self, group: dict[str, Any], shape: torch.Size, parameters: list[torch.Tensor]) -> None:
        momentum, lr = group["momentum"], group["lr"]
        grads = [p.grad for p in parameters]
        buffers = []
        for parameter in parameters:
            state = self.state[parameter]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = torch.zeros_like(parameter.grad)
            buffers.append(state["momentum_buffer"])
        torch._foreach_lerp_(buffers, grads, 1 - momentum)
        updates = torch._foreach_lerp(grads, buffers, momentum) if group["nesterov"] else buffers
        orthogonal = newton_schulz(torch.stack(updates), group["ns_coefficients"], group["ns_steps"], group["eps"])
        torch._foreach_mul_(parameters, 1 - lr * group["weight_decay"])
        scale = math.sqrt(max(1.0, shape[0] / shape[1]))
        torch._foreach_add_(parameters, list(orthogonal.unbind()), alpha=-lr * scale)


def evaluate(closure: Callable[[], float] | None) -> float | None:
    """The optimizer protocol's closure: the loss recomputed with gradients on, if one is given."""
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()


def newton_schulz(
    updates: torch.Tensor, coefficients: tuple[float, float, float], steps: int, eps: float
) -> torch.Tensor:
    """A stack of matrices (n, rows, columns) made near-orthogonal, in bf16: torch.optim.Muon's
    quintic iteration, batched. Each matrix is scaled to norm <= 1 first; wide orientation
    (rows <= columns) keeps the Gram matrices small."""
    a, b, c = coefficients
    x = updates.bfloat16()
    tall = x.size(-2) > x.size(-1)
    if tall:
        x = x.mT
    x = x / x.norm(dim=(-2, -1), keepdim=True).clamp(min=eps)
    for _ in range(steps):
        gram = x @ x.mT
        x = torch.baddbmm(x, torch.baddbmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.mT if tall else x


class MuonAdamW(torch.optim.Optimizer):
    """Muon for `matrices`, AdamW for `others`, stepped, saved and scheduled as one optimizer.

    Its param_groups are the two optimizers' own group dicts, so a scheduler, gradient clipping
    or zero_grad that walks them acts on both; state_dict holds both optimizers' states.
    """

    def __init__(self, muon: Muon, adamw: torch.optim.AdamW):
        self.muon, self.adamw = muon, adamw
        super().__init__([*muon.param_groups, *adamw.param_groups], {})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = evaluate(closure)
        self.muon.step()
        self.adamw.step()
        return loss

    def state_dict(self) -> dict[str, Any]:
        return {"muon": self.muon.state_dict(), "adamw": self.adamw.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.muon.load_state_dict(state_dict["muon"])
        self.adamw.load_state_dict(state_dict["adamw"])
        # Loading replaces the inner group dicts: share them again.
        self.param_groups[:] = [*self.muon.param_groups, *self.adamw.param_groups]


def build_optimizer(model: nn.Module, train: TrainConfig, fused: bool = False) -> torch.optim.Optimizer:
    """train.optimizer over `model`: matrices decay, norms and scalars do not."""
    in_blocks = {id(p) for module in model.modules() if isinstance(module, Block) for p in module.parameters()}
    matrices, decay, no_decay = [], [], []
    for parameter in model.parameters():
        if train.optimizer == "muon" and parameter.dim() == 2 and id(parameter) in in_blocks:
            matrices.append(parameter)
        else:
            (decay if parameter.dim() >= 2 else no_decay).append(parameter)
    adamw = torch.optim.AdamW(
        [{"params": decay, "weight_decay": train.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=train.lr,
        betas=(train.beta1, train.beta2),
        fused=fused,
    )
    if not matrices:
        return adamw
    muon = Muon(matrices, lr=train.muon_lr, weight_decay=train.weight_decay, momentum=train.muon_momentum)
    return MuonAdamW(muon, adamw)


def warmup_steps(train: TrainConfig) -> int:
    """train.warmup_steps, at most a quarter of max_steps: a short run (a 50-step fine-tune) warms up, then
    learns. A quarter leaves every preset's full run (and the recipe benchmark's 400 steps) as it was."""
    return min(train.warmup_steps, train.max_steps // 4)


class Schedule:
    """Learning-rate multiplier: linear warmup over `warmup` steps, then a decay to `min_ratio`.

    cosine: half a cosine over the rest of the budget. wsd (warmup-stable-decay): 1 until the
    last `decay_fraction` of the budget, then linear to `min_ratio`. `progress` (0 to 1) is how
    far training is through its budget: steps done / max_steps, or the share of the wall-clock
    budget used when that is larger, so a run stopped by --max-time still ends decayed.
    """

    def __init__(self, warmup: int, min_ratio: float, kind: str = "cosine", decay_fraction: float = 0.2):
        self.warmup, self.min_ratio, self.kind, self.decay_fraction = warmup, min_ratio, kind, decay_fraction

    def __call__(self, step: int, progress: float) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        progress = min(max(progress, 0.0), 1.0)
        if self.kind == "wsd":
            decayed = max(0.0, progress - (1.0 - self.decay_fraction)) / self.decay_fraction
            return 1.0 - (1.0 - self.min_ratio) * decayed
        return self.min_ratio + (1.0 - self.min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
