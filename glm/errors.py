"""The one exception type for bad user input.

Every problem with something a user handed us (a FASTA, a config, an output directory) is
raised as an `InputError` whose message names the file, the line and the field. The CLI prints
that message on one line and exits with status 2; Python users can catch it.
"""

from __future__ import annotations

from pathlib import Path


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
