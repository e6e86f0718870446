"""Sampling tokens from a causal model, with or without a key/value cache.

The model never attends to more than its training context. When a sequence outgrows it, the
visible window restarts at the last half-context of tokens (positions counted from there), and
the cache is refilled from that window: one full pass every half-context of new tokens instead
of one per token. The cache is allocated once, for the prompt and the new tokens but at most a
context, and refilled in place. The uncached path uses exactly the same windows, so both give
the same tokens for the same seed (the cache only saves work). For a model trained with genome
tokens, the visible window always starts with the genome's token, as every training window did.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator, Sequence

import torch

from glm.fields import check_bounds
from glm.errors import InputError
from glm.model.tokenizers import N_SPECIAL, Tokenizer
from glm.model.transformer import Transformer


def sample_tokens(
    model: Transformer,
    prompt_ids: Sequence[int],
    max_new_tokens: int,
    allowed: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    use_cache: bool = True,
    first: int | None = None,
) -> Iterator[int]:
    """Yield up to `max_new_tokens` sampled token ids that continue `prompt_ids`.

    allowed: boolean mask over the vocabulary of the tokens that may be sampled.
    temperature 0 takes the most likely token; top_k keeps the k most likely; top_p keeps the
    smallest set whose probability reaches p (nucleus sampling). first: a genome token put in
    place of the first token of every visible window.
    """
    device = next(model.parameters()).device
    generator = torch.Generator(device=device)
    generator.manual_seed(torch.seed() if seed is None else seed)
    context = model.config.context
    tokens = list(prompt_ids)
    window_start = fed = max(len(tokens) - context, 0)
    # Every position the model will see, but never more than a context: the window restarts first.
    cache = model.new_cache(min(context, len(tokens) + max_new_tokens)) if use_cache else None

    def visible(start: int) -> list[int]:
        """tokens[start:], the window's first token replaced by `first` when there is one."""
        piece = tokens[start:]
        return [first, *piece[1:]] if first is not None and start == window_start else piece

    with torch.inference_mode():
        for _ in range(max_new_tokens):
            if len(tokens) - window_start > context:  # outgrew the context: keep the last half
                window_start = fed = len(tokens) - context // 2
                if cache is not None:
                    cache.clear()  # refilled from the new window, in the same buffers
            if cache is not None:
                logits = model(torch.tensor([visible(fed)], device=device), cache)[0, -1]
                fed = len(tokens)
            else:
                logits = model(torch.tensor([visible(window_start)], device=device))[0, -1]
            token = _sample(logits.float(), allowed.to(device), temperature, top_k, top_p, generator)
            tokens.append(token)
            yield token


def _sample(
    logits: torch.Tensor,
    allowed: torch.Tensor,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    generator: torch.Generator,
) -> int:
    logits = logits.masked_fill(~allowed, float("-inf"))
    if temperature <= 0:
        return int(logits.argmax())
    logits = logits / temperature
    if top_k is not None and top_k < int(allowed.sum()):
        threshold = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < threshold, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if top_p is not None and top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        # keep each token whose preceding cumulative mass is below p (the first is always kept)
        drop = sorted_probs.cumsum(0) - sorted_probs >= top_p
        probs = probs.scatter(0, order[drop], 0.0)
        probs = probs / probs.sum()
    return int(torch.multinomial(probs, 1, generator=generator))


def generate_pieces(
    model: Transformer,
    tokenizer: Tokenizer,
    prompt: str,
    genome_token: int | None = None,
    *,
    max_new_tokens: int = 200,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    max_bases: int | None = None,
    use_cache: bool = True,
) -> Iterator[str]:
    """Continue `prompt`, yielding each new piece of text (bases, characters) as it is sampled.

    Only whole k-mers (or real characters and bytes) are sampled, never special tokens. A DNA
    prompt is conditioned on from its last whole k-mer backwards (up to k-1 leading bases are left
    out), without a leading SEP: a prompt need not start a record. max_bases stops at exactly
    that many new bases (or characters); GenomicLM.generate documents the other options.
    genome_token: the tag of a model trained with genome tokens, put before the prompt.
    """
    if not prompt:
        raise InputError("prompt: empty; give at least one base (or character) to continue from")
    check_bounds("max_new_tokens", max_new_tokens, "[1, inf)")
    check_bounds("temperature", temperature, "[0, inf)")  # 0: always the most likely token
    check_bounds("top_k", top_k, "[1, inf)")
    check_bounds("top_p", top_p, "(0, 1]")
    check_bounds("max_bases", max_bases, "[1, inf)")
    check_bounds("seed", seed, "[0, 1.8446744073709552e19)")  # torch's generators take 64-bit seeds: [0, 2**64)
    allowed = torch.zeros(model.config.vocab_size, dtype=torch.bool)  # genome tokens stay False
    if tokenizer.kind == "kmer":
        if tokenizer.stride != tokenizer.k:
            raise InputError("generation needs non-overlapping k-mers (a model trained with stride = k)")
        prompt = prompt[len(prompt) % tokenizer.k :]
        if not prompt:
            raise InputError(f"prompt: at least k={tokenizer.k} bases are needed to continue from")
        allowed[list(tokenizer.kmer_ids())] = True  # whole k-mers only: no specials, no tails
    else:
        allowed[N_SPECIAL : tokenizer.vocab_size] = True
    try:
        prompt_ids = tokenizer.encode(prompt).ids  # no leading SEP: a prompt need not start a record
    except InputError as error:
        raise InputError(f"prompt: {error}") from None
    prefix = [] if genome_token is None else [genome_token]
    tokens = sample_tokens(
        model,
        prefix + prompt_ids.tolist(),
        max_new_tokens,
        allowed,
        temperature,
        top_k,
        top_p,
        seed,
        use_cache,
        genome_token,
    )
    return _pieces(tokenizer, tokens, max_bases)  # checked above, before the first token is asked for


def _pieces(tokenizer: Tokenizer, tokens: Iterator[int], max_bases: int | None) -> Iterator[str]:
    """The text of each sampled token, cut at exactly `max_bases` new bases (or characters)."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace") if tokenizer.kind == "byte" else None
    produced = 0
    for token in tokens:
        piece = decoder.decode(bytes([token - N_SPECIAL])) if decoder else tokenizer.decode([token])
        if max_bases is not None and produced + len(piece) >= max_bases:
            yield piece[: max_bases - produced]
            return
        produced += len(piece)
        yield piece
