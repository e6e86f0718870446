"""Training curves (RUN/curves.png, `plot`) and logs a file can hold (one line per N steps, no Lightning notes)."""

from __future__ import annotations

import csv
import logging
import sys

import numpy as np
import pytest
from conftest import DATA, PNG

import cli
from glm.errors import InputError
from glm.plots import read_training_curves
from glm.training.pretrain import pretrain
from glm.training.trainer import StepLines, StepProgressBar, _duration, progress_bar


def csv_columns(path, y: str, x: str) -> tuple[list[float], list[float]]:
    """(x, y) of the rows of a metrics.csv holding y, read independently of glm."""
    with open(path) as handle:
        rows = [row for row in csv.DictReader(handle) if row[y]]
    return [float(row[x]) for row in rows], [float(row[y]) for row in rows]


def test_pretraining_draws_curves_whose_data_equal_metrics_csv_and_logs_plain_lines(
    tmp_path, tiny_config, capfd, caplog
) -> None:
    config = tiny_config.with_overrides({"train.log_every": 5})
    with caplog.at_level(logging.INFO):
        result = pretrain(DATA / "phiX174.fa", config, tmp_path / "run", progress=True, say=lambda *_: None)
    picture = tmp_path / "run" / "curves.png"
    assert picture.read_bytes()[:8] == PNG and str(picture) in result.summary()

    metrics = tmp_path / "run" / "logs" / "version_0" / "metrics.csv"
    curves = read_training_curves(tmp_path / "run")
    assert curves.unit == "base" and curves.x_label == "bases seen"
    np.testing.assert_array_equal(
        (curves.train.x, curves.train.y), csv_columns(metrics, "train/bits_per_base", "train/bases_seen")
    )
    np.testing.assert_array_equal(
        (curves.val.x, curves.val.y), csv_columns(metrics, "val/bits_per_base", "val/bases_seen")
    )
    steps, lr = csv_columns(metrics, "lr-AdamW/pg1", "step")
    np.testing.assert_array_equal(curves.lr.y, lr)
    np.testing.assert_array_equal(curves.lr.x, curves.train.x)  # logged at the same steps
    bases_per_step = result.bases_seen / result.steps
    np.testing.assert_array_equal(curves.train.x, (np.array(steps) + 1) * bases_per_step)
    assert curves.val.x.tolist() == [10 * bases_per_step, 20 * bases_per_step]  # the last step validates once

    err = capfd.readouterr().err  # stderr is captured, not a terminal: one line every log_every steps
    assert "\r" not in err  # the token store's progress too is plain lines
    lines = [line for line in err.splitlines() if line.startswith("step ")]
    assert [line.split()[1] for line in lines if "train" in line] == ["5/20", "10/20", "15/20", "20/20"]
    assert "val bits/base" in lines[2] and "bases/s" in lines[0] and "ETA" in lines[0]
    for notice in ("GPU available", "TPU available", "litlogger", "Trainer.fit` stopped"):
        assert notice not in err and not any(notice in record.getMessage() for record in caplog.records)
    assert logging.getLogger("pytorch_lightning").level == logging.INFO  # restored after the run

    picture.unlink()
    assert cli.main(["plot", str(tmp_path / "run")]) == 0
    assert picture.read_bytes()[:8] == PNG


def test_a_resumed_runs_later_version_replaces_the_steps_it_redid(tmp_path) -> None:
    header = "epoch,lr-AdamW/pg1,step,train/bases_seen,train/bits_per_base,val/bases_seen,val/bits_per_base\n"
    first = [f"0,,{s},{(s + 1) * 100},{2.0 - s / 100},,\n" for s in range(10)] + ["0,,9,,,1000,1.9\n"]
    second = [f"0,,{s},{(s + 1) * 100},{1.5 - s / 100},,\n" for s in range(6, 12)]
    for version, rows in (("version_0", first), ("version_1", second)):
        (tmp_path / "logs" / version).mkdir(parents=True)
        (tmp_path / "logs" / version / "metrics.csv").write_text(header + "".join(rows))
    curves = read_training_curves(tmp_path)
    assert curves.train.x.tolist() == [100.0 * (s + 1) for s in range(12)]
    np.testing.assert_allclose(
        curves.train.y, [2.0 - s / 100 for s in range(6)] + [1.5 - s / 100 for s in range(6, 12)]
    )
    assert curves.val.x.size == 0  # validated at step 9, which the resumed run redid


def test_plot_of_a_directory_without_metrics_is_one_line(tmp_path, capsys) -> None:
    assert cli.main(["plot", str(tmp_path)]) == 2
    assert "no logs/version_N/metrics.csv" in capsys.readouterr().err
    with pytest.raises(InputError, match="no train/bits_per"):
        (tmp_path / "logs" / "version_0").mkdir(parents=True)
        (tmp_path / "logs" / "version_0" / "metrics.csv").write_text("epoch,step\n0,1\n")
        read_training_curves(tmp_path)


def test_progress_is_a_bar_on_a_terminal_and_lines_otherwise(monkeypatch) -> None:
    class Terminal:
        def isatty(self) -> bool:
            return True

    assert isinstance(progress_bar(7), StepLines) and progress_bar(7).every == 7  # pytest's stderr is no terminal
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert isinstance(progress_bar(7), StepProgressBar)
    assert [_duration(s) for s in (42, 551, 3725)] == ["42s", "9m11s", "1h02m"]
