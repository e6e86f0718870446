"""The one exception type for bad user input, and the one check of a choice (a Literal type's values).

Every problem with something a user handed us (a FASTA, a config, an output directory) is
raised as an `InputError` whose message names the file, the line and the field. The CLI prints
that message on one line and exits with status 2; Python users can catch it.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any


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


def choices(literal: Any) -> tuple[str, ...]:
    """The values of a Literal type: choices(Strands) == ("forward", "both")."""
    return typing.get_args(literal)


def check_choice(name: str, value: Any, literal: Any) -> None:
    """An InputError unless `value` is one of the Literal's values."""
    if value not in choices(literal):
        raise InputError(f"{name} must be one of {', '.join(choices(literal))}, got {value!r}")
