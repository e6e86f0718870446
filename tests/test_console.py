"""The console command: pyproject.toml installs `glm` as glm.commands.main, and `glm --version` says glm's version."""

import importlib

import pytest
from conftest import ROOT

import glm
from glm.commands import main

tomllib = pytest.importorskip("tomllib")  # Python 3.11 and later


def test_the_console_script_is_the_cli_main_and_the_version_has_one_source() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    module, _, name = project["project"]["scripts"]["glm"].partition(":")
    assert getattr(importlib.import_module(module), name) is main
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "glm.version.__version__"}


def test_version_prints_glm_version(capsys) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"glm {glm.__version__}"
