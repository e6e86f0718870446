"""Scaling out: concurrent data preparation, distributed training (DDP on CPU with gloo), global
batch and accumulation, activation checkpointing, atomic checkpoints, kill-and-resume."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

from conftest import write_fasta

import glm.data
from glm.tokenizers import KmerTokenizer


def _prepare_in_a_process(fasta: Path, cache: Path, log: Path, start: multiprocessing.synchronize.Barrier) -> None:
    """Worker: note (in `log`) when it writes the store itself, then prepare after the others are ready."""
    write_store = glm.data._write_store

    def slow_write_store(*args, **kwargs):
        with open(log, "a") as handle:
            handle.write("wrote\n")
        time.sleep(1.0)  # long enough for every other worker to arrive while this one writes
        return write_store(*args, **kwargs)

    glm.data._write_store = slow_write_store
    start.wait()
    store = glm.data.prepare(fasta, KmerTokenizer(2), cache, progress=False)
    assert store.n_tokens("train") > 0


def test_concurrent_prepares_write_the_store_once(tmp_path) -> None:
    """Every rank of a distributed run calls prepare at once: one writes, the others wait and read."""
    fasta = write_fasta(tmp_path / "g.fa", {"a": "ACGTTGCA" * 5000})
    log = tmp_path / "writers.log"
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(3)
    workers = [
        context.Process(target=_prepare_in_a_process, args=(fasta, tmp_path / "cache", log, start)) for _ in range(3)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0, 0, 0]
    assert log.read_text() == "wrote\n"
    stores = [p for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".")]
    assert len(stores) == 1 and (stores[0] / "meta.json").exists()
    assert not [p for p in (tmp_path / "cache").iterdir() if ".partial-" in p.name]
