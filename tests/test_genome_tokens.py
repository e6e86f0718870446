"""Genome tokens: one model conditioned on the genome a window comes from (--genome-tokens, --genome-name)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import write_fasta

import glm
from glm.commands import main
from glm.config import Config
from glm.errors import InputError
from glm.io.corpus import read_corpus
from glm.model.genome_tags import GenomeTags, genome_token
from glm.model.tokenizers import KmerTokenizer
from glm.training.data import prepare
from glm.training.pretrain import pretrain
from glm.training.windows import TrainWindows, ValidationWindows

AC, GT = "AC", "GT"


def two_letter(letters: str, n: int, seed: int) -> str:
    return "".join(np.random.default_rng(seed).choice(list(letters), size=n))


def tagged_config(**overrides) -> Config:
    """Tiny and quick; no reverse-complement augmentation, which would turn an A/C window into a G/T one."""
    config = Config.from_dict(
        {
            "model": {"n_layers": 2, "n_heads": 2, "width": 32, "context": 16},
            "data": {"k": 1, "rc_augment": False, "genome_tokens": True, "split": "tail"},
            "train": {"batch_size": 16, "max_steps": 80, "warmup_steps": 5, "val_every": 40, "val_windows": 16},
        }
    )
    return config.with_overrides({"train.lr": 3e-3, "train.precision": "32-true", **overrides})


@pytest.fixture(scope="module")
def genomes(tmp_path_factory):
    """Genome ac uses only A and C, genome gt only G and T."""
    folder = tmp_path_factory.mktemp("genomes")
    write_fasta(folder / "ac.fa", {"ac1": two_letter(AC, 4000, 1)})
    write_fasta(folder / "gt.fa", {"gt1": two_letter(GT, 4000, 2)})
    return folder


@pytest.fixture(scope="module")
def tagged(genomes, tmp_path_factory):
    run = tmp_path_factory.mktemp("tagged")
    result = pretrain([genomes], tagged_config(), run, progress=False, say=lambda *_: None)
    return result, glm.load(result.model_dir, device="cpu")


def stores(genomes, tmp_path):
    return [prepare(e.path, KmerTokenizer(1), tmp_path, split="tail", progress=False) for e in read_corpus([genomes])]


def test_every_window_starts_with_its_genomes_token_the_same_on_one_and_two_processes(genomes, tmp_path) -> None:
    tokenizer = KmerTokenizer(1)
    found, tags = stores(genomes, tmp_path), [7, 8]  # ids after the tokenizer's 7
    rc = tokenizer.reverse_complement_table()
    one = TrainWindows(found, window=16, batch_size=4, seed=3, rc_table=rc, tags=tags).batch(5)["ids"]
    two = [
        TrainWindows(found, window=16, batch_size=2, seed=3, rank=rank, world_size=2, rc_table=rc, tags=tags)
        for rank in (0, 1)
    ]
    np.testing.assert_array_equal(one.numpy(), np.concatenate([part.batch(5)["ids"].numpy() for part in two]))
    plain = TrainWindows(found, window=16, batch_size=1, seed=0, tags=tags)
    letters = [set(tokenizer.encode(AC).ids.tolist()), set(tokenizer.encode(GT).ids.tolist())]
    seen = set()
    for step in range(50):
        genome, ids, masked = plain.window_of(step, 0)
        assert len(ids) == len(masked) == 16 and ids[0] == tags[genome] and masked[0] == 0
        assert set(ids[1:].tolist()) <= letters[genome]  # the other 15 come from that genome
        seen.add(genome)
    assert seen == {0, 1}


def test_tagged_validation_tiles_every_held_out_token_once_after_the_tag(genomes, tmp_path) -> None:
    store = stores(genomes, tmp_path)[0]
    windows = ValidationWindows(store, window=16, batch_size=3, max_windows=10_000, tag=9)
    batches = [batch["ids"].numpy() for batch in windows]
    assert all((batch[:, 0] == 9).all() and batch.shape[1] == 16 for batch in batches)
    targets = np.concatenate([row[1:] for batch in batches for row in batch])
    np.testing.assert_array_equal(targets[targets != 0], store.tokens("val"))  # all, in order, none twice


def test_a_tagged_model_conditions_on_its_genome_and_saves_its_tags(tagged) -> None:
    result, lm = tagged
    assert lm.genome_names == ["ac", "gt"]
    saved = json.loads((result.model_dir / "config.json").read_text())
    assert saved["genome_tokens"] == {"names": ["ac", "gt"], "first_id": 7, "genomes": {"ac": "ac", "gt": "gt"}}
    assert saved["model"]["vocab_size"] == 7 + 2  # the tokenizer's ids are unchanged; the tags come after
    assert all(bits < 1.3 for bits in result.val_bits_per_genome.values()), result.val_bits_per_genome
    sequence = two_letter(AC, 12, 5)
    right, wrong = lm.log_likelihood(sequence, genome_name="ac"), lm.log_likelihood(sequence, genome_name="gt")
    assert right.bases == wrong.bases == 12  # the tag is never scored
    # Told the right genome, its first base is one of two letters (~1 bit); told the other, it is a surprise.
    assert right.total > wrong.total + 2.0, (right, wrong)
    assert right.bits_per_base < 1.4
    assert not np.allclose(lm.embed(sequence, genome_name="ac"), lm.embed(sequence, genome_name="gt"))


def test_a_tagged_model_is_the_same_in_memory_and_reloaded_and_past_its_context(tagged) -> None:
    result, lm = tagged
    in_memory = glm.GenomicLM(result.model, lm.tokenizer, genome_tags=lm.genome_tags)
    long = two_letter(GT, 100, 6)  # past the 16-token context: sliding windows, each starting with the tag
    assert in_memory.log_likelihood(long, genome_name="gt").total == pytest.approx(
        lm.log_likelihood(long, genome_name="gt").total, rel=1e-5
    )
    assert lm.log_likelihood(long, genome_name="gt").bits_per_base < 1.4
    options = {"max_new_tokens": 40, "seed": 3, "genome_name": "ac"}  # 40 tokens outgrow the context twice
    sampled = lm.generate("ACCA", **options)
    assert sampled == lm.generate("ACCA", use_cache=False, **options) and len(sampled) == 40


def test_variant_scores_condition_on_the_genome(tagged, genomes) -> None:
    _, lm = tagged
    variants = [("ac1", 100, None, "G"), ("ac1", 2000, None, "T")]
    reference = (genomes / "ac.fa").read_text().split("\n", 1)[1].replace("\n", "")
    rows = [(chrom, pos, reference[pos - 1], alt) for chrom, pos, _, alt in variants]
    fast = lm.score_variants(rows, genomes / "ac.fa", genome_name="ac", window=12)
    naive = lm.score_variants(rows, genomes / "ac.fa", genome_name="ac", window=12, reuse=False)
    np.testing.assert_allclose(fast["llr"], naive["llr"], rtol=1e-4, atol=1e-4)  # the alt windows have the tag too
    assert (fast["llr"] < 0).all()  # a G or T in an A/C genome
    other = lm.score_variants(rows, genomes / "ac.fa", genome_name="gt", window=12)
    assert not np.allclose(fast["llr"], other["llr"])


def test_unknown_missing_and_unwanted_genome_names_are_one_line_errors(tagged, genomes) -> None:
    _, lm = tagged
    with pytest.raises(InputError, match="genome name 'yeast' is not one this model was trained with; known: ac, gt"):
        lm.log_likelihood("ACGT", genome_name="yeast")
    with pytest.raises(InputError, match=r"trained with genome tokens: give a genome name .* among ac, gt"):
        lm.embed("ACGT")
    with pytest.raises(InputError, match="genome name 'yeast' is not one"):
        lm.generate("ACGT", genome_name="yeast")
    untagged = glm.GenomicLM(lm.model, lm.tokenizer)
    with pytest.raises(InputError, match="'ac': this model was trained without genome tokens"):
        untagged.score_variants([("ac1", 5, "A", "C")], genomes / "ac.fa", genome_name="ac")


def test_groups_share_a_token_and_a_genome_name_finds_its_groups() -> None:
    tags = GenomeTags.build({"At": "plants", "Os": "plants", "Ce": "Ce"}, first_id=7)
    assert tags.names == ("plants", "Ce")
    assert [genome_token(tags, name) for name in ("At", "Os", "plants", "Ce")] == [7, 7, 7, 8]
    assert GenomeTags.from_dict(tags.to_dict(), "config.json") == tags
    with pytest.raises(InputError, match=r"known: plants, Ce \(or a genome of its groups: At, Os\)"):
        tags.id_of("Dm")
    with pytest.raises(
        InputError, match=r"config.json: genome_tokens\.names: expected a list of strings, got 'plants'"
    ):
        GenomeTags.from_dict({"names": "plants"}, "config.json")


def test_a_held_out_genome_needs_a_token_training_uses(genomes, tmp_path) -> None:
    config = tagged_config(**{"data.holdout_genomes": ["gt"]})
    with pytest.raises(InputError, match="'gt' would have a genome token that no training window uses"):
        pretrain([genomes], config, tmp_path / "run", progress=False, say=lambda *_: None)


def test_eval_uses_each_files_own_token(tagged, genomes, tmp_path, capsys) -> None:
    result, lm = tagged
    assert main(["eval", str(result.model_dir), str(genomes / "ac.fa"), str(genomes / "gt.fa"), "--quiet"]) == 0
    out = capsys.readouterr().out
    own = lm.evaluate(genomes / "gt.fa", progress=False, genome_name="gt")[-1][2]
    assert f"{own:.4f}" in out  # the gt file was scored with the gt token
    renamed = write_fasta(tmp_path / "other.fa", {"x": two_letter(AC, 200, 3)})
    assert main(["eval", str(result.model_dir), str(renamed), "--quiet"]) == 2
    assert "no genome token for this file's name 'other' (known: ac, gt); choose one with --genome-name" in (
        capsys.readouterr().err
    )
    assert main(["eval", str(result.model_dir), str(genomes / "ac.fa"), str(renamed)]) == 2
    assert capsys.readouterr().out == ""  # every file's name is checked before the first is evaluated
    assert main(["eval", str(result.model_dir), str(renamed), "--genome-name", "ac", "--quiet"]) == 0


def test_an_untagged_export_has_no_tags(genomes, tmp_path) -> None:
    config = tagged_config(**{"data.genome_tokens": False, "train.max_steps": 2, "train.val_every": 2})
    result = pretrain([genomes], config, tmp_path / "run", progress=False, say=lambda *_: None)
    assert "genome_tokens" not in json.loads((result.model_dir / "config.json").read_text())
    lm = glm.load(result.model_dir, device="cpu")
    assert lm.genome_names == [] and lm.model.config.vocab_size == 7


def test_probes_refuse_a_tagged_model_rather_than_embed_without_its_tag(tagged) -> None:
    from glm.heads.features import FeatureCache, FeatureSpec

    result, _ = tagged
    with pytest.raises(InputError, match="a probe on embeddings does not take a model trained with genome tokens"):
        FeatureCache(FeatureSpec(model=str(result.model_dir)))
