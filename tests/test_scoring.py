"""Zero-shot variant scoring: definition and sign, fast path = naive path, strand symmetry, edges, I/O, CLI."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
import torch
from conftest import DATA, ROOT, write_fasta

import cli
from glm.alphabet import reverse_complement
from glm.api import GenomicLM
from glm.config import ModelConfig
from glm.errors import InputError
from glm.io.genome import Genome
from glm.io.variant_readers import read_variants
from glm.io.variants import VariantList
from glm.model.checkpoint import export_model
from glm.model.tokenizers import ByteTokenizer, KmerTokenizer
from glm.model.transformer import Transformer
from glm.scoring import mutagenesis_matrix, score_variants
from glm.scoring.plan import make_plan
from glm.scoring.windows import ReverseStrand, mirror_variant, reference_windows
from glm.scoring.zero_shot import build_pairs

random.seed(11)
CONTIG = "".join(random.choice("ACGT") for _ in range(600))
VARIANTS = [  # (1-based pos, ref, alt): SNVs, an MNV, indels, both contig ends
    (1, CONTIG[0], "G" if CONTIG[0] != "G" else "T"),
    (2, CONTIG[1:3], CONTIG[1]),  # deletion of 1 base near the start
    (150, CONTIG[149], "A" if CONTIG[149] != "A" else "C"),
    (151, CONTIG[150], "T" if CONTIG[150] != "T" else "G"),
    (300, CONTIG[299:302], "GAT"),  # MNV (or partly unchanged)
    (310, CONTIG[309], CONTIG[309] + "ACGTA"),  # insertion of 5 bases
    (320, CONTIG[319:327], CONTIG[319]),  # deletion of 7 bases
    (598, CONTIG[597], CONTIG[597] + "GG"),  # insertion near the end
    (600, CONTIG[599], "C" if CONTIG[599] != "C" else "A"),  # the last base
]


def make_lm(k: int = 3, stride: int | None = None, context: int = 32, seed: int = 0) -> GenomicLM:
    torch.manual_seed(seed)
    tokenizer = KmerTokenizer(k, stride or k)
    config = ModelConfig(vocab_size=tokenizer.vocab_size, n_layers=2, n_heads=2, width=32, context=context)
    model = Transformer(config)
    with torch.no_grad():  # larger weights than the initialisation: scores far from 0, differences visible
        for parameter in model.parameters():
            parameter.mul_(4.0)
    return GenomicLM(model, tokenizer, batch_size=4)


@pytest.fixture(scope="module")
def lm() -> GenomicLM:
    return make_lm()


@pytest.fixture
def genome(tmp_path) -> Genome:
    return Genome(write_fasta(tmp_path / "genome.fa", {"chr1": CONTIG, "chrN": "N" * 200 + CONTIG[:60] + "N" * 200}))


def rows(variants=VARIANTS, chrom="chr1"):
    return [(chrom, pos, ref, alt) for pos, ref, alt in variants]


def test_llr_is_the_difference_of_window_log_likelihoods(lm, genome) -> None:
    """Definition and sign: llr_forward = log P(alt window) - log P(ref window), computed independently."""
    scores = lm.score_variants(rows(), genome, strands="forward")
    assert "llr_forward" not in scores.columns  # one strand: just llr
    window = 3 + 30 * 3
    for index, variant in enumerate(scores.variants):
        ref_window, alt_window, _ = reference_windows(variant, genome, window, 3, grid=window // 8 // 3 * 3)
        expected = lm.log_likelihood(alt_window).total - lm.log_likelihood(ref_window).total
        assert scores["llr"][index] == pytest.approx(expected, abs=1e-4)
    assert np.abs(scores["llr"]).max() > 0.05  # the model does tell these sequences apart


def test_alt_equal_to_ref_is_reported_and_the_passes_score_it_zero(lm, genome) -> None:
    same = [(pos, ref, ref) for pos, ref, _ in VARIANTS]
    scores = lm.score_variants(rows(same), genome, method=["llr", "embedding"])
    assert {variant.status for variant in scores.variants} == {"ALT equals REF: not a variant, nothing to score"}
    assert np.isnan(scores["llr"]).all()
    # Past the reader (a VariantList is scored as it is), an unchanged window scores exactly 0.
    unchecked = VariantList([dataclasses.replace(variant, status="") for variant in scores.variants])
    scores = lm.score_variants(unchecked, genome, method=["llr", "embedding"])
    assert np.all(scores["llr"] == 0.0)
    assert np.allclose(scores["embedding_l2"], 0.0, atol=1e-9)


@pytest.mark.parametrize("k, stride, batch_size", [(3, 3, 4), (3, 3, 1), (1, 1, 16), (4, 2, 3)])
def test_prefix_reuse_equals_naive(genome, k, stride, batch_size) -> None:
    lm = make_lm(k, stride)
    lm.batch_size = batch_size
    fast = lm.score_variants(rows(), genome, method=["llr", "embedding"])
    naive = score_variants(
        lm.model, lm.tokenizer, rows(), genome, method=["llr", "embedding"], batch_size=batch_size, reuse=False
    )
    for column in ("llr", "llr_forward", "llr_reverse", "embedding_cosine", "embedding_l2"):
        assert np.all(np.isfinite(fast[column]))
        np.testing.assert_allclose(fast[column], naive[column], rtol=0, atol=1e-5, err_msg=column)


def test_neighbouring_variants_share_reference_windows(lm, genome) -> None:
    """Windows snap to a grid of window/8 = 9 bases: the 3 same-phase positions of a cell share one window."""
    variants = read_variants(
        rows([(p, CONTIG[p - 1], "A" if CONTIG[p - 1] != "A" else "C") for p in range(200, 260)]), genome
    )
    plan = make_plan(lm.model, lm.tokenizer, window=93, strands="both")
    refs, pairs, statuses, _ = build_pairs(variants, genome, lm.tokenizer, plan)
    assert len(pairs) == 2 * len(variants) and not any(statuses)
    assert len(refs) <= 2 * (60 // 3 + 2)  # per strand: one window per 3 positions, +2 for partial cells


def test_strand_average_is_unchanged_by_reverse_complementing_everything(lm, genome, tmp_path) -> None:
    mirrored_genome = Genome(write_fasta(tmp_path / "rc.fa", {"chr1": reverse_complement(CONTIG)}))
    n = len(CONTIG)
    mirrored = [
        (n - pos - len(ref) + 2, reverse_complement(ref), reverse_complement(alt)) for pos, ref, alt in VARIANTS
    ]
    methods = ["llr", "embedding"]
    forward = lm.score_variants(rows(), genome, method=methods)
    backward = lm.score_variants(rows(mirrored), mirrored_genome, method=methods)
    for column in ("llr", "embedding_cosine", "embedding_l2"):
        np.testing.assert_allclose(forward[column], backward[column], atol=1e-5, err_msg=column)
    np.testing.assert_allclose(forward["llr_forward"], backward["llr_reverse"], atol=1e-5)
    assert np.abs(forward["llr_forward"] - forward["llr_reverse"]).max() > 1e-3  # the strands do differ


def test_reverse_strand_windows_mirror_the_forward_construction(genome) -> None:
    """Indel windows on both strands: equal lengths, the event inside, shared prefix before it."""
    reverse = ReverseStrand(genome)
    for variant in read_variants(rows(), genome):
        mirror = mirror_variant(variant, len(CONTIG))
        for view, oriented in ((genome, variant), (reverse, mirror)):
            ref_window, alt_window, offset = reference_windows(oriented, view, 93, 3, grid=9)
            assert len(ref_window) == len(alt_window) == 93
            assert offset % 3 == 0 or variant.pos < 50 or variant.pos > 550
            assert ref_window[offset : offset + len(oriented.ref)] == oriented.ref
            assert alt_window[:offset] == ref_window[:offset]
            assert alt_window[offset : offset + len(oriented.alt)] == oriented.alt[: 93 - offset]
        assert mirror.ref == reverse_complement(variant.ref)


def test_edges_n_windows_and_unscorable_rows(lm, genome) -> None:
    table = [
        ("chr1", 1, CONTIG[0], "A" if CONTIG[0] != "A" else "C"),
        ("chr1", 600, CONTIG[599], "A" if CONTIG[599] != "A" else "C"),
        ("chrN", 230, CONTIG[29], "A" if CONTIG[29] != "A" else "C"),  # in a 60-base island of N
        ("chr1", 100, CONTIG[99], "<DEL>"),
        ("chr1", 200, CONTIG[199], CONTIG[199] + "A" * 120),  # longer than the 93-base window
    ]
    scores = lm.score_variants(table, genome)
    assert np.isfinite(scores["llr"][:3]).all() and np.isnan(scores["llr"][3:]).all()
    assert scores["window_n"][2] > 0.3 and scores["window_n"][0] == 0
    assert "not supported" in scores.variants[3].status
    assert "indel longer than the scoring window" in scores.variants[4].status
    assert scores.variants[0].status == "" and [row["status"] for row in scores.rows()][4]


def test_vcf_output_rereads_to_the_same_scores(lm, genome, tmp_path) -> None:
    scores = lm.score_variants(rows(), genome, method=["llr", "embedding"])
    for name in ("out.vcf.gz", "out.tsv"):
        path = scores.write(tmp_path / name)
        again = read_variants(path, genome)
        assert [(v.pos, v.ref, v.alt) for v in again] == [(v.pos, v.ref, v.alt) for v in scores.variants]
        key = "GLM_LLR" if name.endswith("gz") else "llr"
        reread = np.array([float(v.fields[key]) for v in again])
        np.testing.assert_allclose(reread, scores["llr"], rtol=1e-7)


def test_errors_name_the_problem(lm, genome, tmp_path) -> None:
    with pytest.raises(InputError, match="REF"):
        lm.score_variants([("chr1", 5, "A" if CONTIG[4] != "A" else "C", "G")], genome)
    with pytest.raises(InputError, match="chr9"):
        lm.score_variants([("chr9", 5, "A", "G")], genome)
    with pytest.raises(InputError, match=r"past the end|beyond|length"):
        lm.score_variants([("chr1", 601, "A", "G")], genome)
    with pytest.raises(InputError, match="window: 200 bases does not fit"):
        lm.score_variants(rows(), genome, window=200)
    with pytest.raises(InputError, match="method"):
        lm.score_variants(rows(), genome, method="likelihood")
    text_lm = GenomicLM(lm.model, ByteTokenizer())
    with pytest.raises(InputError, match="DNA model"):
        text_lm.score_variants(rows(), genome)
    bad = tmp_path / "bad.vcf"
    bad.write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\nchr1\tten\t.\tA\tG\t.\t.\t.\n")
    with pytest.raises(InputError, match=r"bad\.vcf:3"):
        lm.score_variants(bad, genome)


def test_mutagenesis_scores_every_snv(lm, genome) -> None:
    scores = lm.mutagenesis(genome, "chr1:101-130")
    assert len(scores) == 90 and not any(v.status for v in scores.variants)
    positions, reference, matrix = mutagenesis_matrix(scores)
    assert positions[0] == 101 and positions[-1] == 130 and reference == CONTIG[100:130]
    assert matrix.shape == (30, 4) and np.isnan(matrix).sum() == 30  # the reference base of each position
    variant = scores.variants[0]
    assert matrix[0, "ACGT".index(variant.alt)] == scores["llr"][0]
    with pytest.raises(InputError, match="unknown contig"):
        lm.mutagenesis(genome, "chr7:1-10")
    with pytest.raises(InputError, match="within 1-600"):
        lm.mutagenesis(genome, "chr1:500-700")


@pytest.fixture
def model_dir(lm, tmp_path):
    return export_model(tmp_path / "model", lm.model, lm.tokenizer)


def test_cli_score_and_mutagenesis(model_dir, genome, tmp_path, capsys) -> None:
    table = tmp_path / "variants.tsv"
    table.write_text("chrom\tpos\tref\talt\tnote\n" + "".join(f"chr1\t{p}\t{r}\t{a}\tx{p}\n" for p, r, a in VARIANTS))
    out = tmp_path / "scores.vcf"
    argv = ["score", str(model_dir), "--genome", str(genome.path), "--variants", str(table), "--out", str(out)]
    assert cli.main([*argv, "--quiet", "--method", "llr", "--method", "embedding"]) == 0
    assert f"9 of 9 variants scored -> {out}" in capsys.readouterr().out
    header = [line for line in out.read_text().splitlines() if line.startswith("##INFO=<ID=GLM_LLR,")]
    assert header and "negative = alt less likely" in header[0]
    assert len(read_variants(out, genome)) == 9

    table.write_text("chrom\tpos\tref\talt\nchr1\t5\tN\tA\n")
    assert cli.main([*argv, "--quiet"]) == 2
    assert "variants.tsv" in capsys.readouterr().err

    prefix = tmp_path / "tl1"
    argv = ["mutagenesis", str(model_dir), "--genome", str(genome.path), "--region", "chr1:11-40", "--out", str(prefix)]
    assert cli.main([*argv, "--quiet"]) == 0
    assert (tmp_path / "tl1.png").stat().st_size > 10_000
    assert len((tmp_path / "tl1.tsv").read_text().splitlines()) == 1 + 90


def test_real_mitomap_vcf_with_alias(lm) -> None:
    mt = Genome(DATA / "MT-human.fa")
    scores = lm.score_variants(DATA / "mitomap_confirmed_mutations.vcf.gz", mt, aliases={"MT": "MT_human"})
    assert len(scores) >= 117 and np.isfinite(scores["llr"]).sum() >= 100


def test_table_rows_and_pandas(lm, genome) -> None:
    scores = lm.score_variants([("chr1", 150, CONTIG[149], "A" if CONTIG[149] != "A" else "C", "rs1")], genome)
    row = scores.rows()[0]
    assert (row["chrom"], row["pos"], row["ref"], row["column5"], row["status"]) == (
        "chr1",
        150,
        CONTIG[149],
        "rs1",
        "",
    )
    assert row["llr"] == scores["llr"][0] == pytest.approx((row["llr_forward"] + row["llr_reverse"]) / 2)
    pandas = pytest.importorskip("pandas")
    frame = scores.to_pandas()
    assert isinstance(frame, pandas.DataFrame) and list(frame["pos"]) == [150]


def test_a_misspelt_scoring_option_is_named(tmp_path) -> None:
    from glm.api import load

    lm = load(ROOT / "tests" / "data" / "model_format1", device="cpu")
    with pytest.raises(InputError, match=r"unknown scoring option\(s\) \['strand'\]; known: .*strands"):
        lm.score_variants([("NC_001422.1", 2, "A", "C")], DATA / "phiX174.fa", strand="both")


def test_the_typed_scoring_options_are_make_plans_keywords() -> None:
    """ScoringOptions (what editors and type checkers see) lists make_plan's keyword-only parameters, types too."""
    import inspect

    from glm.errors import keyword_options
    from glm.scoring.plan import ScoringOptions, options_of

    parameters = inspect.signature(make_plan).parameters
    assert keyword_options(make_plan) == list(ScoringOptions.__annotations__)
    assert "window" in keyword_options(make_plan) and "model" not in keyword_options(make_plan)
    for name, annotation in ScoringOptions.__annotations__.items():  # forward references: compare the text
        assert parameters[name].annotation == getattr(annotation, "__forward_arg__", annotation), name
    assert options_of({"window": 93, "strands": "forward"}) == {"window": 93, "strands": "forward"}
    with pytest.raises(InputError, match=r"unknown scoring option\(s\) \['windows'\]"):
        options_of({"windows": 93})
