"""Lightning checkpoint files for resuming: written atomically, the previous one kept, read back safely.

    runs/NAME/checkpoints/
      last.ckpt            --resume continues from here
      last.previous.ckpt   the one last.ckpt replaced: the fallback when last.ckpt is unreadable
      best.ckpt            lowest validation bits/base

These files are for resuming training only (they are pickles written by this run); a model is
shared as its exported directory (glm.model.checkpoint), which loads without running code.
"""

from __future__ import annotations

import pickle
from collections.abc import Collection
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO
from pytorch_lightning.utilities.rank_zero import rank_zero_warn

from glm.errors import InputError
from glm.io.files import atomic_file

LAST = "last.ckpt"  # the checkpoint --resume continues from


def previous_checkpoint(path: Path) -> Path:
    """Where AtomicCheckpointIO keeps the checkpoint that `path` replaced: last.ckpt -> last.previous.ckpt."""
    return path.with_name(f"{path.stem}.previous{path.suffix}")


def resume_checkpoint(directory: Path) -> Path:
    """last.ckpt, or (with a warning) the one before it when last.ckpt is missing or unreadable.

    Reading is cheap: tensors are memory-mapped, not loaded. A truncated file fails here because
    a checkpoint's zip index sits at its end.
    """
    problems = []
    for path in (directory / LAST, previous_checkpoint(directory / LAST)):
        if not path.exists():
            problems.append(f"{path.name} is missing")
            continue
        try:
            torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as error:
            problems.append(f"{path.name} is unreadable ({str(error).splitlines()[0]})")
            continue
        if problems:
            rank_zero_warn(f"{directory}: {'; '.join(problems)}; resuming from {path.name}")
        return path
    if all("missing" in problem for problem in problems):
        raise InputError(
            "--resume: no checkpoints/last.ckpt to resume from (a run stopped before its first checkpoint starts "
            "again without --resume)",
            directory.parent,
        )
    raise InputError(f"--resume: no usable checkpoint ({'; '.join(problems)})", directory)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint files that a kill at any moment leaves readable.

    Each checkpoint goes through glm's one atomic writer (temporary file beside the destination,
    flushed to disk, renamed over it), so the destination always holds a complete checkpoint.
    (Lightning's own save stages the file in the system temporary directory; where that is another
    filesystem than the run, such as a node-local /tmp on a cluster, the final move is a copy that
    a kill can cut short.) For the file names in `keep_previous` the replaced checkpoint is kept as
    NAME.previous.ckpt, for `resume_checkpoint` to fall back on.
    """

    def __init__(self, keep_previous: Collection[str] = ()):
        super().__init__()
        self.keep_previous = set(keep_previous)

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        path = Path(path)
        backup = previous_checkpoint(path) if path.name in self.keep_previous else None
        with atomic_file(path, backup=backup) as partial, open(partial, "wb") as handle:
            torch.save(checkpoint, handle)
