"""Work in shards over several processes: a folder of finished parts beside the output, resumable.

A job cuts its work into shards numbered in an order that does not depend on how many processes
run it (scoring: chunks of the input, in input order). Process `rank` of `world_size` computes
shards rank, rank + world_size, ...; each finished shard is one file in `OUT.parts/`, written
atomically, so a killed run leaves only whole parts and `resume` skips them (on any number of
processes). The folder's manifest records what the parts are made from (the job's `identity`:
input, model, options); a resume with anything else is refused. Rank 0 then joins the parts into
the output, which is the same file whatever the number of processes, and removes the folder.

Processes are started by Lightning (glm.training.processes); here they are only a rank, a count
and a barrier (`Ranks`), so a job runs in one process without Lightning (`ONE_PROCESS`).

    folder = PartsFolder(out, identity, ranks, resume)
    count = folder.compute(shards, ".part", work)   # work(number, shard, path) for this rank's shards
    if ranks.rank == 0:
        join(folder.part(number, ".part") for number in range(count)); folder.remove()
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

from glm.errors import InputError, Stopped
from glm.io.files import atomic_file, read_json

T = TypeVar("T")
MANIFEST = "manifest.json"


@runtime_checkable
class Ranks(Protocol):
    """The processes sharing a job: this one's rank, how many there are, and a barrier for all of them."""

    @property
    def rank(self) -> int: ...

    @property
    def world_size(self) -> int: ...

    def barrier(self) -> None: ...


@dataclass(frozen=True)
class SingleProcess:
    """A job run by this process alone."""

    rank: int = 0
    world_size: int = 1

    def barrier(self) -> None:
        """Nothing to wait for: no other process."""


ONE_PROCESS = SingleProcess()


class PartsFolder:
    """`OUT.parts/`: one file per finished shard and the manifest of what they are made from.

    Without `resume` an earlier folder is removed; with it, its finished parts are kept when its
    manifest equals `identity` (JSON-able), and a different one is an InputError naming what
    differs. Partial files that a killed process left are removed.
    """

    def __init__(self, out: Path, identity: Mapping[str, Any], ranks: Ranks, resume: bool):
        self.path = out.with_name(out.name + ".parts")
        self.ranks = ranks
        wanted = json.loads(json.dumps(identity))  # as it reads back from the manifest
        if resume and self.path.is_dir():  # every rank checks, so every rank stops on a mismatch
            _check_manifest(self.path, wanted)
        if ranks.rank == 0:
            if not resume and self.path.exists():
                shutil.rmtree(self.path)
            if self.path.is_dir():
                for stale in self.path.glob(".*.partial-*"):
                    stale.unlink()
            else:
                self.path.mkdir(parents=True)  # and the output's folder, where atomic_file would make it
                with atomic_file(self.path / MANIFEST) as partial:
                    partial.write_text(json.dumps(wanted, indent=1, sort_keys=True) + "\n")
        ranks.barrier()

    def part(self, number: int, suffix: str) -> Path:
        """The file of shard `number` (from 0) ending in `suffix`."""
        return self.path / f"shard-{number:07d}{suffix}"

    def compute(self, shards: Iterable[T], suffix: str, work: Callable[[int, T, Path], None]) -> int:
        """`work(number, shard, path)` for this process's shards not finished yet, each into an atomic
        part; then waits for every process. Returns the number of shards (every process sees them all)."""
        count = 0
        try:
            for number, shard in enumerate(shards):
                count += 1
                path = self.part(number, suffix)
                if number % self.ranks.world_size == self.ranks.rank and not path.exists():
                    with atomic_file(path) as partial:
                        work(number, shard, partial)
        except (Stopped, KeyboardInterrupt) as stop:  # a scheduler's SIGTERM, Ctrl-C: say what is kept
            signum = stop.signum if isinstance(stop, Stopped) else signal.SIGINT
            kept = f"with the finished shards kept in {self.path}; rerun the same command with --resume"
            raise Stopped(signum, kept) from None
        self.ranks.barrier()
        return count

    def remove(self) -> None:
        """Remove the folder (rank 0, once the output is joined)."""
        shutil.rmtree(self.path)

    @contextlib.contextmanager
    def removed_on_bad_input(self) -> Iterator[None]:
        """Bad input (an InputError, a full disk among them) removes the folder (rank 0): no part of such a
        run can be resumed, and the space is freed. A kill or an interrupt keeps it."""
        try:
            yield
        except InputError:
            if self.ranks.rank == 0 and self.path.is_dir():
                self.remove()
            raise


def file_identity(path: str | os.PathLike[str]) -> list[Any]:
    """A file in a manifest: its resolved path, size and modification time (just the path when missing)."""
    try:
        status = os.stat(path)
    except OSError:
        return [str(path)]  # the reader says what is wrong with it
    return [str(Path(path).resolve()), status.st_size, status.st_mtime_ns]


def _check_manifest(path: Path, wanted: dict[str, Any]) -> None:
    manifest = path / MANIFEST
    saved = read_json(manifest) if manifest.is_file() else {}
    differs = sorted(key for key in wanted.keys() | saved.keys() if saved.get(key) != wanted.get(key))
    if differs:
        raise InputError(
            f"--resume: these parts were made with a different {', '.join(differs)}; "
            "run without --resume to start over",
            path,
        )
