from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import DATA, write_fasta

from glm.alphabet import reverse_complement
from glm.errors import InputError
from glm.io.fasta import read_fasta
from glm.model.tokenizers import PAD, SEP, UNK, KmerTokenizer
from glm.training.data import prepare
from glm.training.windows import TrainWindows, ValidationWindows


def random_dna(length: int, seed: int = 0) -> str:
    return "".join(np.random.default_rng(seed).choice(list("ACGT"), size=length))


def test_tail_split_is_disjoint_and_complete(tmp_path) -> None:
    records = {"a": random_dna(1000, 1), "b": random_dna(333, 2)}
    fasta = write_fasta(tmp_path / "g.fa", records)
    tokenizer = KmerTokenizer(3)
    store = prepare(fasta, tokenizer, tmp_path / "cache", split="tail", val_fraction=0.1, progress=False)
    train, val = store.tokens("train"), store.tokens("val")
    for entry in store.records:
        (t0, t1), (v0, v1) = entry["train"]["bases"], entry["val"]["bases"]
        assert t0 == 0 and t1 == v0 and v1 == entry["length"]  # disjoint and complete
        assert t1 % 3 == 0  # the split keeps the k-mer phase
        sequence = records[entry["name"]]
        a, b = entry["train"]["tokens"]
        assert tokenizer.decode(train[a:b]) == sequence[t0:t1]
        a, b = entry["val"]["tokens"]
        assert tokenizer.decode(val[a:b]) == sequence[v0:v1]
    assert store.meta["train_bases"] + store.meta["val_bases"] == 1333
    assert list(train).count(SEP) == 2 and list(val).count(SEP) == 2


def test_records_split_holds_out_whole_records(tmp_path) -> None:
    records = {f"contig{i}": random_dna(100 + i, i) for i in range(40)}
    fasta = write_fasta(tmp_path / "many.fa", records)
    store = prepare(fasta, KmerTokenizer(1), tmp_path / "cache", split="auto", val_fraction=0.1, progress=False)
    assert store.meta["split_used"] == "records"
    val_records = [r["name"] for r in store.records if "val" in r]
    train_records = [r["name"] for r in store.records if "train" in r]
    assert not set(val_records) & set(train_records)
    assert 0.05 < store.meta["val_bases"] / (store.meta["train_bases"] + store.meta["val_bases"]) <= 0.1


def test_store_is_cached_by_content_and_tokenizer(tmp_path) -> None:
    fasta = write_fasta(tmp_path / "g.fa", {"a": random_dna(500)})
    first = prepare(fasta, KmerTokenizer(2), tmp_path / "cache", progress=False)
    stamp = (first.directory / "train.bin").stat().st_mtime_ns
    again = prepare(fasta, KmerTokenizer(2), tmp_path / "cache", progress=False)
    assert again.directory == first.directory
    assert (again.directory / "train.bin").stat().st_mtime_ns == stamp  # not rewritten
    assert prepare(fasta, KmerTokenizer(3), tmp_path / "cache", progress=False).directory != first.directory
    write_fasta(fasta, {"a": random_dna(500, seed=9)})  # same name, new content
    assert prepare(fasta, KmerTokenizer(2), tmp_path / "cache", progress=False).directory != first.directory


def test_all_n_record_is_skipped_with_a_warning_and_all_n_genome_is_an_error(tmp_path) -> None:
    fasta = write_fasta(tmp_path / "g.fa", {"a": random_dna(300), "gap": "N" * 200, "b": random_dna(300, 3)})
    with pytest.warns(UserWarning, match=r"g\.fa:7: record 'gap' has only N; skipped"):
        store = prepare(fasta, KmerTokenizer(1), tmp_path / "cache", progress=False)
    assert store.meta["skipped_records"] == ["gap"]
    only_n = write_fasta(tmp_path / "n.fa", {"gap": "N" * 100})
    with pytest.warns(UserWarning), pytest.raises(InputError, match=r"n\.fa: no usable records"):
        prepare(only_n, KmerTokenizer(1), tmp_path / "cache", progress=False)


def test_train_batches_do_not_depend_on_workers_and_differ_by_rank(tmp_path) -> None:
    store = prepare(DATA / "phiX174.fa", KmerTokenizer(1), tmp_path / "cache", progress=False)

    def first_batches(workers: int, rank: int = 0, start: int = 0, n: int = 6) -> list[torch.Tensor]:
        dataset = TrainWindows(store, window=33, batch_size=4, seed=7, rank=rank, start_batch=start, world_size=2)
        loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=workers)
        stream = iter(loader)
        return [next(stream)["ids"] for _ in range(n)]

    serial, parallel = first_batches(0), first_batches(2)
    assert all(torch.equal(a, b) for a, b in zip(serial, parallel))
    assert not torch.equal(first_batches(0, rank=1)[0], serial[0])
    resumed = first_batches(0, start=3, n=3)  # a resumed run continues the same stream
    assert all(torch.equal(a, b) for a, b in zip(resumed, serial[3:]))


def test_a_step_sees_the_same_windows_for_any_split_of_its_global_batch(tmp_path) -> None:
    """16 windows per step: 1 process x 16, 2 ranks x 8, 2 ranks x 4 x 2 accumulated, 1 x 2 x 8."""
    tokenizer = KmerTokenizer(1)
    store = prepare(DATA / "phiX174.fa", tokenizer, tmp_path / "cache", progress=False)
    rc = tokenizer.reverse_complement_table()

    def step_windows(step: int, batch_size: int, world_size: int, accumulate: int) -> list[bytes]:
        rows = []
        for rank in range(world_size):
            dataset = TrainWindows(
                store, 33, batch_size, 7, rank, rc_table=rc, world_size=world_size, accumulate=accumulate
            )
            for micro in range(accumulate):
                rows += [r.numpy().tobytes() for r in dataset.batch(step * accumulate + micro)["ids"]]
        return sorted(rows)

    for step in (0, 5):
        single = step_windows(step, 16, 1, 1)
        assert len(set(single)) == 16
        for layout in ((8, 2, 1), (4, 2, 2), (8, 1, 2), (2, 4, 2)):
            assert step_windows(step, *layout) == single, layout
    assert step_windows(1, 16, 1, 1) != step_windows(0, 16, 1, 1)


def test_windows_come_from_either_strand_of_the_genome(tmp_path) -> None:
    tokenizer = KmerTokenizer(3)
    store = prepare(DATA / "phiX174.fa", tokenizer, tmp_path / "cache", progress=False)
    train_sequence = next(read_fasta(DATA / "phiX174.fa")).sequence[: store.records[0]["train"]["bases"][1]]
    dataset = TrainWindows(store, 20, 64, seed=0, rc_table=tokenizer.reverse_complement_table())
    forward = reverse = 0
    for window in dataset.batch(0)["ids"].numpy():
        if SEP in window:
            continue
        bases = tokenizer.decode(window)
        forward += bases in train_sequence
        reverse += reverse_complement(bases) in train_sequence
    assert forward + reverse == sum(SEP not in w for w in dataset.batch(0)["ids"].numpy())
    assert forward > 10 and reverse > 10


def test_mostly_n_windows_are_redrawn(tmp_path) -> None:
    fasta = write_fasta(tmp_path / "gappy.fa", {"a": random_dna(400) + "N" * 1600 + random_dna(400, 5)})
    store = prepare(fasta, KmerTokenizer(1), tmp_path / "cache", split="tail", progress=False)
    batch = TrainWindows(store, 64, 256, seed=0, max_unknown_fraction=0.5).batch(0)["ids"]
    unknown = (batch == UNK).float().mean(dim=1)
    assert unknown.max().item() <= 0.5
    assert (store.tokens("train") == UNK).mean() > 0.6  # most of the genome is N, yet no window is


def test_validation_windows_score_every_held_out_token_once(tmp_path) -> None:
    fasta = write_fasta(tmp_path / "g.fa", {"a": random_dna(2000)})
    store = prepare(fasta, KmerTokenizer(1), tmp_path / "cache", split="tail", val_fraction=0.3, progress=False)
    val = np.asarray(store.tokens("val"))
    targets = []
    for batch in ValidationWindows(store, window=50, batch_size=3, max_windows=1000):
        for row in batch["ids"].numpy():
            targets += [t for t in row[1:] if t != PAD]
    assert targets == list(val[1:])
    halves = [ValidationWindows(store, 50, 3, 1000, rank=r, world_size=2) for r in (0, 1)]
    assert sorted(halves[0].starts + halves[1].starts) == ValidationWindows(store, 50, 3, 1000).starts
