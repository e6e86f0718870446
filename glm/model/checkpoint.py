"""The exported model directory: everything needed to use a trained model, and nothing unsafe.

    model/
      model.safetensors   weights (safetensors: loading never runs code)
      config.json         the model's shape, the data settings it was trained with, training summary
      tokenizer.json      the tokenizer

config.json also holds "genome_tokens" for a model trained with genome tokens (glm.model.genome_tags):
its model vocabulary is the tokenizer's plus one id per tag. A directory without it is untagged.

The directory is written beside its destination and renamed into place, so a crash mid-export
never leaves a directory that looks complete. Weights load strictly: a missing or unexpected
tensor is an error, never silently ignored.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from glm.config import LEGACY_MODEL, Config
from glm.errors import InputError
from glm.io.files import atomic_directory, read_safetensors, require_files, write_json
from glm.io.schema import Fields
from glm.model.genome_tags import GenomeTags
from glm.model.tokenizers import Tokenizer, load_tokenizer, save_tokenizer
from glm.model.transformer import Transformer

WEIGHTS, CONFIG, TOKENIZER = "model.safetensors", "config.json", "tokenizer.json"
FORMAT_VERSION = 1


def export_model(
    directory: str | Path,
    model: Transformer,
    tokenizer: Tokenizer,
    info: dict[str, Any] | None = None,
    genome_tags: GenomeTags | None = None,
) -> Path:
    """Write `model`, `tokenizer` (and the genome tags of a tagged model) to `directory` atomically."""
    directory = Path(directory)
    # Tied weights share storage; safetensors stores each tensor once, so drop the alias.
    tied = model.config.tie_embeddings
    state = {
        name: tensor.detach().cpu().contiguous()
        for name, tensor in model.state_dict().items()
        if not (tied and name == "head.weight")
    }
    config = {"format_version": FORMAT_VERSION, "model": asdict(model.config), "info": info or {}}
    if genome_tags is not None:
        config["genome_tokens"] = genome_tags.to_dict()
    with atomic_directory(directory) as partial:
        save_file(state, partial / WEIGHTS)
        write_json(partial / CONFIG, config)
        save_tokenizer(tokenizer, partial / TOKENIZER)
    return directory


def load_model(
    directory: str | Path, device: str | torch.device | None = None
) -> tuple[Transformer, Tokenizer, dict[str, Any]]:
    """Load an exported model directory: (model in eval mode, tokenizer, config.json contents).

    device: where the weights go; None is "cuda" when a GPU is present, else "cpu".
    """
    device = resolve_device(device)
    directory = require_files(directory, (WEIGHTS, CONFIG, TOKENIZER), "model directory")
    fields = Fields.read(directory / CONFIG)
    fields.format_version(FORMAT_VERSION)
    if "model" not in fields:
        fields.problem("model", "missing (config.json holds the model's shape under 'model')")
    fields.object("model")
    config = fields.values
    # A field missing from a saved config takes the value every model saved before it existed had.
    saved = {**LEGACY_MODEL, **config["model"]}
    model_config = Config.from_dict({"model": saved}, source=str(directory / CONFIG)).model
    tokenizer = load_tokenizer(directory / TOKENIZER)
    tags = genome_tags_of(config, directory / CONFIG)
    if tags is not None and tags.first_id != tokenizer.vocab_size:
        raise InputError(
            f"genome_tokens: first_id {tags.first_id} should be the tokenizer's vocab_size {tokenizer.vocab_size}",
            directory / CONFIG,
        )
    n_tags = 0 if tags is None else len(tags.names)
    if tokenizer.vocab_size + n_tags != model_config.vocab_size:
        tagged = f" + {n_tags} genome tokens" if n_tags else ""
        raise InputError(
            f"vocab_size: model has {model_config.vocab_size}, tokenizer has {tokenizer.vocab_size}{tagged}",
            directory / CONFIG,
        )
    model = Transformer(model_config)
    state = read_safetensors(directory / WEIGHTS)
    if "embedding.weight" not in state:
        raise InputError("weights: no embedding.weight tensor (not weights exported by glm)", directory / WEIGHTS)
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise InputError(f"weights: tensor {name!r} holds NaN or infinite values", directory / WEIGHTS)
    if model_config.tie_embeddings:
        state["head.weight"] = state["embedding.weight"]
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise InputError(f"weights do not match config.json: {error}", directory / WEIGHTS) from None
    return model.to(device).eval(), tokenizer, config


def genome_tags_of(config: dict[str, Any], source: str | Path) -> GenomeTags | None:
    """The genome tags stored in a model's config.json, or None for an untagged model."""
    if "genome_tokens" not in config:
        return None
    return GenomeTags.from_dict(config["genome_tokens"], str(source))


def require_untagged(tags: GenomeTags | None, directory: str | Path, what: str) -> None:
    """An InputError when the model was trained with genome tokens (`tags`), which `what` does not take yet."""
    if tags is not None:
        raise InputError(
            f"{what} does not take a model trained with genome tokens yet (its windows would lack the tag)",
            directory,
        )


def resolve_device(device: str | torch.device | None) -> torch.device:
    """A torch device this machine has: None is cuda when a GPU is present, else cpu; others are checked."""
    has_gpu = torch.cuda.is_available()
    if device is None:
        return torch.device("cuda" if has_gpu else "cpu")
    here = f"{torch.cuda.device_count()} CUDA GPU(s)" if has_gpu else "no GPU, only cpu"
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise InputError(f"device: {device!r} is not a device name; use cpu or cuda (this machine: {here})") from None
    if resolved.type == "cuda" and (not has_gpu or (resolved.index or 0) >= torch.cuda.device_count()):
        raise InputError(f"device: {device!r} is not available (this machine: {here})")
    if resolved.type not in ("cpu", "cuda"):
        raise InputError(f"device: {device!r} is not supported; use cpu or cuda (this machine: {here})")
    return resolved


def model_fingerprint(model: torch.nn.Module) -> str:
    """A short hash of a model's weights: ties a fitted head to the model whose features it learned."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]
