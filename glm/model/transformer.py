"""The causal Transformer, in plain PyTorch: read it top to bottom.

Decoder-only, pre-norm (RMSNorm), rotary position embeddings, SwiGLU MLP, attention through
`F.scaled_dot_product_attention` (`attend`: flash attention; float32 on CPUs), input and output embeddings tied,
GPT-2 style initialisation. ModelConfig's recipe options switch pieces of it (QK-norm, a squared
ReLU MLP, zero-initialised output projections, an untied head, value embeddings, logit
soft-capping); each is marked where it acts. KVCache keeps the keys and values of processed
positions for generation and scoring, in buffers allocated once and written in place. No I/O and
no Lightning here.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from glm.config import ModelConfig
from glm.errors import InputError


class RMSNorm(nn.Module):
    def __init__(self, width: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Normalise in float32 so bf16 activations do not lose the small-variance directions.
        normed = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps)
        return normed.type_as(x) * self.weight


def rotary_tables(head_dim: int, length: int, base: float, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables of shape (length, head_dim / 2) for rotary embeddings."""
    inverse_frequency = 1.0 / base ** (torch.arange(0, head_dim, 2, device=device).float() / head_dim)
    angles = torch.outer(torch.arange(length, device=device).float(), inverse_frequency)
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (first half, second half) of each head's channels by position-dependent angles."""
    first, second = x.float().chunk(2, dim=-1)  # each (batch, heads, time, head_dim / 2)
    rotated = torch.cat([first * cos - second * sin, first * sin + second * cos], dim=-1)
    return rotated.type_as(x)


class KVCache:
    """Keys and values of the positions already processed, in buffers allocated once per layer.

    Passing the same cache to successive `Transformer` calls processes a sequence in pieces: each
    call writes its own keys and values after the cached ones and attends to the filled prefix,
    so generating a token costs one position, not a re-run of the whole sequence. Each layer's
    buffers, (batch, heads, capacity, head_dim), are allocated at its first write with that
    write's batch size, dtype and device, and written in place from then on: a step copies only
    its own keys, where growing the cache by concatenation copied all of them (O(n^2) for n tokens).
    """

    def __init__(self, n_layers: int, capacity: int):
        self.capacity = capacity
        self.layers: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * n_layers
        self.lengths = [0] * n_layers  # positions filled in each layer's buffers

    @property
    def length(self) -> int:
        """Positions cached (read before a call: each layer extends its own entry during it)."""
        return self.layer_length(0)

    def layer_length(self, layer: int) -> int:
        return self.lengths[layer]

    def extend(self, layer: int, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write this call's (batch, heads, time, head_dim) keys/values after the cached ones;
        return views of every position filled so far."""
        if self.layers[layer] is None:
            shape = (*keys.shape[:2], self.capacity, keys.shape[3])  # (batch, heads, capacity, head_dim)
            self.layers[layer] = (keys.new_empty(shape), values.new_empty(shape))
        key_buffer, value_buffer = self.layers[layer]
        start, end = self.lengths[layer], self.lengths[layer] + keys.shape[2]
        assert end <= self.capacity, f"the cache holds {self.capacity} positions, {end} asked for"
        assert keys.shape[:2] == key_buffer.shape[:2] and keys.dtype == key_buffer.dtype, "not this cache's rows"
        key_buffer[:, :, start:end] = keys
        value_buffer[:, :, start:end] = values
        self.lengths[layer] = end
        return key_buffer[:, :, :end], value_buffer[:, :, :end]

    def clear(self) -> None:
        """Forget every position; the buffers stay, to be written again from position 0."""
        self.lengths = [0] * len(self.lengths)

    def select(self, rows: torch.Tensor, length: int) -> KVCache:
        """A new cache of the same capacity holding the first `length` positions of batch `rows`."""
        selected = KVCache(len(self.layers), self.capacity)
        for layer, (keys, values) in enumerate(self.layers):
            selected.extend(layer, keys[rows, :, :length], values[rows, :, :length])
        return selected


# Up to this many keys, PyTorch's CPU flash-attention kernel is faster in float32 than in bf16
# (2x at the tiny preset's shape); at 1,024 keys and head size 64 bf16 is faster
# (docs/BENCHMARKS.md, "Winning the throughput back").
FLOAT32_ATTENTION_MAX_KEYS = 512


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, **options) -> torch.Tensor:
    """F.scaled_dot_product_attention; on a CPU under bf16 autocast, in float32 for short contexts
    (the faster kernel there). GPUs keep bf16."""
    if q.device.type == "cpu" and torch.is_autocast_enabled("cpu") and k.shape[-2] <= FLOAT32_ATTENTION_MAX_KEYS:
        with torch.autocast("cpu", enabled=False):
            return F.scaled_dot_product_attention(q.float(), k.float(), v.float(), **options)
    return F.scaled_dot_product_attention(q, k, v, **options)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.n_heads = config.n_heads
        self.head_dim = config.width // config.n_heads
        self.qkv = nn.Linear(config.width, 3 * config.width, bias=False)
        self.proj = nn.Linear(config.width, config.width, bias=False)
        self.dropout = config.dropout
        # QK-norm: queries and keys at unit RMS per head, so attention logits cannot blow up.
        self.qk_norm = (
            nn.ModuleList(RMSNorm(self.head_dim, config.norm_eps) for _ in range(2)) if config.qk_norm else None
        )
        # Value embeddings: v = a * v + b * (a per-token vector), with a and b learned per layer.
        self.value_mix = nn.Parameter(torch.tensor([1.0, 0.0])) if config.value_embeddings else None

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        cache: KVCache | None = None,
        layer: int = 0,
        values: torch.Tensor | None = None,
    ) -> torch.Tensor:
        batch, time, width = x.shape
        q, k, v = self.qkv(x).split(width, dim=-1)
        if self.value_mix is not None:
            v = self.value_mix[0] * v + self.value_mix[1] * values
        # (batch, time, width) -> (batch, heads, time, head_dim)
        q, k, v = (t.view(batch, time, self.n_heads, self.head_dim).transpose(1, 2) for t in (q, k, v))
        if self.qk_norm is not None:
            q, k = self.qk_norm[0](q), self.qk_norm[1](k)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        dropout = self.dropout if self.training else 0.0
        past = 0 if cache is None else cache.layer_length(layer)
        if past == 0:
            if cache is not None:
                cache.extend(layer, k, v)
            y = attend(q, k, v, is_causal=True, dropout_p=dropout)
        else:
            k, v = cache.extend(layer, k, v)
            # Query i sits at position past + i and may see keys 0 .. past + i (is_causal would
            # align the mask to the top-left corner, which is wrong once keys outnumber queries).
            visible = (
                torch.arange(past + time, device=x.device)[None, :]
                <= past + torch.arange(time, device=x.device)[:, None]
            )
            y = attend(q, k, v, attn_mask=visible, dropout_p=dropout)
        y = y.transpose(1, 2).contiguous().view(batch, time, width)  # heads back side by side
        return self.proj(y)


class SwiGLU(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.gate_up = nn.Linear(config.width, 2 * config.mlp_hidden, bias=False)
        self.down = nn.Linear(config.mlp_hidden, config.width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.down(F.silu(gate) * up)


class ReluSquared(nn.Module):
    """relu(x W)^2 V: two matrices instead of SwiGLU's three (config.mlp_hidden is 1.5x wider)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.up = nn.Linear(config.width, config.mlp_hidden, bias=False)
        self.down = nn.Linear(config.mlp_hidden, config.width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.relu(self.up(x)).square())


class Block(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.attention_norm = RMSNorm(config.width, config.norm_eps)
        self.attention = CausalSelfAttention(config)
        self.mlp_norm = RMSNorm(config.width, config.norm_eps)
        self.mlp = ReluSquared(config) if config.mlp == "relu2" else SwiGLU(config)
        self.dropout = nn.Dropout(config.dropout)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        cache: KVCache | None = None,
        layer: int = 0,
        values: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = x + self.dropout(self.attention(self.attention_norm(x), cos, sin, cache, layer, values))
        return x + self.dropout(self.mlp(self.mlp_norm(x)))


class Transformer(nn.Module):
    """Token ids (batch, time) -> next-token logits (batch, time, vocab)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        config.validate()
        assert config.vocab_size > 0, "vocab_size must be set from the tokenizer"
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.width)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.final_norm = RMSNorm(config.width, config.norm_eps)
        self.head = nn.Linear(config.width, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.head.weight = self.embedding.weight
        self.value_embedding = nn.Embedding(config.vocab_size, config.width) if config.value_embeddings else None
        # Rotary tables are a cache, not state: plain attributes, so DDP does not broadcast them.
        self._rotary: tuple[torch.Tensor, torch.Tensor] | None = None
        # Training option for long contexts: keep only each block's input and recompute the rest
        # in the backward pass (about a third more compute for a fraction of the activation memory).
        self.activation_checkpointing = False
        self.apply(self._init_weights)
        # GPT-2: scale the projections that write into the residual stream by 1/sqrt(2 * layers);
        # zero_init starts them at zero, so every block begins as the identity.
        for name, parameter in self.named_parameters():
            if name.endswith(("proj.weight", "down.weight")):
                if config.zero_init:
                    nn.init.zeros_(parameter)
                else:
                    nn.init.normal_(parameter, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layers))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def rotary(self, time: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """cos/sin tables for `time` positions; they grow on demand past the training context."""
        if self._rotary is None or len(self._rotary[0]) < time or self._rotary[0].device != device:
            length = max(time, self.config.context)
            self._rotary = rotary_tables(
                self.config.width // self.config.n_heads, length, self.config.rope_base, device
            )
        cos, sin = self._rotary
        return cos[:time], sin[:time]

    def hidden_states(self, ids: torch.Tensor, cache: KVCache | None = None) -> list[torch.Tensor]:
        """Residual stream after the embedding and after each block; the last entry is final-normed.

        Returns n_layers + 1 tensors of shape (batch, time, width): index 0 is the embedding
        output, index i the output of block i, and index -1 the final block's output after the
        final norm (what the output head sees). With a cache, `ids` continue the cached positions.
        """
        start = 0 if cache is None else cache.length
        cos, sin = self.rotary(start + ids.shape[1], ids.device)
        cos, sin = cos[start:], sin[start:]
        x = self.embedding(ids)
        values = None if self.value_embedding is None else self.value_embedding(ids)
        states = [x]
        for layer, block in enumerate(self.blocks):
            if self.activation_checkpointing and cache is None and torch.is_grad_enabled():
                x = checkpoint(block, x, cos, sin, None, layer, values, use_reentrant=False)
            else:
                x = block(x, cos, sin, cache, layer, values)
            states.append(x)
        states[-1] = self.final_norm(x)
        return states

    def logits(self, final_states: torch.Tensor) -> torch.Tensor:
        """Next-token logits from final (normed) hidden states; soft-capped when logit_cap is set."""
        logits = self.head(final_states)
        cap = self.config.logit_cap
        return cap * torch.tanh(logits / cap) if cap else logits

    def forward(self, ids: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        return self.logits(self.hidden_states(ids, cache)[-1])

    def new_cache(self, capacity: int | None = None) -> KVCache:
        """An empty KVCache for up to `capacity` positions (default: the training context)."""
        return KVCache(self.config.n_layers, self.config.context if capacity is None else capacity)

    def check_layer(self, layer: int) -> int:
        """`layer` as an index into `hidden_states` (0 = embedding, -1 = final), or an InputError."""
        n_states = self.config.n_layers + 1
        if not -n_states <= layer < n_states:
            raise InputError(f"layer must be in [{-n_states}, {n_states - 1}] for this model, got {layer}")
        return layer
