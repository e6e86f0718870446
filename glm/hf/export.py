"""A glm model as a transformers-native directory: Llama, or Qwen3 when QK-norm is on.

glm's block is Llama's: pre-norm RMSNorm (x * rsqrt(mean x^2 + eps) * w), rotary embeddings
on the two halves of each head (transformers' rotate_half, the same inverse frequencies
base^(-2i/d)), attention scaled by 1/sqrt(head_dim), a SwiGLU MLP (silu(gate) * up), no biases,
a tied or untied head. QK-norm (an RMSNorm per head on queries and keys before the rotation) is
Qwen3's q_norm/k_norm. The exporter only renames and splits tensors (the fused qkv and gate_up
matrices); nothing is permuted. What has no native equivalent is refused by name, never exported
approximately: the squared-ReLU MLP, value embeddings, the logit cap, overlapping k-mers, text
tokenizers and genome tokens.

    OUT/config.json, model.safetensors, generation_config.json   (transformers' save_pretrained)
    OUT/tokenizer.json, tokenizer_config.json                      (glm.hf.tokenizer)
    OUT/README.md                                                  the model card
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from glm.errors import InputError
from glm.hf import transformers_module, transformers_quiet
from glm.hf.tokenizer import write_hub_tokenizer
from glm.io.files import atomic_directory, read_json, write_json
from glm.model.genome_tags import GenomeTags
from glm.model.tokenizers import N_SPECIAL, PAD, SEP, KmerTokenizer, Tokenizer
from glm.model.transformer import Transformer
from glm.version import __version__

CHECK_TOKENS = 64  # random tokens on which the export's logits are compared with glm's
CHECK_TOLERANCE = 1e-4  # float32: the two compute the same operations in a different order


def refusal(model: Transformer, tokenizer: Tokenizer, genome_tags: GenomeTags | None) -> str | None:
    """Why this model has no native transformers equivalent (naming the option), or None."""
    if not isinstance(model, Transformer):
        return "this model was loaded from transformers already; share its directory as it is"
    config = model.config
    if not isinstance(tokenizer, KmerTokenizer):
        return f"tokenizer {tokenizer.kind}: only DNA models (k-mer tokenizers) are exported"
    if tokenizer.stride != tokenizer.k:
        return f"stride {tokenizer.stride} < k {tokenizer.k}: overlapping k-mers have no transformers tokenizer"
    if genome_tags is not None:
        return "genome_tokens: a model conditioned on genome tokens is not exported"
    if config.mlp != "swiglu":
        return f"mlp {config.mlp}: Llama and Qwen3 have only the SwiGLU MLP"
    if config.value_embeddings:
        return "value_embeddings: Llama and Qwen3 have no value embeddings"
    if config.logit_cap:
        return f"logit_cap {config.logit_cap:g}: Llama and Qwen3 do not soft-cap logits"
    return None


def hub_config(model: Transformer) -> Any:
    """The transformers config of the closest native architecture: Qwen3 with QK-norm, else Llama."""
    transformers = transformers_module()
    config = model.config
    shape = {
        "vocab_size": config.vocab_size,
        "hidden_size": config.width,
        "intermediate_size": config.mlp_hidden,
        "num_hidden_layers": config.n_layers,
        "num_attention_heads": config.n_heads,
        "num_key_value_heads": config.n_heads,
        "head_dim": config.width // config.n_heads,
        "hidden_act": "silu",
        "max_position_embeddings": config.context,
        "rms_norm_eps": config.norm_eps,
        "rope_theta": config.rope_base,
        "attention_bias": False,
        "tie_word_embeddings": config.tie_embeddings,
        "pad_token_id": PAD,
        "bos_token_id": SEP,  # what glm puts first, and after each record in training
        "eos_token_id": SEP,
    }
    if config.qk_norm:
        return transformers.Qwen3Config(**shape, use_sliding_window=False, architectures=["Qwen3ForCausalLM"])
    return transformers.LlamaConfig(**shape, mlp_bias=False, architectures=["LlamaForCausalLM"])


def hub_weights(model: Transformer) -> dict[str, torch.Tensor]:
    """glm's tensors under the transformers architecture's names (the fused matrices split)."""
    config, state = model.config, model.state_dict()
    width, hidden = config.width, config.mlp_hidden
    weights = {
        "model.embed_tokens.weight": state["embedding.weight"],
        "model.norm.weight": state["final_norm.weight"],
        "lm_head.weight": state["head.weight"],  # the embedding itself when tied
    }
    for layer in range(config.n_layers):
        glm, hub = f"blocks.{layer}.", f"model.layers.{layer}."
        q, k, v = state[glm + "attention.qkv.weight"].split(width)  # rows: queries, keys, values
        gate, up = state[glm + "mlp.gate_up.weight"].split(hidden)
        weights |= {
            hub + "input_layernorm.weight": state[glm + "attention_norm.weight"],
            hub + "self_attn.q_proj.weight": q,
            hub + "self_attn.k_proj.weight": k,
            hub + "self_attn.v_proj.weight": v,
            hub + "self_attn.o_proj.weight": state[glm + "attention.proj.weight"],
            hub + "post_attention_layernorm.weight": state[glm + "mlp_norm.weight"],
            hub + "mlp.gate_proj.weight": gate,
            hub + "mlp.up_proj.weight": up,
            hub + "mlp.down_proj.weight": state[glm + "mlp.down.weight"],
        }
        if config.qk_norm:
            weights[hub + "self_attn.q_norm.weight"] = state[glm + "attention.qk_norm.0.weight"]
            weights[hub + "self_attn.k_norm.weight"] = state[glm + "attention.qk_norm.1.weight"]
    return {name: tensor.detach().to("cpu", torch.float32).contiguous() for name, tensor in weights.items()}


def export_hf(
    directory: str | Path,
    model: Transformer,
    tokenizer: Tokenizer,
    info: dict[str, Any] | None = None,
    genome_tags: GenomeTags | None = None,
    license: str = "other",  # noqa: A002 - the Hub's metadata field
) -> Path:
    """Write `model` as a transformers directory (weights, config, tokenizer files, model card), atomically.

    An InputError, naming the option, for a model that has no native equivalent; the exported
    model's logits are checked against glm's before the directory is written.
    """
    reason = refusal(model, tokenizer, genome_tags)
    if reason is not None:
        raise InputError(f"export-hf: {reason}")
    with transformers_quiet() as transformers:
        hub = transformers.AutoModelForCausalLM.from_config(hub_config(model), dtype=torch.float32)
        hub.load_state_dict(hub_weights(model), strict=True)
        difference = logit_difference(model, hub.eval())
        assert difference < CHECK_TOLERANCE, f"the exported model's logits differ from glm's by {difference}"
        with atomic_directory(directory) as partial:
            hub.save_pretrained(partial)
            # transformers 5 writes the rotary base only inside rope_parameters, which 4.x ignores
            # (it would rotate with its default 10000): write rope_theta too, for every reader.
            saved = read_json(partial / "config.json")
            write_json(partial / "config.json", {**saved, "rope_theta": model.config.rope_base})
            write_hub_tokenizer(tokenizer, partial, model.config.context)
            card = model_card(Path(directory).name, hub.config, tokenizer, info or {}, license, difference)
            (partial / "README.md").write_text(card)
    return Path(directory)


@torch.no_grad()
def logit_difference(model: Transformer, hub: torch.nn.Module, seed: int = 0) -> float:
    """Largest |glm logit - transformers logit| on random base tokens after SEP (`hub` goes to glm's device)."""
    generator = np.random.default_rng(seed)
    length = min(CHECK_TOKENS, model.config.context)
    ids = torch.from_numpy(generator.integers(N_SPECIAL, model.config.vocab_size, size=(2, length)))
    ids[:, 0] = SEP  # first, as glm puts it
    ids = ids.to(next(model.parameters()).device)
    theirs = hub.to(ids.device)(input_ids=ids).logits
    return float((model(ids).float() - theirs.float()).abs().max())


def model_card(
    name: str,
    hub_config: Any,
    tokenizer: KmerTokenizer,
    info: dict[str, Any],
    license_id: str,
    difference: float,
) -> str:
    """README.md for the Hub: the metadata block, then what the model is and how to use it."""
    architecture = hub_config.architectures[0]
    trained_on = info.get("trained_on", [])
    genomes = [Path(path).name for path in ([trained_on] if isinstance(trained_on, str) else trained_on)]
    bits = info.get("val_bits_per_base")
    metadata: dict[str, Any] = {
        "library_name": "transformers",
        "license": license_id,
        "pipeline_tag": "text-generation",
        "tags": ["glm", "dna", "genomics", "biology", "causal-lm", architecture.removesuffix("ForCausalLM").lower()],
    }
    if bits is not None:
        metadata["model-index"] = [
            {
                "name": name,
                "results": [
                    {
                        "task": {"type": "text-generation", "name": "DNA language modelling"},
                        "dataset": {"type": "dna", "name": ", ".join(genomes) or "held-out bases"},
                        "metrics": [
                            {"type": "bits_per_base", "name": "validation bits per base", "value": round(bits, 4)}
                        ],
                    }
                ],
            }
        ]
    lines = [
        "---",
        yaml.safe_dump(metadata, sort_keys=False).rstrip(),
        "---",
        "",
        f"# {name}",
        "",
        f"A causal DNA language model trained with glm {__version__} and exported as a "
        f"native `{architecture}` ({hub_config.num_hidden_layers} layers, width {hub_config.hidden_size}, "
        f"{hub_config.num_attention_heads} heads, context {hub_config.max_position_embeddings} tokens). "
        "`AutoModelForCausalLM.from_pretrained` loads it without remote code.",
        "",
        f"- **Training data:** {', '.join(genomes) or 'not recorded'}",
        f"- **Validation bits per base:** {'not recorded' if bits is None else f'{bits:.4f}'} (held-out bases, "
        "measured by glm during training)",
        f"- **Tokens:** non-overlapping {tokenizer.k}-mers; a {tokenizer.k}-mer holding N or another IUPAC code "
        "is `[UNK]`; lowercase reads as uppercase; `[SEP]` (id 2) comes first in every sequence, as in training.",
        f"- **Export check:** transformers' logits equal glm's within {difference:.1e} (float32, random tokens).",
        "",
        "## Scoring variants",
        "",
        "`llr` = log P(alt window) - log P(ref window), in nats, averaged over both strands. **Negative: the "
        "model finds the alternative less likely than the reference (predicted more damaging)**; 0: no change.",
        "",
        "```bash",
        'pip install "glm[hf]"',
        f"glm score {name} --genome genome.fa --variants variants.vcf.gz --out scored.vcf.gz",
        "```",
        "",
        "## With transformers alone",
        "",
        "```python",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        f'tokenizer = AutoTokenizer.from_pretrained("{name}")',
        f'model = AutoModelForCausalLM.from_pretrained("{name}")',
        'ids = tokenizer("ACGTACGTTAGC", return_tensors="pt").input_ids   # [SEP] first',
        "log_probs = model(ids).logits.log_softmax(-1)   # position t predicts token t + 1",
        "```",
        "",
    ]
    return "\n".join(lines)
