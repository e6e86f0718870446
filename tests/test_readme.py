"""The Python blocks of README.md and docs/VARIANTS.md run as written, so they cannot drift from the code.

Each ```python block of a page is run in order in one namespace (a later block may use `lm` from
an earlier one), from a scratch directory holding `data/` (the shipped files) and, at every
`runs/.../model` path the blocks name, a tiny model (2 layers, width 32, random weights) exported
there. A block that raises fails the test with its page and first line. Every `data/...` path in
the pages' code blocks (shell ones too) must be a file the repository ships.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from conftest import DATA, ROOT

from glm.api import GenomicLM
from glm.config import ModelConfig
from glm.model.checkpoint import export_model
from glm.model.tokenizers import KmerTokenizer
from glm.model.transformer import Transformer

README = ROOT / "README.md"
PAGES = [README, ROOT / "docs" / "VARIANTS.md"]  # the pages with Python examples
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
MODEL_PATH = re.compile(r"""["'](runs/[^"']+/model)["']""")
DATA_PATH = re.compile(r"(?<![\w/.])data/[\w.{},/-]*\w")


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(line number of the block's first code line, code) for every ```python block."""
    return [
        (text.count("\n", 0, match.start(2)) + 1, match.group(2))
        for match in BLOCK.finditer(text)
        if match.group(1) == "python"
    ]


def code_blocks(text: str) -> list[str]:
    return [match.group(2) for match in BLOCK.finditer(text)]


def export_tiny_model(directory: Path) -> None:
    torch.manual_seed(0)
    tokenizer = KmerTokenizer(3)
    config = ModelConfig(vocab_size=tokenizer.vocab_size, n_layers=2, n_heads=2, width=32, context=64)
    export_model(directory, Transformer(config), tokenizer)


def test_examples_name_only_shipped_files() -> None:
    assert len(python_blocks(README.read_text())) >= 2
    for page in [*PAGES, ROOT / "docs" / "SCALING.md"]:
        for code in code_blocks(page.read_text()):
            assert "../shared" not in code, f"{page.name}: examples must use files the repository ships (data/)"
            for path in DATA_PATH.findall(code):
                assert (ROOT / path).is_file(), f"{page.name}: an example names {path}, which data/ does not ship"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_python_blocks_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pandas")  # the blocks call VariantScores.to_pandas (the `pandas` extra)
    blocks = python_blocks(page.read_text())
    assert blocks
    (tmp_path / "data").symlink_to(DATA, target_is_directory=True)
    for model_dir in sorted({path for _, code in blocks for path in MODEL_PATH.findall(code)}):
        export_tiny_model(tmp_path / model_dir)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "readme"}
    for line, code in blocks:
        try:
            exec(compile(code, f"{page.name}:{line}", "exec"), namespace)
        except Exception as error:
            pytest.fail(f"the Python block at {page.name}:{line} raised {type(error).__name__}: {error}")
    assert isinstance(namespace["lm"], GenomicLM)
    assert len(namespace["scores"]["llr"]) == 117  # every MITOMAP mutation of data/ scored, in input order
