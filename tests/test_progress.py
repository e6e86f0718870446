"""Progress off a terminal: plain lines per interval, honest rates and ETAs (synthetic clocks, no timing)."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm

from glm.io.progress import ProgressLines, RecentRate, progress_bar, tqdm_units
from glm.training.trainer import step_line


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_recent_rate_forgets_a_slow_start() -> None:
    rate = RecentRate(keep=3)
    assert rate.per_second() is None and rate.seconds_left(10) is None
    seconds = 0.0
    rate.add(1, seconds)  # after a first step that compiled for a minute
    for step in range(10, 101, 10):
        seconds += 60.0 if step == 10 else 5.0  # steps 2..10 still slowed by start-up, then 0.5 s a step
        rate.add(step, seconds)
    assert rate.per_second() == 2.0  # the last 3 intervals only: 30 steps in 15 s
    assert rate.seconds_left(900) == 450.0  # 900 steps left at 2 steps/s (the average since step 1 says 605 s)
    rate.add(100, seconds)  # no time and no step since the last point
    assert rate.per_second() == 20 / 10


def test_lines_come_once_per_interval_with_a_final_line_and_no_carriage_return(capsys) -> None:
    clock = Clock()
    with ProgressLines(None, "scoring", tqdm_units("variants", False), every=30, clock=clock) as bar:
        for _ in range(10):
            clock.now += 10
            bar.update(7)
    lines = capsys.readouterr().err.splitlines()
    # at 30, 60 and 90 s, then the final one at 100 s (70 variants in all)
    assert [line.split(" [")[0] for line in lines] == [f"scoring: {n} variants" for n in (21, 42, 63, 70)]
    assert lines[-1] == "scoring: 70 variants [01:40,  0.70 variants/s]"


def test_a_final_line_is_not_repeated_and_a_silent_bar_still_counts(capsys) -> None:
    clock = Clock()
    bar = ProgressLines(4, "windows", tqdm_units("batches", False), every=30, clock=clock)
    clock.now += 40
    bar.update(4)
    bar.close()
    bar.close()
    assert capsys.readouterr().err.splitlines() == ["windows: 100% 4/4 batches [00:40<00:00,  0.10 batches/s]"]
    silent = ProgressLines(4, "windows", tqdm_units("batches", False), shown=False, clock=clock)
    clock.now += 40
    silent.update(3)
    silent.close()
    assert silent.n == 3 and capsys.readouterr().err == ""


def test_bytes_lines_carry_the_postfix_and_an_eta_at_the_rate_of_the_lines(capsys) -> None:
    clock = Clock()
    bar = ProgressLines(10 * 2**20, "scoring", tqdm_units("B", False), every=30, clock=clock)
    clock.now += 30
    bar.set_postfix(variants=1000)
    bar.update(2**20)
    clock.now += 30
    bar.set_postfix(variants=4000)
    bar.update(3 * 2**20)
    lines = capsys.readouterr().err.splitlines()
    # tqdm shows sizes in KiB/MiB (unit_divisor) and rates in kB/s
    assert lines == [
        "scoring:  10% 1.00M/10.0MB [00:30<04:30, 35.0kB/s, variants=1000]",
        "scoring:  40% 4.00M/10.0MB [01:00<01:30, 69.9kB/s, variants=4000]",  # 6 MiB left at 4 MiB a minute
    ]


def test_progress_bar_is_tqdm_on_a_terminal_and_lines_otherwise(monkeypatch) -> None:
    assert isinstance(progress_bar(5, "windows", "batches"), ProgressLines)  # pytest's stderr is no terminal

    class Terminal:
        def isatty(self) -> bool:
            return True

        def write(self, text: str) -> int:
            return len(text)

        def flush(self) -> None:
            pass

    monkeypatch.setattr(sys, "stderr", Terminal())
    with progress_bar(None, "scoring", "variants") as bar:
        assert isinstance(bar, tqdm)
        bar.update(14)
        assert str(bar).startswith("scoring: 14 variants [")  # not "14variants"
    assert isinstance(progress_bar(5, "windows", "batches", enabled=False), ProgressLines)


def test_step_line_eta_is_the_recent_rate_of_steps() -> None:
    class Module:
        unit, units_per_step = "base", 1000.0

    rate = RecentRate()
    rate.add(1, 0.0)  # timing starts after the first step
    rate.add(10, 4.5)
    line = step_line(10, 1000, rate, {"train/bits_per_base": 1.97311}, Module())
    assert line == "step 10/1000  train bits/base 1.9731  2,000 bases/s  ETA 8m15s"
    assert step_line(1, 1000, RecentRate(), {}, Module()) == "step 1/1000"  # no rate yet: no ETA
