"""From a FASTA file to a memory-mapped token store (glm.training.windows makes batches of it).

`prepare()` streams a FASTA file record by record into a token store on disk: `train.bin` and
`val.bin` (token ids, each record's piece followed by SEP), `train.soft.bin` and `val.soft.bin`
(lowercase bases per token) and `meta.json` (records, lengths, split). Records are read in pieces
through the genome's index (glm.io.genome), so memory depends on neither the genome nor its
largest record. The store is cached under a key made of the file's content, the tokenizer and
the split settings, so a second run with the same inputs starts at once.

Train/validation split (never overlapping):
  tail     the last `val_fraction` of every record is held out;
  records  whole records are held out until about `val_fraction` of the bases are;
  auto     records when the file has at least 20 records, else tail.

Several processes may call `prepare()` at once (every rank of a distributed run does): the first
to take a lock file beside the store writes it, the others wait and then read it. Without a
working lock (some cluster filesystems) each process writes a private copy and renames it into
place, so the result is still one complete store.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from glm.errors import InputError
from glm.io.files import atomic_directory, read_bytes, read_text
from glm.io.fasta import header_line
from glm.io.genome import Genome, RecordView
from glm.io.paths import check_input_file
from glm.io.progress import progress_bar
from glm.io.schema import Fields
from glm.model.tokenizers import NOT_UTF8_HINT, SEP, Tokenizer, encode_in_chunks

STORE_VERSION = 1
RECORDS_SPLIT_MIN_RECORDS = 20
SPLITS = ("train", "val")


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= 2**16 else np.dtype(np.int32)


def tail_split_point(length: int, val_fraction: float, stride: int) -> int:
    """Where the held-out tail of a record starts (a multiple of the stride, keeping k-mer phase)."""
    point = int(length * (1.0 - val_fraction)) // stride * stride
    return max(point, 0)


def file_digest(path: str | Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class TokenStore:
    """A prepared token store: memory-mapped train and validation tokens plus the record index."""

    directory: Path
    meta: dict[str, Any]

    @classmethod
    def open(cls, directory: str | Path) -> TokenStore:
        """A store written by `prepare`; a meta.json of the wrong shape, or split files of other sizes
        than it says, is an InputError naming the file and field."""
        directory = Path(directory)
        meta = Fields.read(directory / "meta.json")
        itemsize = np.dtype(meta.string("dtype", choices=("uint16", "int32"))).itemsize
        meta.string("split_used", choices=("tail", "records"))
        for split in SPLITS:
            tokens = meta.integer(f"{split}_tokens", minimum=0)
            meta.integer(f"{split}_bases", minimum=0)
            for name, size in ((f"{split}.bin", tokens * itemsize), (f"{split}.soft.bin", tokens)):
                found = (directory / name).stat().st_size if (directory / name).is_file() else "no"
                if found != size:
                    meta.problem(f"{split}_tokens", f"{tokens} tokens ({size} bytes), but {name} has {found} bytes")
        for record in meta.objects("records"):
            record.string("name")
            for split in SPLITS:
                if split in record:
                    record.object(split).integers("bases", 2)
        return cls(directory=directory, meta=meta.values)

    def tokens(self, split: str) -> np.ndarray:
        return self._array(f"{split}.bin", np.dtype(self.meta["dtype"]))

    def soft_masked(self, split: str) -> np.ndarray:
        return self._array(f"{split}.soft.bin", np.dtype(np.uint8))

    def _array(self, name: str, dtype: np.dtype) -> np.ndarray:
        path = self.directory / name
        if path.stat().st_size == 0:
            return np.zeros(0, dtype=dtype)
        return np.memmap(path, dtype=dtype, mode="r")

    @property
    def records(self) -> list[dict[str, Any]]:
        return self.meta["records"]

    def n_tokens(self, split: str) -> int:
        return int(self.meta[f"{split}_tokens"])


def prepare(
    fasta: str | Path,
    tokenizer: Tokenizer,
    cache_dir: str | Path,
    split: str = "auto",
    val_fraction: float = 0.05,
    progress: bool = True,
    input_format: str = "fasta",
) -> TokenStore:
    """Tokenize a FASTA file (or, with input_format="text", a text file) into a cached token store.

    A text file is one record: its first 1 - val_fraction of characters train, the rest validate.
    See the module docstring for the store and the split.
    """
    fasta = Path(fasta)
    assert input_format in ("fasta", "text"), input_format
    settings = {
        "version": STORE_VERSION,
        "format": input_format,
        "tokenizer": tokenizer.to_dict(),
        "split": split,
        "val_fraction": val_fraction,
    }
    check_input_file(fasta)  # before its digest is read: a FIFO would block
    key = hashlib.blake2b((file_digest(fasta) + json.dumps(settings, sort_keys=True)).encode(), digest_size=12)
    directory = Path(cache_dir) / f"{fasta.name}-{key.hexdigest()}"
    if (directory / "meta.json").exists() and (store := _valid_store(directory, repair=False)):
        return store
    try:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"cannot write the token cache ({error.strerror})", cache_dir) from None
    with _exclusive(Path(cache_dir) / f".{directory.name}.lock"):
        if _valid_store(directory, repair=True) is None:  # else another process wrote it while this one waited
            _write_store_atomically(fasta, tokenizer, directory, settings, progress)
    return TokenStore.open(directory)


def _valid_store(directory: Path, repair: bool) -> TokenStore | None:
    """The cached store in `directory`, or None when there is none or it is damaged (a cache entry is
    never trusted: with `repair`, a damaged one is removed, with a one-line notice, to be rebuilt)."""
    if not (directory / "meta.json").exists():
        return None
    try:
        return TokenStore.open(directory)
    except InputError as error:
        if repair:
            warnings.warn(f"{error}: a damaged token cache entry; rebuilding it", stacklevel=3)
            shutil.rmtree(directory, ignore_errors=True)
        return None


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `lock_path` (flock; released by the kernel if the process dies).

    Where the filesystem has no working lock, warn and go on unlocked: `prepare` stays correct
    (private copies, atomic rename), it only repeats the work in every process.
    """
    try:
        import fcntl  # POSIX only
    except ImportError:
        yield
        return
    try:
        handle = open(lock_path, "a")  # noqa: SIM115 - the `with handle` below holds the lock
    except OSError as error:
        raise InputError(f"cannot write the token cache ({error.strerror})", lock_path.parent) from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError as error:
            note = f"{lock_path}: no file lock ({error.strerror}); every process prepares its own copy"
            warnings.warn(note, stacklevel=3)
        yield  # closing the handle releases the lock


def _write_store_atomically(
    fasta: Path, tokenizer: Tokenizer, directory: Path, settings: dict[str, Any], progress: bool
) -> None:
    """Write the store into a private directory and rename it to `directory` when complete.

    A store that another process (one without a working lock) finished first is kept as it is.
    """
    with atomic_directory(directory, replace=False) as partial:
        if settings["format"] == "fasta":
            genome = Genome(fasta)
            records, split = [(name, RecordView(genome, name)) for name in genome.names], settings["split"]
        else:
            # Bytes for the byte tokenizer (any bytes are text to it), else UTF-8 text.
            text = read_bytes(fasta) if tokenizer.kind == "byte" else read_text(fasta, hint=NOT_UTF8_HINT)
            records, split = [(fasta.name, text)], "tail"
        meta = _write_store(fasta, records, tokenizer, partial, split, settings["val_fraction"], progress)
        meta.update(settings, source=str(fasta.resolve()))
        (partial / "meta.json").write_text(json.dumps(meta, indent=1))


def _write_store(
    fasta: Path,
    records: list[tuple[str, str | bytes | RecordView]],
    tokenizer: Tokenizer,
    out: Path,
    split: str,
    val_fraction: float,
    progress: bool,
) -> dict:
    """Tokenize every record into the split files under `out`; the store's meta (without the settings)."""
    if split == "auto":
        split = "records" if len(records) >= RECORDS_SPLIT_MIN_RECORDS else "tail"
    stride = int(getattr(tokenizer, "stride", 1))
    entries, skipped = [], []
    bar = progress_bar(None, f"prepare {fasta.name}", f"{tokenizer.unit}s", enabled=progress, scale=True)
    with bar, _SplitFiles(out, token_dtype(tokenizer.vocab_size)) as files:
        for index, (name, sequence) in enumerate(records):
            bar.update(len(sequence))
            if tokenizer.kind == "kmer" and _only_n(sequence):
                line = header_line(fasta, index)
                warnings.warn(f"{fasta}:{line}: record {name!r} has only N; skipped", stacklevel=2)
                skipped.append(name)
                continue
            entry: dict[str, Any] = {"name": name, "length": len(sequence)}
            for side, (start, end) in _record_split(len(sequence), split, val_fraction, stride, files.bases).items():
                if end > start:
                    part = sequence[start:end] if isinstance(sequence, (str, bytes)) else sequence.view(start, end)
                    entry[side] = {"bases": [start, end], "tokens": files.write(side, part, tokenizer)}
            entries.append(entry)
    if not entries:
        raise InputError("no usable records (every record is only N)", fasta)
    return {
        "dtype": files.dtype.name,
        "split_used": split,
        "records": entries,
        "skipped_records": skipped,
        "train_tokens": files.tokens["train"],
        "val_tokens": files.tokens["val"],
        "train_bases": files.bases["train"],
        "val_bases": files.bases["val"],
    }


def _record_split(
    length: int, split: str, val_fraction: float, stride: int, bases: dict[str, int]
) -> dict[str, tuple[int, int]]:
    """The bases [start, end) of a record that go to each split, given the `bases` each split already has.

    "tail": the last val_fraction of the record validates; "records": the whole record validates
    while that keeps the validation share at most val_fraction, else it trains.
    """
    if split == "tail":
        point = tail_split_point(length, val_fraction, stride)
        return {"train": (0, point), "val": (point, length)}
    total = bases["train"] + bases["val"] + length
    to_val = bases["val"] + length <= val_fraction * total
    return {"val" if to_val else "train": (0, length)}


class _SplitFiles:
    """The token and soft-mask files of both splits, open for writing, and what each holds so far."""

    def __init__(self, out: Path, dtype: np.dtype):
        self.dtype = dtype
        self.tokens = dict.fromkeys(SPLITS, 0)
        self.bases = dict.fromkeys(SPLITS, 0)
        # Closed by __exit__.
        self.files = {name: open(out / name, "wb") for s in SPLITS for name in (f"{s}.bin", f"{s}.soft.bin")}  # noqa: SIM115

    def __enter__(self) -> _SplitFiles:
        return self

    def __exit__(self, *_: object) -> None:
        for handle in self.files.values():
            handle.close()

    def write(self, side: str, part: str | bytes | RecordView, tokenizer: Tokenizer) -> list[int]:
        """Append the tokens of `part` and a SEP to one split; [first, end) of `part`'s tokens there."""
        first = self.tokens[side]
        for encoding in encode_in_chunks(tokenizer, part):  # type: ignore[arg-type]
            self.files[f"{side}.bin"].write(encoding.ids.astype(self.dtype).tobytes())
            self.files[f"{side}.soft.bin"].write(encoding.soft_masked.tobytes())
            self.tokens[side] += len(encoding.ids)
        end = self.tokens[side]
        self.files[f"{side}.bin"].write(np.array([SEP], dtype=self.dtype).tobytes())
        self.files[f"{side}.soft.bin"].write(b"\0")
        self.tokens[side] += 1
        self.bases[side] += len(part)
        return [first, end]


def _only_n(sequence: str | RecordView, piece: int = 1 << 22) -> bool:
    """True when every base is N (read in pieces: a record is never held whole)."""
    return all(not sequence[start : start + piece].strip("Nn") for start in range(0, len(sequence), piece))


def heldout_regions(store: TokenStore) -> list[tuple[str, int, int]]:
    """(record, start, end) of every held-out (validation) piece, 0-based half-open."""
    return [(entry["name"], *entry["val"]["bases"]) for entry in store.records if "val" in entry]
