"""Hugging Face interop: the only package that imports transformers (an optional extra, `glm[hf]`).

    glm.hf.export      a glm model -> a transformers-native directory (Llama, or Qwen3 with QK-norm)
    glm.hf.tokenizer   glm's k-mer tokenizer as tokenizer files AutoTokenizer loads, and back
    glm.hf.hub_model   a transformers causal LM behind the Transformer's interface, for glm.load

transformers (and its tokenizers) is imported inside the functions that need it, never at import
time, so `import glm` and every command but these run without it. `glm.hf.hub_model.load_any`
is the one place that tells a glm model directory from a transformers one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from glm.errors import InputError
from glm.io.files import read_json
from glm.model.checkpoint import CONFIG

INSTALL = 'pip install "glm[hf]"'


def transformers_module() -> ModuleType:
    """The transformers package, or an InputError saying in one line how to install it."""
    try:
        import transformers
    except ImportError:
        raise InputError(f"Hugging Face interop needs transformers, which is not installed: {INSTALL}") from None
    return transformers


@contextmanager
def transformers_quiet() -> Iterator[ModuleType]:
    """transformers, with its progress bars (loading and writing weights) off until the block ends."""
    transformers = transformers_module()
    bars = transformers.utils.logging
    was_enabled = bars.is_progress_bar_enabled()
    bars.disable_progress_bar()
    try:
        yield transformers
    finally:
        if was_enabled:
            bars.enable_progress_bar()


def is_transformers_directory(directory: str | Path) -> bool:
    """True for a directory whose config.json is a transformers config (model_type), not glm's own."""
    path = Path(directory) / CONFIG
    if not path.is_file():
        return False
    config = read_json(path)
    return isinstance(config, dict) and "model_type" in config and "model" not in config
