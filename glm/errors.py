"""The one exception type for bad user input, and the checks every layer shares: a choice (a Literal
type's values), keyword options forwarded to the function that declares them, and the keywords of
a function with explicit options (`named_options`).

Every problem with something a user handed us (a FASTA, a config, an output directory) is
raised as an `InputError` whose message names the file, the line and the field. The CLI prints
that message on one line and exits with status 2; Python users can catch it. A command stopped by
a signal (SIGTERM from a scheduler, SIGINT from Ctrl-C) raises `Stopped`: one line, status 128 + the
signal's number (143, 130).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import signal
import threading
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class InputError(ValueError):
    """Bad user input, with a one-line message that says where: `file:line: field: problem`."""

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        message = " ".join(message.split())  # always one line, whatever a library's text held
        self.message = message
        self.path = None if path is None else str(path)
        self.line = line
        where = ""
        if self.path is not None:
            where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {message}" if where else message)


class Stopped(BaseException):
    """A command stopped by a signal: SIGTERM (a scheduler's time limit, an eviction), SIGINT (Ctrl-C).

    Like KeyboardInterrupt it is no Exception, so `except Exception` never swallows it; cleanups in
    `finally` blocks run (glm.io.files removes its partial outputs). `status` is the shell's
    convention for a process a signal ended: 128 + the signal's number.
    """

    def __init__(self, signum: int, detail: str = ""):
        self.signum = signum
        self.detail = detail
        name = signal.Signals(signum).name
        what = "interrupted" if signum == signal.SIGINT else "terminated"
        super().__init__(f"{what} ({name})" + (f" {detail}" if detail else ""))

    @property
    def status(self) -> int:
        return 128 + self.signum


def raise_stopped(signum: int, frame: object) -> None:
    """A signal handler that raises Stopped where the program is (as Python's SIGINT raises KeyboardInterrupt)."""
    raise Stopped(signum)


@contextlib.contextmanager
def signal_handlers(handlers: Mapping[int, Callable[[int, Any], Any]]) -> Iterator[None]:
    """Within the block `handlers` handle their signals; the earlier handlers come back after it.

    Python sets handlers in the main thread only; elsewhere the block runs with the handlers it has.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, handler) for signum, handler in handlers.items()}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)


def choices(literal: Any) -> tuple[str, ...]:
    """The values of a Literal type: choices(Strands) == ("forward", "both")."""
    return typing.get_args(literal)


def check_choice(name: str, value: Any, literal: Any) -> None:
    """An InputError unless `value` is one of the Literal's values."""
    if value not in choices(literal):
        raise InputError(f"{name} must be one of {', '.join(choices(literal))}, got {value!r}")


def keyword_options(function: Callable[..., object]) -> list[str]:
    """The names of `function`'s keyword-only parameters: the options a caller may forward to it."""
    parameters = inspect.signature(function).parameters.values()
    return [parameter.name for parameter in parameters if parameter.kind is inspect.Parameter.KEYWORD_ONLY]


def check_options(what: str, options: Mapping[str, Any], function: Callable[..., object]) -> None:
    """An InputError naming any of `options` that is not a keyword-only parameter of `function`."""
    known = keyword_options(function)
    _refuse_unknown(what, set(options) - set(known), known)


def named_options(what: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A decorator: a keyword the function does not take is an InputError naming it and the known
    options (the parameters with a default), as `check_options` says it, rather than a TypeError.
    help() and editors still see the function's own signature."""

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        parameters = inspect.signature(function).parameters
        options = [name for name, parameter in parameters.items() if parameter.default is not parameter.empty]

        @functools.wraps(function)
        def checked(*args: P.args, **kwargs: P.kwargs) -> R:
            _refuse_unknown(what, set(kwargs) - set(parameters), options)
            return function(*args, **kwargs)

        return checked

    return decorate


def _refuse_unknown(what: str, unknown: Iterable[str], known: Iterable[str]) -> None:
    if unknown := sorted(unknown):
        raise InputError(f"unknown {what} option(s) {unknown}; known: {', '.join(sorted(known))}")
