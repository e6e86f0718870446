"""Embeddings for users, sequence classifiers (probe and fine-tuned), their CLI, and bad input."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import PNG, ROOT, write_fasta

import cli
from glm.alphabet import reverse_complement
from glm.api import GenomicLM
from glm.config import FinetuneConfig, ModelConfig, TrainConfig
from glm.errors import InputError
from glm.heads.classifiers import load_classifier
from glm.heads.evaluation import compare_layers, cross_validate
from glm.heads.features import FeatureSpec, kmer_features
from glm.heads.sequence_tasks import ProbeFitter, fit_classifier, fit_classifier_seeds
from glm.io.sequences import SequenceSet, read_sequences
from glm.model.checkpoint import export_model
from glm.model.tokenizers import KmerTokenizer
from glm.model.transformer import Transformer
from glm.plots import read_training_curves
from glm.training.finetune import FinetuneFitter, finetune

MOTIF = "GGGGGGGGGGGGGGGG"  # 16 G: easy to see in pooled states, absent by chance from random 48-mers


def tiny_lm(k: int = 1, context: int = 64, seed: int = 0) -> GenomicLM:
    """An untrained 2-layer, width-32 model: embeddings are deterministic functions of the input."""
    tokenizer = KmerTokenizer(k)
    torch.manual_seed(seed)
    config = ModelConfig(vocab_size=tokenizer.vocab_size, n_layers=2, n_heads=2, width=32, context=context)
    return GenomicLM(Transformer(config).eval(), tokenizer)


@pytest.fixture
def model_dir(tmp_path) -> Path:
    lm = tiny_lm()
    return export_model(tmp_path / "model", lm.model, lm.tokenizer)


def motif_task(n: int = 160, length: int = 48, seed: int = 0) -> SequenceSet:
    """Random sequences; class 'motif' has MOTIF planted at a random position, class 'none' does not."""
    rng = np.random.default_rng(seed)
    sequences, labels = [], []
    for row in range(n):
        bases = "".join(rng.choice(list("ACGT"), size=length))
        if row % 2:
            at = int(rng.integers(0, length - len(MOTIF)))
            bases = bases[:at] + MOTIF + bases[at + len(MOTIF) :]
        sequences.append(bases)
        labels.append("motif" if row % 2 else "none")
    names = [f"s{row}" for row in range(n)]
    return SequenceSet(names, sequences, labels, [f"synthetic:{row}" for row in range(n)])


def write_table(path: Path, sequences: SequenceSet, delimiter: str = ",") -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(["sequence", "label"])
        writer.writerows(zip(sequences.sequences, sequences.labels))
    return path


# ---------------------------------------------------------------- embeddings


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("pooling", ["mean", "max", "last"])
def test_strand_averaged_embeddings_of_reverse_complements_agree(k: int, pooling: str) -> None:
    lm = tiny_lm(k=k)
    sequences = ["ACGTTGCAAGGCTTAAGCTAGGATCCA", "GATTACAGATTACAGGG"]
    both = lm.embed(sequences, pooling=pooling, strands="both")
    flipped = lm.embed([reverse_complement(s) for s in sequences], pooling=pooling, strands="both")
    np.testing.assert_allclose(both, flipped, rtol=0, atol=1e-6)
    forward = lm.embed(sequences, pooling=pooling)
    assert not np.allclose(forward, lm.embed([reverse_complement(s) for s in sequences], pooling=pooling))


def test_sliding_windows_equal_direct_embedding_when_the_sequence_fits() -> None:
    lm = tiny_lm(context=64)
    sequence = "".join(np.random.default_rng(0).choice(list("ACGT"), size=60))  # 61 tokens with SEP: fits
    ids = torch.from_numpy(lm.encode(sequence)[1][None, :])
    with torch.no_grad():
        states = lm.model.hidden_states(ids)[-1][0, 1:].numpy()  # drop the leading SEP
    np.testing.assert_allclose(lm.embed(sequence, pooling="mean"), states.mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(lm.embed(sequence, pooling="max"), states.max(axis=0), atol=1e-5)
    np.testing.assert_allclose(lm.embed(sequence, pooling="last"), states[-1], atol=1e-5)


def test_sliding_windows_on_a_long_sequence_cover_every_token_once() -> None:
    lm = tiny_lm(context=32)
    sequence = "".join(np.random.default_rng(1).choice(list("ACGT"), size=500))  # 16 windows of 33 tokens
    # Layer 0 (token embeddings) does not depend on context, so windowed mean pooling must equal
    # the mean over all tokens exactly when every token is counted once.
    table = lm.model.embedding.weight.detach().numpy()
    expected = table[lm.encode(sequence)[1][1:]].mean(axis=0)
    np.testing.assert_allclose(lm.embed(sequence, layer=0, pooling="mean"), expected, atol=1e-6)
    # Deeper layers: finite, and the same whatever the batching of windows.
    final = lm.embed([sequence, "ACGT"], pooling="mean")
    lm.batch_size = 3
    np.testing.assert_allclose(lm.embed([sequence, "ACGT"], pooling="mean"), final, atol=1e-5)
    assert np.isfinite(final).all()


def test_embed_rejects_unknown_options() -> None:
    lm = tiny_lm()
    with pytest.raises(InputError, match="strands must be one of forward, both"):
        lm.embed("ACGT", strands="reverse")


def test_cli_embed_writes_array_and_names(tmp_path, model_dir) -> None:
    fasta = write_fasta(tmp_path / "in.fa", {"a": "ACGTACGTAAGG", "b": "TTTTGGGGCCCCAAAA" * 10})
    assert (
        cli.main(["embed", str(model_dir), "--fasta", str(fasta), "--out", str(tmp_path / "emb.npy"), "--quiet"]) == 0
    )
    embeddings = np.load(tmp_path / "emb.npy")
    lm = GenomicLM.load(model_dir, device="cpu")
    np.testing.assert_allclose(
        embeddings, lm.embed(["ACGTACGTAAGG", "TTTTGGGGCCCCAAAA" * 10], strands="both"), atol=1e-6
    )
    assert (tmp_path / "emb.names.tsv").read_text().splitlines() == ["index\tname", "0\ta", "1\tb"]


# ---------------------------------------------------------------- probes and fine-tuning


def test_probe_finds_a_planted_motif_and_not_shuffled_labels() -> None:
    task = motif_task()
    features = tiny_lm().embed(task.sequences, pooling="mean", strands="forward")
    found = cross_validate(features, task.labels, folds=4)
    assert found.metrics["accuracy"] > 0.95 and found.metrics["auroc"] > 0.98
    shuffled = cross_validate(features, np.random.default_rng(0).permutation(task.labels), folds=4)
    assert abs(shuffled.metrics["auroc"] - 0.5) < 0.15


def test_compare_layers_scores_every_layer() -> None:
    task = motif_task(n=80)
    scores = compare_layers(tiny_lm(), task.sequences, task.labels, folds=4)
    assert [score.layer for score in scores] == [0, 1, 2]
    assert all(score.metrics["auroc"] > 0.9 for score in scores)


def test_compare_layers_checks_its_arguments_before_embedding(monkeypatch) -> None:
    lm, task = tiny_lm(), motif_task(n=8)
    monkeypatch.setattr(lm, "embed", lambda *args, **kwargs: pytest.fail("embedded before the argument error"))
    with pytest.raises(InputError, match="fewer than the 5 folds"):
        compare_layers(lm, task.sequences, task.labels, folds=5)
    with pytest.raises(InputError, match="layer"):
        compare_layers(lm, task.sequences, task.labels, layers=[0, 9], folds=2)
    with pytest.raises(InputError, match="probe kind"):
        compare_layers(lm, task.sequences, task.labels, kind="forest", folds=2)  # type: ignore[arg-type]


def test_kmer_features_count_frequencies() -> None:
    features, names = kmer_features(["AACN", "GT"], k=2)
    assert names[:4] == ["A", "C", "G", "T"] and names[4:6] == ["AA", "AC"] and len(names) == 20
    np.testing.assert_allclose(features[0, :4], [2 / 3, 1 / 3, 0, 0])  # N is not a base
    np.testing.assert_allclose(features[0, 4:6], [0.5, 0.5])  # AA, AC; "CN" is not counted
    np.testing.assert_allclose(features[1, names.index("GT")], 1.0)


def test_probe_classifier_saves_and_reloads_to_identical_predictions(tmp_path, model_dir) -> None:
    task = motif_task(n=120)
    train, test = task.subset(range(80)), task.subset(range(80, 120))
    fitter = ProbeFitter(FeatureSpec("embedding", str(model_dir)), progress=False, say=lambda *_: None)
    results = fit_classifier(train, tmp_path / "out", fitter, test=test, progress=False, say=lambda *_: None)
    assert results["test"]["accuracy"] > 0.9
    assert {"metrics.json", "head", "test_predictions.tsv", "test_roc.png", "test_confusion.png"} <= {
        p.name for p in (tmp_path / "out").iterdir()
    }
    loaded = load_classifier(tmp_path / "out")
    written = np.loadtxt(tmp_path / "out" / "test_predictions.tsv", delimiter="\t", skiprows=1, usecols=(3, 4))
    np.testing.assert_allclose(loaded.predict_proba(test.sequences), written, rtol=1e-5)


def test_finetuning_improves_dev_accuracy_and_reloads(tmp_path, model_dir) -> None:
    task = motif_task(n=240, seed=1)
    train, dev = task.subset(range(160)), task.subset(range(160, 240))
    before = load_probe_free_accuracy(model_dir, dev)
    training = TrainConfig(lr=3e-3, max_steps=60, val_every=20, precision="32-true", warmup_steps=5)
    fitter = FinetuneFitter(model_dir, FinetuneConfig(patience=10, train=training), tmp_path / "out", progress=False)
    results = fit_classifier(train, tmp_path / "out", fitter, dev=dev, progress=False, say=lambda *_: None)
    assert results["dev"]["accuracy"] > max(before + 0.2, 0.85)
    loaded = load_classifier(tmp_path / "out" / "head")
    assert loaded.classes == ["motif", "none"] and (tmp_path / "out" / "head" / "model" / "model.safetensors").exists()
    written = np.loadtxt(tmp_path / "out" / "dev_predictions.tsv", delimiter="\t", skiprows=1, usecols=(3, 4))
    np.testing.assert_allclose(loaded.predict_proba(dev.sequences), written, rtol=1e-5)
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["method"] == "fine-tuned" and metrics["head_info"]["steps"] <= 60
    curves = read_training_curves(tmp_path / "out" / "finetune" / "final")  # bits per dev sequence vs sequences seen
    assert metrics["head_info"]["curves"] == str(tmp_path / "out" / "finetune" / "final" / "curves.png")
    assert (tmp_path / "out" / "finetune" / "final" / "curves.png").read_bytes()[:8] == PNG
    assert curves.unit == "sequence" and curves.train.x[0] == training.log_every * training.batch_size


def test_a_finetune_shorter_than_val_every_validates_at_its_end(tmp_path, model_dir) -> None:
    task = motif_task(n=48, seed=2)
    training = TrainConfig(max_steps=6, val_every=100, batch_size=8, precision="32-true")  # warmup 50 -> 1
    options = FinetuneConfig(train=training)
    classes = ["motif", "none"]
    run = tmp_path / "run"
    classifier = finetune(model_dir, task.subset(range(32)), task.subset(range(32, 48)), classes, run, options, False)
    assert classifier.info["steps"] == 6 and math.isfinite(classifier.info["best_dev_bits_per_sequence"])
    assert (run / "checkpoints" / "best.ckpt").exists()


def load_probe_free_accuracy(model_dir: Path, dev: SequenceSet) -> float:
    """Dev accuracy of the untrained network: the majority share, about 0.5 here."""
    from glm.heads.classifiers import SequenceClassifierNet, encode_batch

    lm = GenomicLM.load(model_dir, device="cpu")
    torch.manual_seed(0)
    net = SequenceClassifierNet(lm.model, 2).eval()
    with torch.no_grad():
        predicted = net(encode_batch(lm.tokenizer, dev.sequences, lm.context)).argmax(dim=1).numpy()
    return float((np.array(["motif", "none"])[predicted] == np.array(dev.labels)).mean())


def test_cli_fit_classifier_cross_validates_and_classify_applies(tmp_path, model_dir) -> None:
    task = motif_task(n=100)
    table = write_table(tmp_path / "train.tsv", task, delimiter="\t")
    out = tmp_path / "kmer"
    assert cli.main(["fit-classifier", "--features", "kmer", "--train", str(table), "--out", str(out), "--quiet"]) == 0
    cv = json.loads((out / "metrics.json").read_text())["cv"]
    assert cv["folds"] == 5 and cv["auroc"] > 0.95 and len(cv["fold_metrics"]) == 5
    for name in ("auroc", "auprc", "mcc"):
        assert cv["intervals"][name][0] <= cv[name] <= cv["intervals"][name][1]
    fasta = write_fasta(tmp_path / "new.fa", {"plain": "ACGT" * 12, "motif": "ACGT" * 4 + MOTIF + "ACGT" * 4})
    assert cli.main(["classify", str(out), "--input", str(fasta), "--out", str(tmp_path / "p.tsv"), "--quiet"]) == 0
    rows = [line.split("\t") for line in (tmp_path / "p.tsv").read_text().splitlines()]
    assert rows[0] == ["name", "predicted", "p_motif", "p_none"]
    assert [row[:2] for row in rows[1:]] == [["plain", "none"], ["motif", "motif"]]


def test_fasta_per_class_inputs_and_to_fasta(tmp_path) -> None:
    task = motif_task(n=20)
    positives = {f"gene{i % 3}": s for i, s in enumerate(task.sequences) if i % 2}  # repeated names are fine
    write_fasta(tmp_path / "pos.fa", {f"gene{i}": s for i, s in enumerate(task.sequences[1::2])})
    write_fasta(tmp_path / "neg.fa", {f"gene{i}": s for i, s in enumerate(task.sequences[::2])})
    both = read_sequences([f"motif={tmp_path / 'pos.fa'}", f"none={tmp_path / 'neg.fa'}"], labelled=True)
    assert both.labels == ["motif"] * 10 + ["none"] * 10 and both.names[0] == "gene0" == both.names[10]
    assert positives
    table = write_table(tmp_path / "t.csv", task)
    assert cli.main(["to-fasta", "--input", str(table), "--out", str(tmp_path / "t.fa")]) == 0
    lines = (tmp_path / "t.fa").read_text().splitlines()
    assert lines[:2] == [">t_1", task.sequences[0]] and len(lines) == 40


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("sequence,label\nACGT,a\nACGT\n", r"t.csv:3: expected 2 fields \(','-separated\), found 1"),
        ("sequence,label\nACGT,a\nACXT,b\n", r"t.csv:3: sequence: invalid character 'X' \(position 3\)"),
        ("sequence,label\nACGT,a\n,b\n", r"t.csv:3: sequence: empty"),
        ("sequence,label\nACGT,a\r\nACGT,\r\n", r"t.csv:3: label: empty"),
        ("seq,label\nACGT,a\n", r"t.csv:1: header: no 'sequence' column"),
        ("", r"t.csv: empty file"),
    ],
)
def test_malformed_tables_name_file_and_line(tmp_path, content: str, message: str) -> None:
    (tmp_path / "t.csv").write_bytes(content.encode())
    with pytest.raises(InputError, match=message):
        read_sequences(tmp_path / "t.csv", labelled=True)


def test_unknown_test_labels_and_empty_classes_are_clear_errors(tmp_path, capsys) -> None:
    task = motif_task(n=20)
    train = write_table(tmp_path / "train.csv", task)
    (tmp_path / "test.csv").write_text("sequence,label\nACGTACGT,motif\nACGTTTTT,maybe\n")
    code = cli.main(
        ["fit-classifier", "--features", "kmer", "--train", str(train), "--test", str(tmp_path / "test.csv"),
         "--out", str(tmp_path / "o")]
    )  # fmt: skip
    assert (
        code == 2 and "test.csv:3: test label 'maybe' is not a training class (motif, none)" in capsys.readouterr().err
    )
    (tmp_path / "empty.fa").write_text("")
    with pytest.raises(InputError, match=r"empty.fa: empty file"):
        read_sequences([f"a={tmp_path / 'empty.fa'}"], labelled=True)
    only_one = write_table(tmp_path / "one.csv", task.subset(range(0, 20, 2)))
    code = cli.main(["fit-classifier", "--features", "kmer", "--train", str(only_one), "--out", str(tmp_path / "o")])
    assert code == 2 and "need at least two classes, found only 'none'" in capsys.readouterr().err
    with pytest.raises(InputError, match="no labels"):
        read_sequences(write_fasta(tmp_path / "x.fa", {"a": "ACGT"}), labelled=True)


@pytest.mark.parametrize(
    ("name", "rows", "classes"),
    [("prom_300_tata/train.csv.gz", 4904, ["0", "1"]), ("uci_splice_junctions.tsv.gz", 3190, ["EI", "IE", "N"])],
)
def test_shipped_classification_sets_read(name: str, rows: int, classes: list[str]) -> None:
    sequences = read_sequences(ROOT / "data" / name, labelled=True)
    assert len(sequences) == rows and sorted(set(sequences.labels)) == classes
    assert len(set(map(len, sequences.sequences))) == 1  # one length per set: 300 and 60


def test_fit_classifier_with_several_seeds_reports_each_and_their_spread(tmp_path, capsys) -> None:
    table = write_table(tmp_path / "train.tsv", motif_task(n=80), delimiter="\t")
    out = tmp_path / "seeds"
    command = ["fit-classifier", "--features", "kmer", "--train", str(table), "--out", str(out), "--quiet"]
    assert cli.main([*command, "--seed", "4", "--seeds", "2", "--folds", "3"]) == 0
    per_seed = [json.loads((out / f"seed_{s}" / "metrics.json").read_text())["cv"]["auroc"] for s in (4, 5)]
    spread = json.loads((out / "seeds.json").read_text())
    assert spread["seeds"] == [4, 5] and spread["cv"]["auroc"]["per_seed"] == per_seed
    assert spread["cv"]["auroc"]["mean"] == pytest.approx(np.mean(per_seed))
    assert spread["cv"]["auroc"]["sd"] == pytest.approx(np.std(per_seed, ddof=1))
    assert "cv over 2 seeds: AUROC" in capsys.readouterr().out
    assert (out / "seed_5" / "head").is_dir() and not (out / "head").exists()


def test_fit_classifier_seeds_from_python_builds_one_fitter_per_seed(tmp_path) -> None:
    task = motif_task(n=60)
    made = []

    def fitter_for(seed: int, run: Path) -> ProbeFitter:
        made.append((seed, run))
        return ProbeFitter(FeatureSpec("kmer", k=2), seed=seed, progress=False, say=lambda *_: None)

    one = fit_classifier_seeds(task, tmp_path / "one", fitter_for, [7], folds=3, progress=False, say=lambda *_: None)
    assert made == [(7, tmp_path / "one")] and one.spread is None and (tmp_path / "one" / "head").is_dir()
    assert not (tmp_path / "one" / "seeds.json").exists()
    with pytest.raises(InputError, match="at least one seed"):
        fit_classifier_seeds(task, tmp_path / "none", fitter_for, [], folds=3)
