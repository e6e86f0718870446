"""The console command: pyproject.toml installs `glm` as glm.commands.main, `glm --version` says glm's version,
and glm's own notes are one line each."""

import importlib
import warnings

import pytest
from conftest import ROOT

import glm
from glm.commands import _one_line_notes, main

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


def test_a_note_of_glm_is_one_line_and_a_warning_of_another_library_is_shown_as_before(tmp_path, capsys) -> None:
    (tmp_path / "x.fa").write_text(">n\n" + "N" * 500 + "\n")
    before = warnings.showwarning
    assert main(["pretrain", str(tmp_path / "x.fa"), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-2:] == [
        f"note: {tmp_path / 'x.fa'}:1: record 'n' has only N; skipped",
        f"error: {tmp_path / 'x.fa'}: no usable records (every record is only N)",
    ]
    shown = []
    note = _one_line_notes(lambda *arguments: shown.append(arguments))
    note(UserWarning("from torch"), UserWarning, "/elsewhere/torch/nn.py", 3)
    assert shown == [(shown[0][0], UserWarning, "/elsewhere/torch/nn.py", 3, None, None)]
    assert warnings.showwarning is before  # main() put the earlier one back
