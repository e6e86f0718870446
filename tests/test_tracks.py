"""Per-base tracks: k-mer marginals against brute force, llr tracks = the scorer, bigWig/bedGraph files, N, CLI."""

from __future__ import annotations

import itertools
import random
import sys

import numpy as np
import pyBigWig  # the dev extra has it (pip install -e ".[dev]"); glm itself needs it only for .bw output
import pytest
import torch
from conftest import PNG, write_fasta
from test_scoring import make_lm

import cli
from glm.alphabet import reverse_complement
from glm.errors import InputError
from glm.io.genome import Genome
from glm.model.batching import sequence_tokens
from glm.model.checkpoint import export_model
from glm.scoring import mutagenesis_variants, score_variants
from glm.scoring.plan import make_plan
from glm.io.tracks import TRACK_NAMES
from glm.scoring.tracks import kmer_base_log_probs, strand_log_probs, track_pieces, write_tracks


random.seed(5)
CONTIG = "".join(random.choice("ACGT") for _ in range(301))  # 301 = 3 * 100 + 1: one base past the last 3-mer
N_RUN = (40, 52)  # bases of chr1 set to N


def values_of(pieces) -> np.ndarray:
    return np.concatenate([piece.values for piece in pieces])


@pytest.fixture
def genome(tmp_path) -> Genome:
    bases = CONTIG[: N_RUN[0]] + "N" * (N_RUN[1] - N_RUN[0]) + CONTIG[N_RUN[1] :]
    return Genome(write_fasta(tmp_path / "genome.fa", {"chr1": bases, "gap": "N" * 90, "chr2": CONTIG[:120]}))


def brute_force_log_probs(lm, sequence: str) -> np.ndarray:
    """(len, 4): log P(base | earlier bases) from the full-vocabulary softmax of one window, by enumeration."""
    tokenizer, k, stride = lm.tokenizer, lm.tokenizer.k, lm.tokenizer.stride
    ids = torch.from_numpy(sequence_tokens(tokenizer, sequence))[None]
    with torch.no_grad():
        probs = torch.softmax(lm.model.logits(lm.model.hidden_states(ids)[-1])[0].double(), -1).numpy()
    kmers = ["".join(bases) for bases in itertools.product("ACGT", repeat=k)]
    kmer_ids = list(tokenizer.kmer_ids())
    result = np.full((len(sequence), 4), np.nan)
    for token in range((len(sequence) - k) // stride + 1):
        start = token * stride
        for phase in range(0 if token == 0 else k - stride, k):
            prefix = sequence[start : start + phase]
            mass = {
                b: sum(probs[token, i] for i, kmer in zip(kmer_ids, kmers) if kmer[: phase + 1] == prefix + b)
                for b in "ACGT"
            }
            total = sum(mass.values())
            result[start + phase] = [np.log(mass[b] / total) for b in "ACGT"]
    return result


@pytest.mark.parametrize("k, stride", [(3, 3), (4, 2), (1, 1)])
def test_logprob_marginalises_the_kmer_distribution(k, stride, tmp_path) -> None:
    """One window over a whole contig: every base's distribution equals the enumeration over k-mers."""
    lm = make_lm(k, stride, context=64)
    plan = make_plan(lm.model, lm.tokenizer, strands="forward", precision="float32")
    sequence = CONTIG[: min(100, plan.window)]  # one window (with a tail token for k=4, stride 2)
    genome = Genome(write_fasta(tmp_path / "g.fa", {"c": sequence}))
    found = strand_log_probs(lm.model, lm.tokenizer, genome, "c", 0, len(sequence), plan)
    expected = brute_force_log_probs(lm, sequence)
    scored = ~np.isnan(expected[:, 0])
    np.testing.assert_array_equal(~np.isnan(found[:, 0]), scored)  # a tail shorter than k is absent
    np.testing.assert_allclose(found[scored], expected[scored], atol=1e-5)
    assert np.ptp(found[scored]) > 0.5  # far from uniform: the check has teeth


def test_reference_bases_add_up_to_the_token() -> None:
    """log P(token) within the k-mers = the sum of its bases' conditionals (the chain rule)."""
    torch.manual_seed(0)
    logits = torch.randn(5, 4**3)
    codes = torch.randint(0, 4, (5, 3))
    per_base = kmer_base_log_probs(logits, codes)
    chosen = per_base.gather(2, codes[:, :, None])[..., 0].sum(1)
    kmer = (codes * torch.tensor([16, 4, 1])).sum(1)
    expected = torch.log_softmax(logits, -1)[torch.arange(5), kmer]
    torch.testing.assert_close(chosen, expected)
    torch.testing.assert_close(per_base.exp().sum(-1), torch.ones(5, 3))


def test_values_do_not_depend_on_the_region_and_cover_long_contigs(genome) -> None:
    """Windows lie on a grid of the contig: a sub-region gets the same values; many windows, no gaps."""
    lm = make_lm(context=16)  # 14 tokens a window: chr1 needs many windows
    plan = make_plan(lm.model, lm.tokenizer, batch_size=3)
    whole = values_of(track_pieces(lm.model, lm.tokenizer, genome, [("chr1", 0, 301)], "logprob", plan))
    part = values_of(track_pieces(lm.model, lm.tokenizer, genome, [("chr1", 97, 211)], "logprob", plan))
    np.testing.assert_array_equal(part, whole[97:211])
    absent = np.isnan(whole[:, 0])
    n = np.zeros(301, bool)
    n[N_RUN[0] : N_RUN[1]] = True
    # absent: N at the base or before it in its 3-mer, on either strand (the reverse strand's 3-mers start
    # at the contig's end), or no whole 3-mer (base 300 on the forward strand, base 0 on the reverse)
    forward = [p == 300 or n[p - p % 3 : p + 1].any() for p in range(301)]
    reverse = [p == 0 or n[p : 301 - (300 - p) // 3 * 3].any() for p in range(301)]
    np.testing.assert_array_equal(absent, np.logical_or(forward, reverse))
    assert absent[N_RUN[1]] and not absent[N_RUN[0] - 1]  # after the run, a 3-mer started in it
    reference = np.array(["ACGT".find(base) for base in CONTIG])
    scored = np.flatnonzero(~absent)
    np.testing.assert_array_equal(whole[scored, 4], whole[scored, reference[scored]])  # logp_ref


def test_strand_average_is_invariant_to_reverse_complementing(tmp_path) -> None:
    lm = make_lm(context=16)
    plan = make_plan(lm.model, lm.tokenizer)
    forward = Genome(write_fasta(tmp_path / "f.fa", {"c": CONTIG[:240]}))
    backward = Genome(write_fasta(tmp_path / "b.fa", {"c": reverse_complement(CONTIG[:240])}))
    one = values_of(track_pieces(lm.model, lm.tokenizer, forward, [("c", 0, 240)], "logprob", plan))
    two = values_of(track_pieces(lm.model, lm.tokenizer, backward, [("c", 0, 240)], "logprob", plan))
    np.testing.assert_allclose(one[:, :4], two[::-1, 3::-1], atol=1e-5)  # position mirrored, base complemented


def test_llr_track_equals_the_scorer(genome) -> None:
    lm = make_lm()
    plan = make_plan(lm.model, lm.tokenizer, batch_size=4)
    values = values_of(track_pieces(lm.model, lm.tokenizer, genome, [("chr1", 20, 70)], "llr", plan))
    variants = mutagenesis_variants(genome, "chr1", 20, 70)
    scores = score_variants(lm.model, lm.tokenizer, variants, genome, batch_size=3, chunk_size=17)
    for variant, llr in zip(variants, scores["llr"]):
        assert values[variant.pos - 20, "ACGT".index(variant.alt)] == pytest.approx(llr, abs=1e-5)
        assert values[variant.pos - 20, "ACGT".index(variant.ref)] == 0.0
    llr = np.array(scores["llr"]).reshape(-1, 3)
    known = ~np.isnan(values[:, 4])
    np.testing.assert_allclose(values[known, 4], llr.mean(axis=1), atol=1e-5)
    assert np.isnan(values[N_RUN[0] - 20 : N_RUN[1] - 20]).all()  # N: absent, not 0
    assert np.abs(llr).max() > 0.05


@pytest.mark.parametrize("method", ["logprob", "llr"])
def test_bigwig_and_bedgraph_hold_the_values(genome, tmp_path, method) -> None:
    lm = make_lm()
    plan = make_plan(lm.model, lm.tokenizer)
    regions = [("chr2", 10, 50), ("chr1", 30, 60)]  # given out of genome order: written in it
    expected = {
        contig: values_of(track_pieces(lm.model, lm.tokenizer, genome, [(contig, start, end)], method, plan))
        for contig, start, end in regions
    }
    report = write_tracks(lm.model, lm.tokenizer, genome, regions, str(tmp_path / "t.bw"), method, plan, "tiny")
    graph = write_tracks(lm.model, lm.tokenizer, genome, regions, str(tmp_path / "t.bedGraph"), method, plan, "tiny")
    present = {contig: int(np.isfinite(values[:, 0]).sum()) for contig, values in expected.items()}
    assert report.scored == graph.scored == sum(present.values()) >= 40 + 30 - (N_RUN[1] - 30) - 2
    for column, name in enumerate(TRACK_NAMES[method]):
        with pyBigWig.open(str(tmp_path / f"t.{name}.bw")) as bigwig:
            assert bigwig.chroms() == {"chr1": 301, "gap": 90, "chr2": 120}
            for contig, start, _ in regions:
                intervals = bigwig.intervals(contig)
                wanted = expected[contig][:, column]
                where = np.flatnonzero(~np.isnan(wanted))
                assert [(s, e) for s, e, _ in intervals] == [(start + p, start + p + 1) for p in where]
                np.testing.assert_array_equal([v for _, _, v in intervals], wanted[where])
        lines = (tmp_path / f"t.{name}.bedGraph").read_text().splitlines()
        assert lines[0].startswith(f'track type=bedGraph name="{name}" description="glm ')
        assert "model tiny" in lines[0]
        cells = [line.split("\t") for line in lines[1:]]
        assert [cell[0] for cell in cells] == ["chr1"] * present["chr1"] + ["chr2"] * present["chr2"]  # genome order
        rows = {(cell[0], int(cell[1])): np.float32(cell[3]) for cell in cells}
        with pyBigWig.open(str(tmp_path / f"t.{name}.bw")) as bigwig:
            assert rows == {(c, s): np.float32(v) for c in ("chr1", "chr2") for s, _, v in bigwig.intervals(c)}
    assert "bigDataUrl=t.logp_A.bw" in (tmp_path / "t.tracks.txt").read_text() or method == "llr"


def test_a_region_of_only_n_writes_no_intervals_and_says_so(genome, tmp_path, capsys) -> None:
    lm = make_lm()
    plan = make_plan(lm.model, lm.tokenizer)
    for suffix in (".bw", ".bedGraph"):
        report = write_tracks(
            lm.model, lm.tokenizer, genome, [("gap", 0, 90)], str(tmp_path / f"n{suffix}"), "logprob", plan, "m"
        )
        assert report.scored == 0
        assert "no intervals written" in report.summary()
    with pyBigWig.open(str(tmp_path / "n.logp_A.bw")) as bigwig:
        assert bigwig.intervals("gap") is None
    assert (tmp_path / "n.logp_A.bedGraph").read_text().count("\n") == 1  # the track line only


def test_without_pybigwig_bigwig_says_how_to_install_and_bedgraph_works(genome, tmp_path, monkeypatch) -> None:
    lm = make_lm()
    plan = make_plan(lm.model, lm.tokenizer)
    monkeypatch.setitem(sys.modules, "pyBigWig", None)  # import pyBigWig now fails
    with pytest.raises(InputError, match=r'pip install "glm\[tracks\]"'):
        write_tracks(lm.model, lm.tokenizer, genome, [("chr2", 0, 30)], str(tmp_path / "x.bw"), "logprob", plan, "m")
    assert not list(tmp_path.glob("x*"))
    report = write_tracks(
        lm.model, lm.tokenizer, genome, [("chr2", 0, 30)], str(tmp_path / "x.bg"), "logprob", plan, "m"
    )
    assert report.scored == 30


def test_track_command(genome, tmp_path, capsys) -> None:
    lm = make_lm()
    model = export_model(tmp_path / "model", lm.model, lm.tokenizer)
    out = tmp_path / "cli.bedGraph"
    assert (
        cli.main(
            [
                "track",
                str(model),
                "--genome",
                str(genome.path),
                "--regions",
                "chr2:11-40",
                "--out",
                str(out),
                "--quiet",
                "--plot",
            ]
        )
        == 0
    )
    assert "30 of 30 bases" in capsys.readouterr().out
    assert out.with_suffix(".png").read_bytes().startswith(PNG)
    assert (tmp_path / "cli.logp_ref.bedGraph").read_text().count("\n") == 31
    assert (
        cli.main(
            ["track", str(model), "--genome", str(genome.path), "--regions", "chr2", "--out", str(tmp_path / "x.txt")]
        )
        == 2
    )
    assert "not a track file" in capsys.readouterr().err
