"""Variant heads: features from the model, grouped CV, safe save/load, applied by `score --head`."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from conftest import write_fasta

import cli
from glm.api import GenomicLM
from glm.config import ModelConfig
from glm.errors import InputError
from glm.heads.probes import Head
from glm.heads import variant_heads
from glm.heads.settings import VariantHeadSettings
from glm.heads.variant_heads import fit_variant_head
from glm.model.checkpoint import export_model, model_fingerprint
from glm.model.tokenizers import KmerTokenizer
from glm.model.transformer import Transformer
from glm.scoring import FEATURE_SCORES, variant_features
from glm.scoring.windows import default_window

_DRAW = random.Random(5)
CONTIG = "".join(_DRAW.choice("ACGT") for _ in range(900))


def make_lm(seed: int) -> GenomicLM:
    torch.manual_seed(seed)
    tokenizer = KmerTokenizer(3)
    model = Transformer(ModelConfig(vocab_size=tokenizer.vocab_size, n_layers=2, n_heads=2, width=32, context=24))
    return GenomicLM(model, tokenizer, batch_size=8)


@pytest.fixture(scope="module")
def lm() -> GenomicLM:
    return make_lm(0)


@pytest.fixture
def labelled(tmp_path):
    """210 SNVs; the planted label: the alternative base is G or C ("gain"), else "other". Block = position // 100.

    Baseline columns: `planted` is 1 exactly for "other", `noise` is random and missing ('.') every 10th row.
    """
    genome = write_fasta(tmp_path / "genome.fa", {"chr1": CONTIG})
    lines = ["chrom\tpos\tref\talt\tlabel\tblock\tplanted\tnoise"]
    draw = random.Random(3)  # its own generator: the same table whatever ran before
    for row, pos in enumerate(range(40, 880, 4)):
        ref = CONTIG[pos - 1]
        alt = draw.choice([base for base in "ACGT" if base != ref])
        label = "gain" if alt in "GC" else "other"
        noise = "." if row % 10 == 0 else f"{draw.random():.4f}"
        lines.append(f"chr1\t{pos}\t{ref}\t{alt}\t{label}\t{pos // 100}\t{int(label == 'other')}\t{noise}")
    table = tmp_path / "labelled.tsv"
    table.write_text("\n".join(lines) + "\n")
    return table, genome


def test_features_are_the_scores_and_the_embedding_delta(lm, labelled) -> None:
    table, genome = labelled
    features, names, _variants = variant_features(lm.model, lm.tokenizer, table, genome)
    assert names[:5] == list(FEATURE_SCORES) and len(names) == features.shape[1] == 5 + 32
    scores = lm.score_variants(table, genome, method=["llr", "embedding"])
    np.testing.assert_allclose(features[:, 2], scores["llr"], atol=1e-9)
    np.testing.assert_allclose(features[:, :2].mean(axis=1), features[:, 2], atol=1e-12)
    np.testing.assert_allclose(features[:, 3], scores["embedding_cosine"], atol=1e-9)


def test_grouped_head_learns_the_planted_label_and_round_trips(lm, labelled, tmp_path) -> None:
    table, genome = labelled
    report = fit_variant_head(
        lm.model, lm.tokenizer, table, genome, VariantHeadSettings(label="label", group="block"), out=tmp_path / "h"
    )
    groups = [variant.fields["block"] for variant in report.used]
    for group in set(groups):  # each block sits in exactly one test fold
        assert len({fold for g, fold in zip(groups, report.cv.folds) if g == group}) == 1
    assert report.cv.metrics["auroc"] > 0.85 and report.head.classes == ["gain", "other"]
    assert (tmp_path / "h" / "roc.png").stat().st_size > 5_000
    assert len((tmp_path / "h" / "cross_validation.tsv").read_text().splitlines()) == 1 + len(report.used)

    reloaded = Head.load(tmp_path / "h")
    features, _, _ = variant_features(lm.model, lm.tokenizer, table, genome)
    np.testing.assert_array_equal(reloaded.predict_proba(features), report.head.predict_proba(features))
    scores = lm.score_variants(table, genome, head=tmp_path / "h")
    np.testing.assert_allclose(scores["head_probability"], reloaded.predict_proba(features)[:, 1], atol=1e-6)


def test_shuffled_labels_stay_near_chance(lm, labelled, tmp_path) -> None:
    table, genome = labelled
    lines = table.read_text().splitlines()
    labels = [line.split("\t")[4] for line in lines[1:]]
    random.Random(1).shuffle(labels)
    table.write_text(
        "\n".join(
            [lines[0]]
            + ["\t".join([*line.split("\t")[:4], lab, *line.split("\t")[5:]]) for line, lab in zip(lines[1:], labels)]
        )
        + "\n"
    )
    report = fit_variant_head(lm.model, lm.tokenizer, table, genome, VariantHeadSettings(label="label", group="block"))
    assert 0.3 < report.cv.metrics["auroc"] < 0.7


def test_head_refuses_another_model_and_bad_labels(lm, labelled, tmp_path) -> None:
    table, genome = labelled
    fit_variant_head(lm.model, lm.tokenizer, table, genome, VariantHeadSettings(label="label"), out=tmp_path / "h")
    with pytest.raises(InputError, match="different model"):
        make_lm(1).score_variants(table, genome, head=tmp_path / "h")
    with pytest.raises(InputError, match="window: this head was fitted"):
        lm.score_variants(table, genome, head=tmp_path / "h", window=30)
    with pytest.raises(InputError, match=r"labelled\.tsv:2: label column 'class': missing"):
        fit_variant_head(lm.model, lm.tokenizer, table, genome, VariantHeadSettings(label="class"))
    with pytest.raises(InputError, match=r"labelled\.tsv:2: baseline column 'CADD' not found"):
        settings = VariantHeadSettings(label="label", baselines=["CADD"], bootstrap_rounds=10)
        fit_variant_head(lm.model, lm.tokenizer, table, genome, settings)
    with pytest.raises(InputError, match=r"labelled\.tsv:2: baseline column 'block': not a number: 'b0'"):
        table.write_text(table.read_text().replace("\t0\t", "\tb0\t", 1))
        settings = VariantHeadSettings(label="label", baselines=["block"], bootstrap_rounds=10)
        fit_variant_head(lm.model, lm.tokenizer, table, genome, settings)


def test_too_few_groups_for_the_folds_is_an_error_before_any_feature(lm, labelled, monkeypatch) -> None:
    table, genome = labelled
    monkeypatch.setattr(variant_heads, "variant_features", lambda *a, **k: pytest.fail("features before the error"))
    with pytest.raises(InputError, match="9 distinct groups, fewer than the 10 folds"):
        fit_variant_head(
            lm.model, lm.tokenizer, table, genome, VariantHeadSettings(label="label", group="block", folds=10)
        )


def test_cli_fit_head_then_score_with_it(lm, labelled, tmp_path, capsys) -> None:
    table, genome = labelled
    model = export_model(tmp_path / "model", lm.model, lm.tokenizer)
    common = [str(model), "--genome", str(genome), "--variants", str(table), "--quiet"]
    options = ["--label", "label", "--group", "block", "--baseline", "planted", "--baseline=-noise"]
    assert cli.main(["fit-head", *common, *options, "--out", str(tmp_path / "h")]) == 0
    printed = capsys.readouterr().out
    assert "grouped by block" in printed and "head - planted: AUROC" in printed and "AUROC per fold" in printed
    metrics = json.loads((tmp_path / "h" / "metrics.json").read_text())
    low, high = metrics["intervals"]["auroc"]
    assert low <= metrics["metrics"]["auroc"] <= high < 1 and len(metrics["fold_metrics"]) == 5
    planted, noise = metrics["baselines"]["planted"], metrics["baselines"]["-noise"]
    assert (
        planted["rows"] == 210
        and planted["baseline"]["auroc"] == 1
        and planted["baseline"]["intervals"]["auroc"] == [1, 1]
    )
    difference, low, high = planted["difference"]["auroc"]
    assert difference == pytest.approx(metrics["metrics"]["auroc"] - 1) and low <= difference <= high < 0
    assert (
        noise["rows"] == 189
        and noise["baseline"]["intervals"]["auroc"][0] < 0.5 < noise["baseline"]["intervals"]["auroc"][1]
    )
    assert cli.main(["score", *common, "--head", str(tmp_path / "h"), "--out", str(tmp_path / "s.tsv")]) == 0
    header = (tmp_path / "s.tsv").read_text().splitlines()[0].split("\t")
    assert "head_probability" in header and "llr" in header


def test_scores_only_head(lm, labelled, tmp_path) -> None:
    table, genome = labelled
    report = fit_variant_head(
        lm.model, lm.tokenizer, table, genome, VariantHeadSettings(label="label", features="scores"), out=tmp_path / "h"
    )
    assert report.head.feature_names == list(FEATURE_SCORES) and report.head.info["features"] == "scores"
    features, _, _ = variant_features(lm.model, lm.tokenizer, table, genome)
    scores = lm.score_variants(table, genome, head=tmp_path / "h")
    np.testing.assert_allclose(scores["head_probability"], report.head.predict_proba(features[:, :5])[:, 1], atol=1e-6)
    with pytest.raises(InputError, match="features must be one of all, scores"):
        fit_variant_head(lm.model, lm.tokenizer, table, genome, VariantHeadSettings(label="label", features="deltas"))


def test_scoring_gives_a_head_its_features_by_name(lm, labelled) -> None:
    table, genome = labelled
    features, names, _ = variant_features(lm.model, lm.tokenizer, table, genome)
    window = default_window(lm.model, lm.tokenizer)
    info = {"task": "variant", "model_fingerprint": model_fingerprint(lm.model), "window": window, "layer": -1}
    arrays = {"mean": np.zeros(2), "scale": np.ones(2), "coef": np.array([[1.0, -2.0]]), "intercept": np.zeros(1)}
    head = Head("logistic", ["other", "gain"], ["embedding_l2", "llr"], arrays, info)  # not scoring's order
    scores = lm.score_variants(table, genome, head=head)
    expected = head.predict_proba(features[:, [names.index("embedding_l2"), names.index("llr")]])[:, 1]
    np.testing.assert_allclose(scores["head_probability"], expected, atol=1e-6)
    stray = Head("logistic", ["other", "gain"], ["embedding_l2", "phyloP"], arrays, info)
    with pytest.raises(InputError, match="head: reads features that scoring does not compute: phyloP"):
        lm.score_variants(table, genome, head=stray)
