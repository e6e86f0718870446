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
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from glm.errors import InputError
from glm.io.paths import check_input_file, check_output

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"
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
    path = check_output(path)
    partial = path.parent / f".{path.name}.partial-{os.getpid()}{path.suffix}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.touch()  # fails here, before any work, where the file system refuses the write
    except OSError as error:
        raise InputError(f"output: cannot write ({error.strerror})", path) from None
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
    directory = check_output(directory, directory=True)
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
    if directory.is_file():
        raise InputError(f"is a file; expected a glm {what} (a Lightning .ckpt is for --resume only)", directory)
    if not directory.exists():
        raise InputError(f"no such {what}", directory)
    for name in names:
        if not (directory / name).is_file():
            raise InputError(f"not a glm {what}: {name} is missing", directory)
    return directory


def read_json(path: str | Path) -> Any:
    """The parsed contents of a JSON file; a missing file or bad JSON is an InputError naming file and line.

    glm.io.schema.Fields checks the shape of what it holds.
    """
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"not valid JSON ({error.msg})", path, error.lineno) from None


def read_safetensors(path: str | Path, framework: str = "pt") -> dict[str, Any]:
    """The tensors of a safetensors file (torch tensors, or numpy arrays with framework="numpy").

    Anything else under that name (a truncated file, a pickle) is an InputError; nothing is unpickled.
    """
    from safetensors import SafetensorError, safe_open  # torch only when tensors are read

    try:
        with safe_open(str(path), framework=framework) as handle:
            return {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118 - not a dict
    except (SafetensorError, OSError, ValueError) as error:
        raise InputError(f"not a valid safetensors file ({str(error).splitlines()[0]})", path) from None


def write_json(path: str | Path, values: Any) -> None:
    """Write `values` as indented JSON, atomically."""
    with atomic_file(path) as partial:
        partial.write_text(json.dumps(values, indent=2) + "\n")


def read_bytes(path: str | Path) -> bytes:
    """A whole input file's bytes (decompressed when gzipped), checked as check_input_file does; empty is an error."""
    path = check_input_file(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise InputError(f"cannot read ({error.strerror})", path) from None
    if raw[:2] == GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (EOFError, zlib.error, gzip.BadGzipFile) as error:
            raise InputError(f"not a complete gzip file ({error})", path) from None
    if not raw:
        raise InputError("empty file", path)
    return raw


def read_text(path: str | Path, hint: str = "") -> str:
    """A whole UTF-8 text file (plain or gzipped; a leading byte-order mark dropped); invalid UTF-8 is an
    error naming the line, followed by `hint`."""
    raw = read_bytes(path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise InputError(f"text: not valid UTF-8 (byte {error.start}){hint}", path, line) from None
    if not text:
        raise InputError("empty file", path)
    return text


def open_text(path: str | Path) -> IO[str]:
    """Open a plain or gzip-compressed text file (detected from its content) for reading.

    A UTF-8 byte-order mark (as Excel writes) is skipped. A truncated or corrupt gzip stream is an
    InputError naming the file and the line reached, raised while reading, instead of the
    decompressor's EOFError or zlib.error.
    """
    binary = open_binary(path)
    if binary.peek(len(UTF8_BOM))[: len(UTF8_BOM)] == UTF8_BOM:  # type: ignore[attr-defined]
        binary.read(len(UTF8_BOM))
    if isinstance(binary, _CheckedGzip):
        return _GzipText(binary)
    return io.TextIOWrapper(binary, encoding="ascii", errors="replace")


class _GzipText(io.TextIOWrapper):
    """Text over a _CheckedGzip, whose errors also say the line reached (see open_text)."""

    def __init__(self, binary: _CheckedGzip):
        super().__init__(binary, encoding="ascii", errors="replace")
        self.path, self.lines_read = Path(binary.name), 0

    def _reading(self, read: Any, *args: Any) -> Any:
        try:
            return read(*args)
        except InputError as error:
            raise InputError(f"{error.message}; near line {self.lines_read + 1}", self.path) from None

    def __next__(self) -> str:
        line = self._reading(super().__next__)
        self.lines_read += 1
        return line

    def readline(self, size: int = -1) -> str:  # type: ignore[override]
        line = self._reading(super().readline, size)
        self.lines_read += bool(line)
        return line

    def read(self, size: int | None = -1) -> str:
        text = self._reading(super().read, size)
        self.lines_read += text.count("\n")
        return text


def first_line(path: str | Path) -> tuple[int, str]:
    """(1-based number, text) of the first non-blank line; an all-blank file is an InputError."""
    with open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                return number, line
    raise InputError("empty file", path)


def open_binary(path: str | Path) -> IO[bytes]:
    """Open a plain or gzip-compressed (or BGZF) file for reading bytes, told by its content (see check_input_file)."""
    path = check_input_file(path)
    try:
        return _CheckedGzip(path) if is_gzip(path) else open(path, "rb")
    except OSError as error:
        raise InputError(f"cannot read ({error.strerror})", path) from None


class _CheckedGzip(gzip.GzipFile):
    """A gzip (or BGZF) reader whose truncated or corrupt data is an InputError naming the file."""

    def __init__(self, path: Path):
        super().__init__(path, "rb")

    def _checked(self, read: Any, *args: Any) -> Any:
        try:
            return read(*args)
        except (EOFError, zlib.error, gzip.BadGzipFile) as error:
            detail = "truncated" if isinstance(error, EOFError) else f"corrupt: {error}"
            raise InputError(f"not a complete gzip file ({detail})", self.name) from None

    def read(self, size: int = -1) -> bytes:
        return self._checked(super().read, size)

    def read1(self, size: int = -1) -> bytes:
        return self._checked(super().read1, size)

    def readline(self, size: int | None = -1) -> bytes:
        return self._checked(super().readline, size)

    def peek(self, n: int) -> bytes:
        return self._checked(super().peek, n)


@dataclass
class ReadProgress:
    """How far a reader has got through its input: the bytes of the file on disk consumed so far.

    For gzip or BGZF these are compressed bytes (the position in the file itself), so against the
    file's size on disk they give the fraction read without reading or decompressing it again.
    """

    bytes_read: int = 0

    def update(self, handle: IO[Any]) -> None:
        """Take the position `handle` (from open_text or open_binary) has reached in its file, read-ahead included."""
        binary = getattr(handle, "buffer", handle)  # a text handle's bytes
        if isinstance(binary, gzip.GzipFile):
            binary = binary.fileobj  # the compressed file under the decompressor
        self.bytes_read = binary.tell()


def is_gzip(path: Path) -> bool:
    """True when the file starts with the gzip magic bytes (plain gzip or BGZF)."""
    with open(path, "rb") as handle:
        return handle.read(2) == GZIP_MAGIC


def cache_root() -> Path:
    """Where glm caches what it derives from inputs (token stores, indexes): $GLM_CACHE or ~/.cache/glm."""
    return Path(os.environ.get("GLM_CACHE", Path.home() / ".cache" / "glm")).expanduser()
