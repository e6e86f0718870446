"""Reading and writing files safely: the one atomic writer, and readers whose errors name the file.

Writers put their output beside the destination under a temporary name, flush it to disk and
rename it into place: a reader (or a resumed run) sees either the old output or the whole new
one, never a partial file under the final name. A failed or interrupted write (a full disk,
Ctrl-C) removes the temporary; a full disk becomes the InputError "no space left on device
writing FILE".
"""

from __future__ import annotations

import errno
import gzip
import io
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from glm.errors import InputError

GZIP_MAGIC = b"\x1f\x8b"
FULL_DISK = (errno.ENOSPC, errno.EDQUOT)  # no space left; disk quota exceeded


def _full_disk_as_input_error(error: OSError, path: Path) -> None:
    """Raise the one-line InputError for a full disk (or quota); other errors are left to the caller."""
    if error.errno in FULL_DISK:
        raise InputError(f"no space left on device writing {path}") from None


def _fsync(path: Path) -> None:
    """Flush a written file's contents to disk, so that a rename cannot outrun them."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextmanager
def atomic_file(path: str | Path, backup: str | Path | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is flushed to disk and renamed to `path`.

    With `backup`, a file already at `path` is first renamed to `backup` (a checkpoint keeps the
    one it replaces). The temporary name keeps the suffix, for writers that choose a format by it.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"cannot create the output folder ({error.strerror})", path) from None
    partial = path.parent / f".{path.name}.partial-{os.getpid()}{path.suffix}"
    try:
        yield partial
        _fsync(partial)
        if backup is not None and path.exists():
            os.replace(path, backup)
        os.replace(partial, path)
    except OSError as error:
        _full_disk_as_input_error(error, path)
        raise
    finally:
        partial.unlink(missing_ok=True)


@contextmanager
def atomic_directory(directory: str | Path, replace: bool = True) -> Iterator[Path]:
    """Yield a fresh temporary directory; on success its files are flushed and it becomes `directory`.

    replace=True removes an older `directory`; replace=False keeps one that appeared meanwhile
    (another process wrote the same content first) and discards this copy.
    """
    directory = Path(directory)
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        partial = directory.parent / f".{directory.name}.partial-{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
    except OSError as error:
        raise InputError(f"cannot write the output directory ({error.strerror})", directory) from None
    try:
        yield partial
        for written in partial.rglob("*"):
            if written.is_file():
                _fsync(written)
        if directory.exists() and not replace:
            return
        if directory.exists():
            old = directory.parent / f".{directory.name}.old-{os.getpid()}"
            directory.rename(old)
            partial.rename(directory)
            shutil.rmtree(old)
        else:
            partial.rename(directory)
    except OSError as error:
        _full_disk_as_input_error(error, directory)
        raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def require_files(directory: str | Path, names: Iterable[str], what: str) -> Path:
    """`directory` as a Path, or an InputError naming the first of `names` it lacks ("not a glm <what>")."""
    directory = Path(directory)
    for name in names:
        if not (directory / name).is_file():
            raise InputError(f"not a glm {what}: {name} is missing", directory)
    return directory


def read_json(path: str | Path) -> Any:
    """The parsed contents of a JSON file; a missing file or bad JSON is an InputError naming file and line."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InputError("no such file", path) from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read ({error})", path) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"not valid JSON ({error.msg})", path, error.lineno) from None


def write_json(path: str | Path, values: Any) -> None:
    """Write `values` as indented JSON, atomically."""
    with atomic_file(path) as partial:
        partial.write_text(json.dumps(values, indent=2) + "\n")


def read_text(path: str | Path) -> str:
    """A whole UTF-8 text file (plain or gzipped); invalid UTF-8 is an error naming the line."""
    path = Path(path)
    if not path.exists():
        raise InputError("no such file", path)
    raw = path.read_bytes()
    if raw[:2] == GZIP_MAGIC:
        raw = gzip.decompress(raw)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        message = f"text: not valid UTF-8 (byte {error.start}); use --tokenizer byte for raw bytes"
        raise InputError(message, path, line) from None
    if not text:
        raise InputError("empty file", path)
    return text


def open_text(path: str | Path) -> IO[str]:
    """Open a plain or gzip-compressed text file (detected from its content) for reading."""
    path = Path(path)
    if not path.exists():
        raise InputError("no such file", path)
    if path.is_dir():
        raise InputError("is a directory, expected a file", path)
    with open(path, "rb") as handle:
        magic = handle.read(2)
    if magic == GZIP_MAGIC:
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="ascii", errors="replace")
    return open(path, encoding="ascii", errors="replace")


def first_line(path: str | Path) -> tuple[int, str]:
    """(1-based number, text) of the first non-blank line; an all-blank file is an InputError."""
    with open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                return number, line
    raise InputError("empty file", path)
