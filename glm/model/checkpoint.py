"""The exported model directory: everything needed to use a trained model, and nothing unsafe.

    model/
      model.safetensors   weights (safetensors: loading never runs code)
      config.json         the model's shape, the data settings it was trained with, training summary
      tokenizer.json      the tokenizer

The directory is written beside its destination and renamed into place, so a crash mid-export
never leaves a directory that looks complete. Weights load strictly: a missing or unexpected
tensor is an error, never silently ignored.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from glm.config import ModelConfig
from glm.errors import InputError
from glm.io.files import atomic_directory, read_json, require_files, write_json
from glm.model.tokenizers import Tokenizer, load_tokenizer, save_tokenizer
from glm.model.transformer import Transformer

WEIGHTS, CONFIG, TOKENIZER = "model.safetensors", "config.json", "tokenizer.json"
FORMAT_VERSION = 1


def export_model(
    directory: str | Path, model: Transformer, tokenizer: Tokenizer, info: dict[str, Any] | None = None
) -> Path:
    """Write `model` and `tokenizer` to `directory` atomically (replacing an older export)."""
    directory = Path(directory)
    # Tied weights share storage; safetensors stores each tensor once, so drop the alias.
    state = {
        name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items() if name != "head.weight"
    }
    config = {"format_version": FORMAT_VERSION, "model": asdict(model.config), "info": info or {}}
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
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    directory = require_files(directory, (WEIGHTS, CONFIG, TOKENIZER), "model directory")
    config = read_json(directory / CONFIG)
    known = {f.name for f in fields(ModelConfig)}
    unknown = set(config.get("model", {})) - known
    if unknown:
        raise InputError(f"model: unknown keys {sorted(unknown)}", directory / CONFIG)
    model_config = ModelConfig(**config["model"])
    tokenizer = load_tokenizer(directory / TOKENIZER)
    if tokenizer.vocab_size != model_config.vocab_size:
        raise InputError(
            f"vocab_size: model has {model_config.vocab_size}, tokenizer has {tokenizer.vocab_size}", directory / CONFIG
        )
    model = Transformer(model_config)
    state = load_file(directory / WEIGHTS)
    state["head.weight"] = state["embedding.weight"]
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise InputError(f"weights do not match config.json: {error}", directory / WEIGHTS) from None
    return model.to(device).eval(), tokenizer, config


def model_fingerprint(model: torch.nn.Module) -> str:
    """A short hash of a model's weights: ties a fitted head to the model whose features it learned."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]
