"""A transformers causal language model behind the interface of glm's Transformer.

`HubModel` wraps any `AutoModelForCausalLM` (loaded by transformers itself from safetensors weights,
never remote code, never a pickle) so that glm's inference, scoring, generation and heads run on it
unchanged: it reads glm's token ids
(mapped onto the Hub tokenizer's ids, glm.hf.tokenizer), returns the hidden states in glm's order
(the embedding output, each layer's output, the last one final-normed: transformers' own order)
and next-token logits over glm's vocabulary. Those logits keep the model's full distribution:
each base token has its own logit, glm's SEP the separator's, and glm's UNK the log-sum-exp of
every other token of the Hub vocabulary (PAD none), so log-softmax over them gives exactly the
Hub model's log-probabilities of the bases.

The cache (`PrefixCache`) keeps the tokens already seen, not their keys and values: a call with
a cache runs the prefix again with the new tokens, so the scoring and generation code paths are
the same as for glm's models and give the same numbers, without their saving of compute.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from glm.config import ModelConfig
from glm.errors import InputError
from glm.hf import is_transformers_directory, transformers_quiet
from glm.hf.tokenizer import HubVocabulary, hub_vocabulary
from glm.model.checkpoint import load_model, resolve_device
from glm.model.tokenizers import N_SPECIAL, PAD, SEP, UNK, KmerTokenizer, Tokenizer
from glm.model.transformer import Transformer

# Logit transforms that transformers applies after the output head: HubModel computes logits from
# the final hidden states with the head alone, so a model that sets one of these is refused.
LOGIT_TRANSFORMS = ("final_logit_softcapping", "logit_scale", "output_multiplier_scale", "logits_scaling")


class PrefixCache:
    """The token ids processed so far (batch, length): a HubModel call with it continues them."""

    def __init__(self, ids: torch.Tensor | None = None):
        self.ids = ids

    @property
    def length(self) -> int:
        return 0 if self.ids is None else self.ids.shape[1]

    def extend(self, ids: torch.Tensor) -> torch.Tensor:
        """Append this call's ids; return every id seen so far."""
        self.ids = ids if self.ids is None else torch.cat([self.ids, ids], dim=1)
        return self.ids

    def clear(self) -> None:
        self.ids = None

    def select(self, rows: torch.Tensor, length: int) -> PrefixCache:
        """A new cache holding the first `length` positions of batch `rows`."""
        assert self.ids is not None, "nothing cached"
        return PrefixCache(self.ids[rows, :length])


class HubModel(nn.Module):
    """A transformers causal LM read through glm's ids: hidden_states, logits, forward, new_cache."""

    def __init__(self, hub: nn.Module, vocabulary: HubVocabulary):
        super().__init__()
        self.hub = hub
        hub_config = hub.config
        self.config = ModelConfig(
            vocab_size=vocabulary.tokenizer.vocab_size,
            n_layers=hub_config.num_hidden_layers,
            n_heads=hub_config.num_attention_heads,
            width=hub_config.hidden_size,
            context=hub_config.max_position_embeddings,
        )
        self.register_buffer("hub_ids", torch.from_numpy(vocabulary.hub_ids), persistent=False)
        others = torch.ones(vocabulary.hub_size, dtype=torch.bool)
        others[self.hub_ids[N_SPECIAL:]] = False
        others[vocabulary.separator] = False
        self.register_buffer("others", others.nonzero().flatten(), persistent=False)  # pooled into glm's UNK

    # Shared with glm's Transformer: they read only self.config and the methods above them.
    num_parameters = Transformer.num_parameters
    check_layer = Transformer.check_layer
    forward = Transformer.forward

    def new_cache(self, capacity: int | None = None) -> PrefixCache:
        """An empty PrefixCache (capacity is not needed: it grows with the tokens)."""
        return PrefixCache()

    def hidden_states(self, ids: torch.Tensor, cache: PrefixCache | None = None) -> list[torch.Tensor]:
        """n_layers + 1 tensors (batch, time, width) as `Transformer.hidden_states`; with a cache, `ids`
        continue the cached positions (which are run again) and only their states are returned."""
        start = 0 if cache is None else cache.length
        every = ids if cache is None else cache.extend(ids)
        output = self.hub.base_model(input_ids=self.hub_ids[every], output_hidden_states=True, use_cache=False)
        return [state[:, start:] for state in output.hidden_states]

    def logits(self, final_states: torch.Tensor) -> torch.Tensor:
        """Logits over glm's vocabulary from final hidden states, keeping the Hub model's distribution."""
        hub_logits = self.hub.get_output_embeddings()(final_states).float()
        logits = hub_logits[..., self.hub_ids]
        logits[..., PAD] = -torch.inf
        logits[..., SEP] = hub_logits[..., self.hub_ids[SEP]]
        others = hub_logits[..., self.others]
        logits[..., UNK] = others.logsumexp(-1) if others.shape[-1] else -torch.inf
        return logits


def load_hub_model(
    directory: str | Path, device: str | torch.device | None = None
) -> tuple[HubModel, KmerTokenizer, dict[str, Any]]:
    """A transformers causal-LM directory as (HubModel in eval mode, glm tokenizer, config with its info)."""
    device = resolve_device(device)
    with transformers_quiet() as transformers:
        hub_config = _loaded("config.json", transformers.AutoConfig, directory)
        for name in LOGIT_TRANSFORMS:
            if getattr(hub_config, name, None) not in (None, 1.0):
                raise InputError(f"config.json: {name} (a transform of the logits) is not supported", directory)
        hub = _loaded(
            "weights", transformers.AutoModelForCausalLM, directory, dtype=torch.float32, use_safetensors=True
        )
        hub_tokenizer = _loaded("tokenizer", transformers.AutoTokenizer, directory)
    vocabulary = hub_vocabulary(hub_tokenizer, hub.get_output_embeddings().out_features, directory)
    model = HubModel(hub, vocabulary).to(device).eval()
    info = {"transformers": hub_config.architectures[0] if hub_config.architectures else hub_config.model_type}
    return model, vocabulary.tokenizer, {"info": info}


def _loaded(what: str, auto_class: Any, directory: str | Path, **options: Any) -> Any:
    """`auto_class.from_pretrained(directory)` without remote code; its failure an InputError naming `what`."""
    try:
        return auto_class.from_pretrained(directory, trust_remote_code=False, **options)
    except (ValueError, OSError, KeyError) as error:  # an unknown architecture, a missing or unsafe file
        raise InputError(f"{what}: transformers cannot load it as a causal DNA model: {error}", directory) from None


def load_any(directory: str | Path, device: str | torch.device | None = None) -> tuple[Any, Tokenizer, dict[str, Any]]:
    """(model in eval mode, tokenizer, config) of a glm model directory or a transformers causal-LM one.

    A transformers model comes as a `glm.hf.hub_model.HubModel`, with the Transformer's interface.
    """
    if is_transformers_directory(directory):
        return load_hub_model(directory, device)
    return load_model(directory, device)
