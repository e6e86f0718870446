"""Progress for every command: a tqdm bar on a terminal, one plain line per interval in a log.

A redrawing bar writes carriage returns, which a log file (SLURM, nohup, CI, `2> log`) keeps as
one unreadable line; off a terminal `progress_bar` returns `ProgressLines` instead, with the
same update / set_postfix / close / `n` the call sites use, both formatted by tqdm from one
`bar_format`, so a count reads "14 variants" and a rate "10.50 variants/s" either way.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from tqdm.auto import tqdm

LINE_EVERY = 30.0  # seconds between the lines of ProgressLines

# tqdm's formats with the rate always in units per second ("0.50 batches/s", not "2.00s/ batches").
WITH_TOTAL = (
    "{desc}: {percentage:3.0f}%{bar} {n_fmt}/{total_fmt}{unit} [{elapsed}<{remaining}, {rate_noinv_fmt}{postfix}]"
)
WITHOUT_TOTAL = "{desc}: {n_fmt}{unit} [{elapsed}, {rate_noinv_fmt}{postfix}]"


def stderr_is_interactive() -> bool:
    """True on a terminal or in Jupyter (progress bars redraw); False for a file or a pipe (a log)."""
    return sys.stderr.isatty() or "ipykernel" in sys.modules


class Progress(Protocol):
    """What call sites use of a bar: tqdm and ProgressLines both have it."""

    n: float

    def update(self, n: float = 1) -> Any: ...
    def set_postfix(self, **values: Any) -> Any: ...
    def close(self) -> Any: ...
    def __enter__(self) -> Any: ...
    def __exit__(self, *exception: Any) -> Any: ...


def progress_bar(total: float | None, desc: str, unit: str, enabled: bool = True, scale: bool = False) -> Progress:
    """A tqdm bar on a terminal or in Jupyter, else ProgressLines; silent when not `enabled`.

    `unit` is a plural word ("variants", "bases") shown after a space, or "B" for bytes (shown in
    k, M, G of 1024); `scale` shows other counts in k, M, G too. `total` None: a count without one.
    """
    units = tqdm_units(unit, scale)
    if enabled and stderr_is_interactive():
        return tqdm(total=total, desc=desc, bar_format=bar_format(total, "|{bar}|"), file=sys.stderr, **units)
    return ProgressLines(total, desc, units, shown=enabled)


def bar_format(total: float | None, bar: str) -> str:
    """tqdm's bar_format with `bar` in place of {bar}: "|{bar}|" draws one, "" leaves it out."""
    return WITH_TOTAL.replace("{bar}", bar) if total else WITHOUT_TOTAL


def tqdm_units(unit: str, scale: bool) -> dict[str, Any]:
    """tqdm's unit options: a word after a space ("14 variants"; tqdm would write "14variants"), or bytes."""
    if unit == "B":
        return {"unit": "B", "unit_scale": True, "unit_divisor": 1024}
    return {"unit": f" {unit}", "unit_scale": scale}


class RecentRate:
    """Units per second over the last `keep` intervals between points (count, seconds).

    An estimate that follows the current pace: start-up work (compiling, the first batches) drops
    out of it once `keep` later intervals are in, where an average since the start would keep it.
    """

    def __init__(self, keep: int = 10):
        self.points: deque[tuple[float, float]] = deque(maxlen=keep + 1)

    def add(self, count: float, seconds: float) -> None:
        self.points.append((count, seconds))

    def per_second(self) -> float | None:
        """None before two points (or when no time passed between the first and the last)."""
        if len(self.points) < 2:
            return None
        (first_count, first_seconds), (last_count, last_seconds) = self.points[0], self.points[-1]
        return (last_count - first_count) / (last_seconds - first_seconds) if last_seconds > first_seconds else None

    def seconds_left(self, left: float) -> float | None:
        """Seconds for `left` more units at the recent rate; None while the rate is unknown or 0."""
        rate = self.per_second()
        return left / rate if rate else None


class ProgressLines:
    """Progress for a log: one plain line every `every` seconds of updates and a final one at close.

    The lines' rate and ETA are RecentRate's; the final line's rate is the average over the whole run.
    """

    def __init__(
        self,
        total: float | None,
        desc: str,
        units: dict[str, Any],
        shown: bool = True,
        every: float = LINE_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.total, self.desc, self.units, self.shown, self.every, self.clock = total, desc, units, shown, every, clock
        self.n: float = 0
        self.postfix = ""
        self.started = self.last_line = clock()
        self.rate = RecentRate()
        self.rate.add(0, self.started)
        self.shown_n: float | None = None  # the count the last line showed
        self.closed = False

    def update(self, n: float = 1) -> None:
        self.n += n
        now = self.clock()
        if self.shown and now - self.last_line >= self.every:
            self.last_line = now
            self.rate.add(self.n, now)
            self.print(self.line(now, self.rate.per_second()))
            self.shown_n = self.n

    def set_postfix(self, **values: Any) -> None:
        self.postfix = ", ".join(f"{key}={value}" for key, value in values.items())

    def close(self) -> None:
        if self.shown and not self.closed and self.n != self.shown_n:  # else the last line said it all
            now = self.clock()
            self.print(self.line(now, self.n / (now - self.started) if now > self.started else None))
        self.closed = True

    def line(self, now: float, rate: float | None) -> str:
        """The progress at `now` as tqdm formats it, without a bar."""
        return tqdm.format_meter(
            self.n,
            self.total,
            now - self.started,
            prefix=self.desc,
            rate=rate,
            postfix=self.postfix or None,
            bar_format=bar_format(self.total, ""),
            **self.units,
        )

    def print(self, line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    def __enter__(self) -> ProgressLines:
        return self

    def __exit__(self, *exception: object) -> None:
        self.close()
