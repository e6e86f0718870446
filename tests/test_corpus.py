"""Many genomes in one run: manifests, weighted sampling, per-genome validation, held-out genomes."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import write_fasta

from glm.errors import InputError
from glm.io.corpus import read_corpus
from glm.model.tokenizers import KmerTokenizer
from glm.training.data import prepare
from glm.training.pretrain import pretrain
from glm.training.windows import TrainWindows, sampling_weights


def two_letter(letters: str, n: int, seed: int) -> str:
    return "".join(np.random.default_rng(seed).choice(list(letters), size=n))


@pytest.fixture
def two_genomes(tmp_path):
    """Genome ac uses only A and C, genome gt only G and T: 1 bit per base is the best a model can do."""
    folder = tmp_path / "genomes"
    folder.mkdir()
    write_fasta(folder / "ac.fa", {"ac1": two_letter("AC", 6000, 1)})
    write_fasta(folder / "gt.fa.gz", {"gt1": two_letter("GT", 3000, 2)})
    (folder / "notes.txt").write_text("not a genome\n")  # a folder's non-FASTA files are skipped
    return folder


def stores_of(folder, tmp_path):
    entries = read_corpus([folder])
    return [prepare(e.path, KmerTokenizer(1), tmp_path / "cache", split="tail", progress=False) for e in entries]


def test_a_folder_is_its_fasta_files_named_by_file(two_genomes) -> None:
    entries = read_corpus([two_genomes])
    assert [entry.name for entry in entries] == ["ac", "gt"]


def test_one_model_learns_both_genomes_and_reports_each(two_genomes, tmp_path, tiny_config) -> None:
    config = tiny_config.with_overrides({"train.max_steps": 120, "train.val_every": 60, "train.lr": 3e-3})
    result = pretrain([two_genomes], config, tmp_path / "run", progress=False, say=lambda *_: None)
    assert set(result.val_bits_per_genome) == {"ac", "gt"}
    assert all(bits < 1.35 for bits in result.val_bits_per_genome.values()), result.val_bits_per_genome  # uniform: 2
    assert "  ac " in result.summary() and "  gt " in result.summary()


def test_sampling_follows_size_temperature_and_manifest_weights(two_genomes, tmp_path) -> None:
    stores = stores_of(two_genomes, tmp_path)
    sizes = np.array([store.n_tokens("train") for store in stores], dtype=float)
    np.testing.assert_allclose(sampling_weights(stores), sizes / sizes.sum())
    np.testing.assert_allclose(sampling_weights(stores, temperature=0.0), [0.5, 0.5])
    np.testing.assert_allclose(sampling_weights(stores, [3.0, 1.0]), [0.75, 0.25])
    with pytest.raises(InputError, match="a weight for every genome"):
        sampling_weights(stores, [3.0, None])
    weights = np.array([0.8, 0.2])
    windows = TrainWindows(stores, window=16, batch_size=1, seed=0, weights=weights)
    drawn = np.array([windows.window_of(step, 0)[0] for step in range(10_000)])
    share = (drawn == 0).mean()
    assert abs(share - 0.8) < 4 * np.sqrt(0.8 * 0.2 / 10_000), share  # within 4 standard errors
    first = {windows.window_of(step, 0)[1][0] for step in range(200) if windows.window_of(step, 0)[0] == 0}
    assert first <= set(KmerTokenizer(1).encode("AC").ids.tolist())  # genome 0's windows hold only A and C


def test_a_corpus_gives_the_same_windows_on_one_and_two_processes(two_genomes, tmp_path) -> None:
    stores = stores_of(two_genomes, tmp_path)
    one = TrainWindows(stores, window=16, batch_size=4, seed=3).batch(5)["ids"]
    two = [TrainWindows(stores, window=16, batch_size=2, seed=3, rank=r, world_size=2).batch(5)["ids"] for r in (0, 1)]
    np.testing.assert_array_equal(one.numpy(), np.concatenate([t.numpy() for t in two]))


def test_held_out_genomes_are_validated_not_trained(two_genomes, tmp_path, tiny_config) -> None:
    # No reverse-complement augmentation: the reverse complement of an A/C genome is a G/T one.
    overrides = {"train.max_steps": 60, "data.holdout_genomes": ["gt"], "data.rc_augment": False}
    config = tiny_config.with_overrides(overrides)
    result = pretrain([two_genomes], config, tmp_path / "run", progress=False, say=lambda *_: None)
    assert result.held_out == ["gt"] and set(result.val_bits_per_genome) == {"ac", "gt"}
    assert result.val_bits_per_genome["gt"] > result.val_bits_per_genome["ac"]  # never saw G or T
    assert "(held out of training)" in result.summary()
    with pytest.raises(InputError, match=r"holdout_genomes: \['yeast'\] not among the genomes"):
        pretrain([two_genomes], tiny_config.with_overrides({"data.holdout_genomes": ["yeast"]}), tmp_path / "r2")


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("path\tname\nmissing.fa\tx\n", "corpus.tsv:2: path: no such file 'missing.fa'"),
        ("path\tname\nac.fa\tsame\ngt.fa.gz\tsame\n", "genome name 'same' is used twice"),
        ("path\tweight\nac.fa\t-1\n", "corpus.tsv:2: weight: must be a finite number above 0, got -1"),
        ("path\tweight\nac.fa\tinf\n", "corpus.tsv:2: weight: must be a finite number above 0, got inf"),
        ("path\tweight\nac.fa\tnan\n", "corpus.tsv:2: weight: must be a finite number above 0, got nan"),
        ("path\tweight\nac.fa\theavy\n", "corpus.tsv:2: weight: expected a number, got 'heavy'"),
        ("file\tweight\nac.fa\t1\n", "corpus.tsv:1: header: no 'path' column"),
        ("path\tname\nac.fa\n", "corpus.tsv:2: expected 2 tab-separated fields, found 1"),
    ],
)
def test_bad_manifests_name_the_line(rows: str, message: str, two_genomes) -> None:
    manifest = two_genomes / "corpus.tsv"
    manifest.write_text(rows)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        read_corpus([], manifest)


def test_the_cli_trains_on_a_manifest_and_a_file_together(two_genomes, tmp_path, capsys) -> None:
    from glm.commands import main

    (two_genomes / "corpus.tsv").write_text("path\tname\tweight\ngt.fa.gz\tgt_genome\t1\n")
    argv = [
        "pretrain",
        str(two_genomes / "ac.fa"),
        "--corpus",
        str(two_genomes / "corpus.tsv"),
        "--out",
        str(tmp_path / "r"),
    ]
    argv += ["--layers", "2", "--width", "32", "--heads", "2", "--context", "32", "--k", "1", "--max-steps", "4"]
    argv += ["--val-every", "2", "--batch-size", "4", "--precision", "32-true", "--quiet"]
    assert main(argv) == 2  # one genome has a weight, the other not
    assert "a weight for every genome" in capsys.readouterr().err
    (two_genomes / "corpus.tsv").write_text("path\tname\nac.fa\tac_genome\ngt.fa.gz\tgt_genome\n")
    assert main(["pretrain", "--corpus", str(two_genomes / "corpus.tsv"), *argv[4:]]) == 0
    out = capsys.readouterr().out
    assert "ac_genome" in out and "gt_genome" in out and "windows drawn: ac_genome 66.7%" in out
