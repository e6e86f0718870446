"""The preallocated key/value cache: the same logits as a full pass, written in place."""

from __future__ import annotations

import pytest
import torch

from glm.config import ModelConfig
from glm.model.generation import sample_tokens
from glm.model.tokenizers import N_SPECIAL
from glm.model.transformer import KVCache, Transformer

VOCAB = 20


def tiny_model(context: int = 16, seed: int = 0) -> Transformer:
    torch.manual_seed(seed)
    config = ModelConfig(vocab_size=VOCAB, n_layers=2, n_heads=2, width=32, context=context)
    return Transformer(config).eval()


def buffer_addresses(cache: KVCache) -> list[int]:
    return [buffer.data_ptr() for entry in cache.layers for buffer in entry]


def test_cached_steps_equal_the_full_pass_up_to_capacity() -> None:
    model = tiny_model()
    ids = torch.randint(N_SPECIAL, VOCAB, (2, 16))
    with torch.inference_mode():
        full = model(ids)
        cache = model.new_cache()
        pieces = [model(ids[:, :5], cache)]  # a prompt, then one token per call
        pieces += [model(ids[:, t : t + 1], cache) for t in range(5, 16)]
    assert cache.capacity == cache.length == 16  # filled to the last position
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, rtol=0, atol=1e-5)


def test_the_cache_is_written_in_place_and_refilled_after_clear() -> None:
    model = tiny_model()
    ids = torch.randint(N_SPECIAL, VOCAB, (1, 16))
    with torch.inference_mode():
        cache = model.new_cache(12)
        model(ids[:, :4], cache)
        addresses = buffer_addresses(cache)
        assert cache.layers[0][0].shape == (1, 2, 12, 16)  # (batch, heads, capacity, head_dim)
        for t in range(4, 12):
            model(ids[:, t : t + 1], cache)
            assert buffer_addresses(cache) == addresses
        cache.clear()  # a new window, as generation starts past the context: same buffers
        refilled = torch.cat([model(ids[:, 6:9], cache), model(ids[:, 9:10], cache)], dim=1)
        assert buffer_addresses(cache) == addresses and cache.length == 4
        torch.testing.assert_close(refilled, model(ids[:, 6:10]), rtol=0, atol=1e-5)


@pytest.mark.parametrize("new_tokens", [9, 60])  # within the context; past it, restarting the window 6 times
def test_generation_samples_the_same_tokens_from_one_allocation(new_tokens: int) -> None:
    model = tiny_model()
    allowed = torch.arange(VOCAB) >= N_SPECIAL
    prompt = [5, 9, 7, 11]
    caches, lengths, addresses = [], [], set()

    def after_each_call(module: Transformer, args: tuple, output: torch.Tensor) -> None:
        cache = args[1]  # model(ids, cache)
        caches.append(cache)
        lengths.append(cache.length)
        addresses.add(tuple(buffer_addresses(cache)))

    hook = model.register_forward_hook(after_each_call)
    cached = list(sample_tokens(model, prompt, new_tokens, allowed, top_k=8, seed=5))
    hook.remove()
    uncached = list(sample_tokens(model, prompt, new_tokens, allowed, top_k=8, seed=5, use_cache=False))
    assert cached == uncached and len(cached) == new_tokens
    capacity = min(16, len(prompt) + new_tokens)
    assert all(cache is caches[0] for cache in caches) and caches[0].capacity == capacity
    assert len(addresses) == 1  # never reallocated, not even when the window restarts
    assert max(lengths) == min(16, len(prompt) + new_tokens - 1)  # the last token is never fed
