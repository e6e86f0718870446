"""A worker process for tests/test_scale.py: imports only what `prepare` needs, so it starts fast."""

from __future__ import annotations

import multiprocessing.synchronize
import time
from pathlib import Path

import glm.training.data
from glm.model.tokenizers import KmerTokenizer


def prepare_in_a_process(fasta: Path, cache: Path, log: Path, start: multiprocessing.synchronize.Barrier) -> None:
    """Worker: note (in `log`) when it writes the store itself, then prepare after the others are ready."""
    write_store = glm.training.data._write_store

    def slow_write_store(*args, **kwargs):
        with open(log, "a") as handle:
            handle.write("wrote\n")
        time.sleep(1.0)  # long enough for every other worker to arrive while this one writes
        return write_store(*args, **kwargs)

    glm.training.data._write_store = slow_write_store
    start.wait()
    store = glm.training.data.prepare(fasta, KmerTokenizer(2), cache, progress=False)
    assert store.n_tokens("train") > 0
