"""Which paths glm may read and write: inputs must be regular files it can read, outputs must be
writable places that overwrite no input.

`check_input_file` is the one check before any input file is opened (glm.io.files' readers call
it); `check_output` and the option types `OutputFile` / `OutputDirectory` check an output as the
command line is parsed, and `check_outputs_apart` (called by the CLI generator for every command)
refuses an output that would overwrite an input.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from glm.errors import InputError

# Compressions glm does not read, told by their first bytes: (magic, name, the command that undoes it).
OTHER_COMPRESSIONS = (
    (b"BZh", "bzip2", "bunzip2"),
    (b"\xfd7zXZ\x00", "xz", "unxz"),
    (b"PK\x03\x04", "zip", "unzip"),
    (b"\x28\xb5\x2f\xfd", "zstd", "unzstd"),
)
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
FIGURES = (".png", ".pdf", ".svg")  # files glm writes but never reads: replacing one in an input directory is safe


def check_input_file(path: str | Path) -> Path:
    """`path` as a Path, or an InputError unless it is a regular file glm can read.

    Refused, naming the file: a missing path, a directory, a FIFO, socket or device (opening one
    would block or never end), a file compressed with something other than gzip/BGZF (named, with
    the command that decompresses it), and UTF-16 text. Every input file reader calls it first.
    """
    path = Path(path)
    if not path.exists():
        raise InputError("no such file", path)
    if path.is_dir():
        raise InputError("is a directory, expected a file", path)
    if not path.is_file():
        raise InputError("is not a regular file (a FIFO, socket or device); give a file", path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError as error:
        raise InputError(f"cannot read ({error.strerror})", path) from None
    for magic, name, tool in OTHER_COMPRESSIONS:
        if head.startswith(magic):
            message = f"is {name}-compressed; glm reads plain or gzip/BGZF files: decompress it with {tool}"
            raise InputError(message, path)
    if head[:2] in UTF16_BOMS:
        raise InputError("is UTF-16 text; glm reads UTF-8 (or ASCII): save it as UTF-8", path)
    return path


def check_output(path: str | Path, directory: bool = False) -> Path:
    """`path` as a Path, or an InputError if an output cannot be written there; call before any work.

    A file output must not be an existing directory (a directory output must not be an existing
    file), and its nearest existing parent must be a directory this process can write in.
    """
    path = Path(path)
    if path.is_dir() and not directory:
        raise InputError("output: is a directory; give a file name", path)
    if path.exists() and not path.is_dir() and directory:
        raise InputError("output: is a file; give a directory", path)
    existing = path.absolute().parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"output: {existing} is a file, not a folder", path)
    try:
        tempfile.TemporaryFile(dir=existing).close()  # the file system's own answer (read-only, /proc, quota)
    except OSError as error:
        raise InputError(f"output: cannot write in {existing} ({error.strerror})", path) from None
    return path


class OutputFile(str):
    """A path where an output file will be written, checked as it is made (see check_output).

    `written()` lists every file the output makes: a subclass adds its sidecars (an index, a names
    table), so that the command line can refuse an output that would overwrite an input.
    """

    def __new__(cls, path: str | Path) -> OutputFile:
        return super().__new__(cls, check_output(path))

    def written(self) -> list[Path]:
        """The paths this output writes."""
        return [Path(self)]


class OutputDirectory(str):
    """A path where an output directory will be written, checked as it is made (see check_output)."""

    def __new__(cls, path: str | Path) -> OutputDirectory:
        return super().__new__(cls, check_output(path, directory=True))

    def written(self) -> list[Path]:
        """The directory itself: whatever is inside it may be replaced."""
        return [Path(self)]


def check_outputs_apart(outputs: Iterable[OutputFile | OutputDirectory], inputs: Iterable[str | Path]) -> None:
    """An InputError when an output would overwrite an input, before any work.

    `inputs` are any paths a command was given (those that do not exist are not inputs). Refused: a
    written path that is an input (the same file, through links too); an output directory holding an
    input (what is inside an output directory may be replaced); a file written over one that already
    exists inside an input directory (a model's config.json, a run's metrics.csv), unless it is a
    figure, which glm never reads (`plot RUN --out RUN/curves.png` redraws the run's own figure).
    """
    sources = [Path(source) for source in inputs if _exists(source)]
    for output in outputs:
        for written in output.written():
            for source in sources:
                problem = _overwritten(written, source, isinstance(output, OutputDirectory))
                if problem:
                    raise InputError(f"output: {problem}; write the output elsewhere", written)


def _exists(text: str | Path) -> bool:
    """Whether a value names an existing path (a prompt or a region string may be too long to be one)."""
    try:
        return Path(text).exists()
    except (OSError, ValueError):
        return False


def _overwritten(written: Path, source: Path, directory: bool) -> str | None:
    """Why writing `written` would overwrite the input `source`, or None."""
    if written.exists() and os.path.samefile(written, source):
        return "is also an input"
    place, origin = written.resolve(), source.resolve()
    if directory and origin.is_relative_to(place):
        return f"the directory holds the input {source}"
    figure = written.suffix.lower() in FIGURES
    if not directory and not figure and written.is_file() and source.is_dir() and place.is_relative_to(origin):
        return f"is a file of the input directory {source}"
    return None
