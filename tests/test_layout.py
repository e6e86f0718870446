"""The package layout holds: no import cycles, the layers import downwards only, Lightning stays in
glm/training, old model directories still load to the same numbers, and every command's help works."""

import ast
import dataclasses
import functools
import inspect
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA, ROOT

import glm
from glm.arguments import build_parser
from glm.commands import COMMANDS, main
from glm.config import DataConfig, ModelConfig, TrainConfig
from glm.io.genome import Genome

PACKAGE = ROOT / "glm"
# Lowest first: a module may import only from its own layer or the layers before it.
LAYERS = [
    "glm.errors",
    "glm.version",
    "glm.alphabet",
    "glm.threads",
    "glm.io",
    "glm.plots",
    "glm.fields",
    "glm.config",
    "glm.model",
    "glm.hf",
    "glm.scoring",
    "glm.heads",
    "glm.api",
    "glm.training",
    "glm.arguments",
    "glm.commands",
    "glm",
]


def module_names() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def module_path(name: str) -> Path:
    return PACKAGE.parent / (name.replace(".", "/") + ("/__init__.py" if name in packages() else ".py"))


def imports_of(name: str, known: set[str]) -> set[str]:
    """The glm modules `name` imports, at the top, inside functions or under `if TYPE_CHECKING:`."""
    path = module_path(name)
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in known else node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return {module for module in found if module in known and module != name}


def packages() -> set[str]:
    return {".".join(p.relative_to(ROOT).parent.parts) for p in PACKAGE.rglob("__init__.py")}


def layer_of(name: str) -> int:
    """The layer of the longest entry of LAYERS that `name` is, or is inside ("glm" alone is glm/__init__)."""
    matches = [layer for layer in LAYERS if name == layer or (layer != "glm" and name.startswith(layer + "."))]
    return LAYERS.index(max(matches, key=len))


def test_no_import_cycles_and_layers_import_downwards() -> None:
    known = set(module_names())
    graph = {name: imports_of(name, known) for name in known}
    upward = [(a, b) for a, targets in graph.items() for b in targets if layer_of(b) > layer_of(a)]
    assert not upward, f"imports from a higher layer: {upward}"
    assert (
        layer_of("glm.io.files") < layer_of("glm.model.checkpoint") < layer_of("glm.commands.models") < layer_of("glm")
    )
    state: dict[str, str] = {}

    def walk(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph[name]):
            if state.get(target) == "open":
                raise AssertionError("import cycle: " + " -> ".join([*trail[trail.index(target) :], target]))
            if target not in state:
                walk(target, [*trail, target])
        state[name] = "done"

    for name in sorted(known):
        if name not in state:
            walk(name, [name])
    assert graph["glm.api"] and graph["glm.commands"], "the walk found the imports"


@functools.cache
def loaded_by_importing_glm() -> frozenset[str]:
    """The modules loaded by importing every glm module outside glm/training, in a fresh interpreter."""
    outside = [name for name in module_names() if not name.startswith("glm.training")]
    assert len(outside) > 20
    code = f"import importlib, sys\nfor name in {outside!r}:\n    importlib.import_module(name)\nprint(*sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, capture_output=True, text=True)
    loaded = frozenset(result.stdout.split())
    assert set(outside) <= loaded
    return loaded


def test_only_glm_training_imports_lightning() -> None:
    loaded = loaded_by_importing_glm()
    bad = sorted(m for m in loaded if m.split(".")[0] in ("pytorch_lightning", "lightning"))
    assert not bad, f"Lightning imported: {bad[:3]}"
    assert "matplotlib.pyplot" not in loaded, "pyplot imported"


def test_a_model_directory_exported_before_the_layout_change_loads_to_the_same_numbers() -> None:
    """tests/data/model_format1 was exported by the flat-layout glm; the numbers are what it computed then."""
    expected = json.loads((ROOT / "tests" / "data" / "model_format1_expected.json").read_text())
    lm = glm.load(ROOT / "tests" / "data" / "model_format1", device="cpu")
    genome = Genome(DATA / "phiX174.fa")
    contig = genome.names[0]
    sequence = genome.fetch(contig, 0, 300)
    result = lm.log_likelihood(sequence)
    assert result.bases == expected["bases"] == 300
    assert result.total == pytest.approx(expected["log_likelihood"], rel=1e-5)
    embedding = lm.embed(sequence, layer=-1, pooling="mean", strands="both")
    assert float(embedding.sum()) == pytest.approx(expected["embedding_sum"], rel=1e-4)
    variants = [
        (contig, 150, sequence[149], "A" if sequence[149] != "A" else "C"),
        (contig, 20, sequence[19:22], sequence[19]),
    ]
    scores = lm.score_variants(variants, DATA / "phiX174.fa", method=["llr", "embedding"])
    np.testing.assert_allclose(scores["llr"], expected["llr"], rtol=1e-4)
    np.testing.assert_allclose(scores["embedding_cosine"], expected["embedding_cosine"], rtol=1e-3)


def test_every_command_has_help_and_every_config_field_an_option(capsys) -> None:
    parser = build_parser(COMMANDS, "cli.py")
    names = [function.command[0] for function in COMMANDS]
    assert names == [
        "pretrain", "plot", "eval", "generate", "export-hf", "score", "mutagenesis", "fit-head", "track", "embed",
        "layers", "fit-classifier", "classify", "to-fasta",
    ]  # fmt: skip
    for name in names:
        with pytest.raises(SystemExit) as exit_:
            parser.parse_args([name, "--help"])
        assert exit_.value.code == 0
    pretrain_help = _help(parser, "pretrain", capsys)
    for section in (ModelConfig, DataConfig, TrainConfig):
        for field in section.__dataclass_fields__.values():
            if field.metadata.get("cli"):
                flag = (field.metadata["flag"] or field.name).replace("_", "-")
                assert f"--{flag}" in pretrain_help, flag
    assert "--vocab-size" not in pretrain_help and "--no-rc" in pretrain_help
    assert "peak learning rate (above 0; default: 0.0005)" in " ".join(_help(parser, "fit-classifier", capsys).split())


def _help(parser, name: str, capsys) -> str:
    with pytest.raises(SystemExit):
        parser.parse_args([name, "--help"])
    return capsys.readouterr().out


def test_config_options_reach_the_config_and_the_command_wins_on_shared_names(monkeypatch) -> None:
    seen = {}
    import glm.training.pretrain as pretrain_module

    def fake_resolve(name, overrides, run_dir, resume):
        seen.update(overrides=overrides, run_dir=run_dir)
        raise glm.InputError("stop here")

    monkeypatch.setattr(pretrain_module, "resolve_config", fake_resolve)

    argv = ["pretrain", "x.fa", "--layers", "3", "--no-rc", "--lr", "0.01", "--precision", "32-true", "--out", "o"]
    assert main(argv) == 2
    assert seen["overrides"] == {
        "model.n_layers": 3, "data.rc_augment": False, "train.lr": 0.01, "train.precision": "32-true",
    }  # fmt: skip
    assert seen["run_dir"] == Path("o")


def test_a_config_field_without_a_default_is_a_required_option(tmp_path, capsys) -> None:
    parser = build_parser(COMMANDS, "cli.py")
    given = ["fit-head", "m", "--genome", "g.fa", "--variants", "v.tsv", "--out", str(tmp_path / "h")]
    with pytest.raises(SystemExit):
        parser.parse_args(given)
    assert "the following arguments are required: --label" in capsys.readouterr().err
    assert parser.parse_args([*given, "--label", "class"]).label == "class"
    shown = " ".join(_help(parser, "fit-head", capsys).split())
    assert "--label LABEL column holding each variant's class --group GROUP" in shown
    assert "--folds FOLDS cross-validation folds (at least 2; default: 5)" in shown


def test_command_settings_keep_the_library_defaults() -> None:
    from glm.commands.models import GenerationSettings
    from glm.commands.options import ScoringSettings
    from glm.model.generation import generate_pieces
    from glm.scoring.plan import make_plan

    def shared_defaults(settings: object, function: object) -> list[tuple[object, object]]:
        library = inspect.signature(function).parameters
        shared = [field.name for field in dataclasses.fields(settings) if field.name in library]
        assert len(shared) >= 4
        return [(getattr(settings, name), library[name].default) for name in shared]

    for ours, theirs in shared_defaults(GenerationSettings(), generate_pieces):
        assert ours == theirs
    for ours, theirs in shared_defaults(ScoringSettings(), make_plan):
        assert ours is None or ours == theirs  # None: make_plan's default


def test_only_glm_hf_imports_transformers_and_only_when_asked() -> None:
    """transformers (and its tokenizers) is named only under glm/hf, and importing every module, glm.hf
    included, leaves it unimported: the core install runs without the glm[hf] extra. (glm/training is
    left out of the import check: Lightning imports the tokenizers package itself when it is installed.)"""
    naming = []
    for name in module_names():
        for node in ast.walk(ast.parse(module_path(name).read_text())):
            imported = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                imported = [node.module]
            if any(module.split(".")[0] in ("transformers", "tokenizers") for module in imported):
                naming.append(name)
    assert naming and all(name.startswith("glm.hf") for name in naming), naming
    bad = sorted(m for m in loaded_by_importing_glm() if m.split(".")[0] in ("transformers", "tokenizers"))
    assert not bad, f"transformers imported: {bad[:3]}"
