"""Writing outputs so that a crash never leaves a partial file looking complete.

Both helpers write beside the destination and rename into place: a reader sees either the old
output or the whole new one.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from glm.errors import InputError


@contextmanager
def atomic_directory(directory: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary directory; on success it replaces `directory` (an older one is removed)."""
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
        if directory.exists():
            old = directory.parent / f".{directory.name}.old-{os.getpid()}"
            directory.rename(old)
            partial.rename(directory)
            shutil.rmtree(old)
        else:
            partial.rename(directory)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


@contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is renamed to `path`."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"cannot create the output folder ({error.strerror})", path) from None
    partial = path.parent / f".{path.name}.partial-{os.getpid()}{path.suffix}"
    try:
        yield partial
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
