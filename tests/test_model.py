from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import write_fasta

from glm.api import GenomicLM, plan_windows
from glm.config import ModelConfig
from glm.errors import InputError
from glm.io.genome import Genome
from glm.model import inference
from glm.model.checkpoint import export_model, load_model
from glm.model.genome_tags import GenomeTags
from glm.model.likelihood import token_log_probs
from glm.model.tokenizers import SEP, UNK, KmerTokenizer
from glm.model.transformer import Transformer
from glm.training.lit import LitGLM


def tiny_model(vocab_size: int = 23, context: int = 32, seed: int = 0) -> Transformer:
    torch.manual_seed(seed)
    return Transformer(ModelConfig(vocab_size=vocab_size, n_layers=2, n_heads=2, width=32, context=context)).eval()


def test_causality_later_tokens_do_not_change_earlier_log_probs() -> None:
    model = tiny_model()
    ids = torch.randint(3, 23, (2, 24))
    changed = ids.clone()
    changed[:, 15:] = torch.randint(3, 23, (2, 9))
    with torch.no_grad():
        before, after = token_log_probs(model, ids), token_log_probs(model, changed)
    # log-prob at t predicts ids[t+1] from ids[:t+1]; targets up to index 14 see only unchanged tokens
    torch.testing.assert_close(before[:, :14], after[:, :14], rtol=0, atol=1e-6)
    assert not torch.allclose(before[:, 14:], after[:, 14:])


def test_summed_log_likelihood_equals_minus_training_loss(tiny_config) -> None:
    tiny_config.model.vocab_size = 7  # k=1: 3 specials + 4 bases
    lit = LitGLM(tiny_config.to_dict(), bases_per_token=1.0).eval()
    ids = torch.randint(3, 7, (3, 40))
    ids[0, 5] = UNK  # not a target: excluded from both
    batch = {"ids": ids, "soft_masked": torch.zeros_like(ids, dtype=torch.uint8)}
    with torch.no_grad():
        loss, nll_sum, count = lit._shared_step(batch, "train")
        log_probs = token_log_probs(lit.model, ids)
    scored = ids[:, 1:] != UNK
    assert count.item() == scored.sum().item() == 3 * 39 - 1
    torch.testing.assert_close(log_probs[scored].sum(), -loss * count, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(nll_sum, -log_probs[scored].sum(), rtol=1e-5, atol=1e-4)


def test_soft_masked_targets_are_down_weighted(tiny_config) -> None:
    tiny_config.model.vocab_size = 7
    tiny_config.data.soft_mask_weight = 0.0
    lit = LitGLM(tiny_config.to_dict(), bases_per_token=1.0).eval()
    ids = torch.randint(3, 7, (1, 20))
    soft = torch.zeros_like(ids, dtype=torch.uint8)
    soft[0, 10:] = 1  # targets 9.. are lowercase: weight 0 in training, counted in metrics
    with torch.no_grad():
        loss, _nll_sum, count = lit._shared_step({"ids": ids, "soft_masked": soft}, "train")
        log_probs = token_log_probs(lit.model, ids)[0]
    torch.testing.assert_close(loss, -log_probs[:9].mean(), rtol=1e-5, atol=1e-5)
    assert count.item() == 19


def test_hidden_states_shapes_and_tied_embeddings() -> None:
    model = tiny_model()
    states = model.hidden_states(torch.randint(3, 23, (2, 10)))
    assert len(states) == 3 and all(s.shape == (2, 10, 32) for s in states)
    assert model.head.weight.data_ptr() == model.embedding.weight.data_ptr()
    # GPT-2 style: residual projections get std 0.02 / sqrt(2 * layers)
    assert model.blocks[0].attention.proj.weight.std().item() == pytest.approx(0.02 / math.sqrt(4), rel=0.15)


def test_sliding_window_plan_covers_every_position_once() -> None:
    for n in [1, 5, 33, 100, 257]:
        plan = plan_windows(n, 33)
        kept = []
        for i, (start, keep_from) in enumerate(plan):
            end = min(start + 33, n)
            kept += list(range(keep_from, end))
            if i:  # at least half a window of context before each kept position
                assert keep_from - start >= 16
        assert kept == list(range(n))


def test_long_sequences_score_by_sliding_windows_like_a_manual_computation() -> None:
    tokenizer = KmerTokenizer(1)
    lm = GenomicLM(tiny_model(vocab_size=tokenizer.vocab_size, context=16), tokenizer)
    sequence = "".join(np.random.default_rng(1).choice(list("ACGT"), 50))
    ids = torch.tensor([[SEP, *list(tokenizer.encode(sequence).ids)]])
    expected = 0.0
    with torch.no_grad():
        for start, keep_from in plan_windows(ids.shape[1], 17):
            log_probs = token_log_probs(lm.model, ids[:, start : start + 17])[0]
            for target in range(max(keep_from, 1), min(start + 17, ids.shape[1])):
                expected += log_probs[target - start - 1].item()
    result = lm.log_likelihood(sequence)
    assert result.bases == 50
    assert result.total == pytest.approx(expected, rel=1e-5)
    # A sequence that fits in one window is scored in one pass with full context.
    short = sequence[:16]
    with torch.no_grad():
        direct = token_log_probs(lm.model, ids[:, :17]).sum().item()
    assert lm.log_likelihood(short).total == pytest.approx(direct, rel=1e-5)


def test_log_likelihood_skips_unknown_bases_and_batches_consistently() -> None:
    tokenizer = KmerTokenizer(2)
    lm = GenomicLM(tiny_model(vocab_size=tokenizer.vocab_size), tokenizer, batch_size=2)
    sequences = ["ACGTACGTAC", "ACGNNCGTA", "GGGGCCCCATATATAT"]
    batched = lm.log_likelihood(sequences)
    single = [lm.log_likelihood(s) for s in sequences]
    assert [r.bases for r in batched] == [10, 5, 16]  # NN kills the 2-mers 'GN' and 'NC'
    for a, b in zip(batched, single):
        assert a.total == pytest.approx(b.total, rel=1e-5)
    with pytest.raises(InputError, match="empty input"):
        lm.log_likelihood("")


@pytest.mark.parametrize(("k", "stride", "piece", "tagged"), [(3, 3, 64, False), (2, 1, 10, False), (1, 1, 8, True)])
def test_evaluate_reads_records_in_pieces_and_gives_the_whole_sequence_numbers(
    tmp_path, monkeypatch, k, stride, piece, tagged
) -> None:
    """Records longer than many pieces (and pieces shorter than a window) score as the whole sequence does."""
    monkeypatch.setattr(inference, "READ_PIECE", piece)
    tokenizer = KmerTokenizer(k, stride)
    tags = GenomeTags.build({"g": "g"}, tokenizer.vocab_size) if tagged else None
    model = tiny_model(vocab_size=tokenizer.vocab_size + tagged, context=16)
    lm = GenomicLM(model, tokenizer, batch_size=3, genome_tags=tags)
    rng = np.random.default_rng(3)
    long = "".join(rng.choice(list("ACGTacgN"), 1500))
    records = {"long": long, "runs": "N" * 40 + long[:300] + "N" * 70, "short": "ACGTNAC", "one": "G"}
    genome = Genome(write_fasta(tmp_path / "g.fa", records))
    rows = lm.evaluate(genome.path, progress=False, genome_name="g" if tagged else None)
    whole = [lm.log_likelihood(genome.sequence(name), genome_name="g" if tagged else None) for name in records]
    assert [row[0] for row in rows] == [*records, "overall"]
    for (_, bases, bits), expected in zip(rows, whole):
        assert bases == expected.bases and bits == pytest.approx(expected.bits_per_base, rel=1e-6)
    assert rows[-1][1] == sum(expected.bases for expected in whole)


def test_embed_pooling_and_layers() -> None:
    tokenizer = KmerTokenizer(1)
    lm = GenomicLM(tiny_model(vocab_size=tokenizer.vocab_size), tokenizer)
    sequences = ["ACGTACGTAA", "TTTTGGGG"]
    mean = lm.embed(sequences)
    assert mean.shape == (2, 32)
    ids = torch.tensor([[SEP, *list(tokenizer.encode(sequences[1]).ids)]])
    with torch.no_grad():
        states = lm.model.hidden_states(ids)
    np.testing.assert_allclose(
        lm.embed(sequences[1], layer=1, pooling="mean"), states[1][0, 1:].mean(0).numpy(), atol=1e-5
    )
    np.testing.assert_allclose(lm.embed(sequences[1], pooling="last"), states[-1][0, -1].numpy(), atol=1e-5)
    np.testing.assert_allclose(
        lm.embed(sequences[1], pooling="max"), states[-1][0, 1:].max(0).values.numpy(), atol=1e-5
    )
    with pytest.raises(InputError, match="layer must be in"):
        lm.embed("ACGT", layer=5)


def test_export_and_load_round_trip(tmp_path) -> None:
    tokenizer = KmerTokenizer(3)
    model = tiny_model(vocab_size=tokenizer.vocab_size)
    export_model(tmp_path / "model", model, tokenizer, {"note": "test"})
    loaded, loaded_tokenizer, config = load_model(tmp_path / "model")
    ids = torch.randint(3, tokenizer.vocab_size, (2, 20))
    with torch.no_grad():
        torch.testing.assert_close(token_log_probs(loaded, ids), token_log_probs(model, ids), rtol=0, atol=0)
    assert loaded_tokenizer.k == 3 and config["info"] == {"note": "test"}
    (tmp_path / "model" / "tokenizer.json").unlink()
    with pytest.raises(InputError, match=r"not a glm model directory: tokenizer.json is missing"):
        load_model(tmp_path / "model")
