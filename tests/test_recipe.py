"""The recipe options (issue 12): each changes the model it claims to, and the invariants still hold.

The invariants are the ones the default block has: the KV cache equals a full pass, exported
weights reload exactly, old model directories keep their old block, and a resumed run with
Muon follows the uninterrupted one.
"""

from __future__ import annotations

import json
import math
from dataclasses import fields

import numpy as np
import pytest
import torch
from conftest import DATA, StopAt, write_fasta
from safetensors.torch import load_file
from test_scale import quiet_pretrain
from test_scoring import CONTIG, VARIANTS

from glm.api import GenomicLM
from glm.config import LEGACY_MODEL, ModelConfig, TrainConfig
from glm.errors import InputError
from glm.io.genome import Genome
from glm.model.checkpoint import export_model, load_model
from glm.model.likelihood import token_log_probs
from glm.model.tokenizers import KmerTokenizer
from glm.model.transformer import FLOAT32_ATTENTION_MAX_KEYS, Transformer, attend
from glm.scoring import score_variants
from glm.training.optimizers import Muon, MuonAdamW, Schedule, build_optimizer

# Every block option that changes the forward pass, at once (zero_init is tested on its own:
# a zero-initialised model's blocks are the identity, which would hide the others).
RECIPE = {"mlp": "relu2", "qk_norm": True, "tie_embeddings": False, "value_embeddings": True, "logit_cap": 8.0}


def recipe_model(vocab_size: int = 23, seed: int = 0, **options) -> Transformer:
    torch.manual_seed(seed)
    config = ModelConfig(vocab_size=vocab_size, n_layers=2, n_heads=2, width=32, context=32, **{**RECIPE, **options})
    model = Transformer(config).eval()
    with torch.no_grad():  # move the value mix off its identity start, so value embeddings act
        for block in model.blocks:
            if block.attention.value_mix is not None:
                block.attention.value_mix.copy_(torch.tensor([0.7, 0.9]))
    return model


def test_the_kv_cache_equals_a_full_pass_with_every_option() -> None:
    model = recipe_model()
    ids = torch.randint(3, 23, (2, 20))
    with torch.no_grad():
        full = model(ids)
        cache = model.new_cache()
        pieces = [model(ids[:, :7], cache), model(ids[:, 7:8], cache), model(ids[:, 8:], cache)]
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, rtol=0, atol=1e-5)
    assert full.abs().max() < RECIPE["logit_cap"]  # soft-capped


def test_each_option_changes_the_model_it_names() -> None:
    base = recipe_model(**LEGACY_MODEL)
    assert base.head.weight is base.embedding.weight and base.value_embedding is None
    relu = recipe_model(mlp="relu2")
    assert relu.config.mlp_hidden == 144 and base.config.mlp_hidden == 96  # 1.5x: 2 matrices against 3
    mlp_parameters = [sum(p.numel() for p in model.blocks[0].mlp.parameters()) for model in (relu, base)]
    assert mlp_parameters == [2 * 32 * 144, 3 * 32 * 96]  # equal
    untied = recipe_model()
    assert untied.head.weight is not untied.embedding.weight
    zero = recipe_model(zero_init=True)
    for block in zero.blocks:
        assert block.attention.proj.weight.abs().sum() == 0 and block.mlp.down.weight.abs().sum() == 0
    ids = torch.randint(3, 23, (1, 12))
    with torch.no_grad():  # blocks start as the identity: the logits are the head of the normed embedding
        expected = zero.logits(zero.final_norm(zero.embedding(ids)))
        torch.testing.assert_close(zero(ids), expected)
    capped = recipe_model(logit_cap=0.5)
    with torch.no_grad():
        assert capped(ids).abs().max() < 0.5


def test_an_untied_model_exports_and_reloads_exactly(tmp_path) -> None:
    tokenizer = KmerTokenizer(2)
    model = recipe_model(vocab_size=tokenizer.vocab_size)
    export_model(tmp_path / "model", model, tokenizer)
    assert "head.weight" in load_file(tmp_path / "model" / "model.safetensors")
    loaded, _, _ = load_model(tmp_path / "model")
    ids = torch.randint(3, tokenizer.vocab_size, (2, 16))
    with torch.no_grad():
        torch.testing.assert_close(token_log_probs(loaded, ids), token_log_probs(model, ids), rtol=0, atol=0)


def test_a_saved_config_without_the_recipe_fields_loads_the_old_block(tmp_path, monkeypatch) -> None:
    """Even if the dataclass defaults change, a config saved before the options existed keeps its block."""
    tokenizer = KmerTokenizer(1)
    model = recipe_model(vocab_size=tokenizer.vocab_size, **LEGACY_MODEL)
    export_model(tmp_path / "model", model, tokenizer)
    config_path = tmp_path / "model" / "config.json"
    saved = json.loads(config_path.read_text())
    saved["model"] = {key: value for key, value in saved["model"].items() if key not in LEGACY_MODEL}
    config_path.write_text(json.dumps(saved))
    for name, value in {"qk_norm": True, "mlp": "relu2", "tie_embeddings": False, "logit_cap": 30.0}.items():
        monkeypatch.setattr(ModelConfig, name, value)  # as if the defaults had moved on
    loaded, _, _ = load_model(tmp_path / "model")
    assert {key: getattr(loaded.config, key) for key in LEGACY_MODEL} == LEGACY_MODEL
    assert set(LEGACY_MODEL) <= {item.name for item in fields(ModelConfig)}


def test_muon_takes_the_block_matrices_and_adamw_the_rest() -> None:
    model = recipe_model()
    optimizer = build_optimizer(model, TrainConfig(optimizer="muon"))
    assert isinstance(optimizer, MuonAdamW)
    muon = {id(p) for group in optimizer.muon.param_groups for p in group["params"]}
    matrices = {id(p) for block in model.blocks for p in block.parameters() if p.dim() == 2}
    assert muon == matrices
    others = {id(p) for group in optimizer.adamw.param_groups for p in group["params"]}
    assert id(model.embedding.weight) in others and id(model.head.weight) in others
    assert muon.isdisjoint(others) and len(muon) + len(others) == len(list(model.parameters()))
    assert [group["lr"] for group in optimizer.param_groups] == [0.02, 2e-3, 2e-3]
    assert type(build_optimizer(model, TrainConfig())) is torch.optim.AdamW


def test_muon_adamw_steps_both_and_its_state_round_trips() -> None:
    model = recipe_model()
    optimizer = build_optimizer(model, TrainConfig(optimizer="muon"))
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    model.train()
    ids = torch.randint(3, 23, (2, 12))

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = model(ids).logsumexp(-1).mean()
        loss.backward()
        return loss

    optimizer.step(closure)
    moved = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert {"blocks.0.attention.qkv.weight", "embedding.weight", "head.weight"} <= moved
    state = optimizer.state_dict()
    again = build_optimizer(model, TrainConfig(optimizer="muon"))
    again.load_state_dict(state)
    assert again.param_groups[0] is again.muon.param_groups[0]  # still shared with the inner optimizers
    first = next(iter(again.muon.state.values()))["momentum_buffer"]
    torch.testing.assert_close(first, next(iter(optimizer.muon.state.values()))["momentum_buffer"])


def test_batched_muon_equals_torchs_muon_step_by_step() -> None:
    """One Newton-Schulz per shape gives torch.optim.Muon's steps exactly, tall and wide
    matrices, shared shapes, nesterov on and off, and a matrix without a gradient."""
    shapes = [(24, 8), (24, 8), (8, 8), (8, 20), (8, 20), (24, 8)]
    for nesterov in (True, False):
        generator = torch.Generator().manual_seed(0)
        ours = [torch.nn.Parameter(torch.randn(shape, generator=generator)) for shape in shapes]
        theirs = [torch.nn.Parameter(p.detach().clone()) for p in ours]
        start = [p.detach().clone() for p in ours]
        optimizers = [Muon(ours, lr=0.02, weight_decay=0.1, momentum=0.9), torch.optim.Muon(theirs, lr=0.02)]
        for optimizer in optimizers:
            optimizer.param_groups[0].update(weight_decay=0.1, momentum=0.9, nesterov=nesterov)
        for step in range(4):
            grads = [torch.randn(shape, generator=generator) for shape in shapes]
            for parameters in (ours, theirs):
                for index, (parameter, grad) in enumerate(zip(parameters, grads)):
                    parameter.grad = None if step == 2 and index == 1 else grad.clone()
            for optimizer in optimizers:
                optimizer.step()
        for mine, reference, before in zip(ours, theirs, start):
            assert torch.equal(mine, reference) and not torch.equal(mine, before)


def test_attention_runs_in_float32_on_a_cpu_under_bf16_autocast() -> None:
    """The CPU flash kernel is faster in float32 (docs/BENCHMARKS.md); it must also be exact."""
    q, k, v = torch.randn(3, 2, 4, 10, 8).bfloat16().unbind()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = attend(q, k, v, is_causal=True)
    assert inside.dtype == torch.float32
    expected = torch.nn.functional.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=True)
    torch.testing.assert_close(inside, expected)
    assert attend(q, k, v, is_causal=True).dtype == torch.bfloat16  # outside autocast: as given
    long = torch.randn(3, 1, 1, FLOAT32_ATTENTION_MAX_KEYS + 1, 8).bfloat16().unbind()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert attend(*long, is_causal=True).dtype == torch.bfloat16  # long contexts: bf16 is faster


def test_muon_with_fsdp_is_refused() -> None:
    with pytest.raises(InputError, match="muon needs whole weight matrices: use strategy ddp"):
        TrainConfig(optimizer="muon", strategy="fsdp").validate()


def test_warmup_stable_decay_holds_then_decays_linearly() -> None:
    wsd = Schedule(warmup=10, min_ratio=0.1, kind="wsd", decay_fraction=0.2)
    assert wsd(4, 0.0) == pytest.approx(0.5)  # warmup
    assert wsd(50, 0.5) == 1.0 and wsd(80, 0.8) == 1.0  # stable until the last 20%
    assert wsd(90, 0.9) == pytest.approx(0.55) and wsd(100, 1.0) == pytest.approx(0.1)
    cosine = Schedule(warmup=10, min_ratio=0.1)
    assert cosine(50, 0.5) == pytest.approx(0.55) and cosine(100, 1.0) == pytest.approx(0.1)
    assert math.isclose(cosine(10, 0.0), 1.0)


def test_a_resumed_muon_run_with_every_option_follows_the_same_trajectory(tmp_path, tiny_config) -> None:
    config = tiny_config.with_overrides(
        {"train.optimizer": "muon", "train.schedule": "wsd", **{f"model.{key}": value for key, value in RECIPE.items()}}
    )
    straight = quiet_pretrain(DATA / "phiX174.fa", config, tmp_path / "straight")
    quiet_pretrain(DATA / "phiX174.fa", config, tmp_path / "resumed", callbacks=[StopAt(10)])
    resumed = quiet_pretrain(DATA / "phiX174.fa", config, tmp_path / "resumed", resume=True)
    assert resumed.steps == 20
    a, b = load_file(straight.model_dir / "model.safetensors"), load_file(resumed.model_dir / "model.safetensors")
    assert set(a) == set(b) and "head.weight" in a
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-6, atol=1e-7)
    assert resumed.val_bits == pytest.approx(straight.val_bits, abs=1e-6)


def test_prefix_reuse_scoring_equals_naive_with_every_option(tmp_path) -> None:
    tokenizer = KmerTokenizer(3)
    model = recipe_model(vocab_size=tokenizer.vocab_size)
    genome = Genome(write_fasta(tmp_path / "genome.fa", {"chr1": CONTIG}))
    lm = GenomicLM(model, tokenizer, batch_size=3)
    rows = [("chr1", pos, ref, alt) for pos, ref, alt in VARIANTS]
    fast = lm.score_variants(rows, genome, method=["llr", "embedding"])
    naive = score_variants(model, tokenizer, rows, genome, method=["llr", "embedding"], batch_size=3, reuse=False)
    for column in ("llr", "embedding_l2"):
        assert np.abs(fast[column]).max() > 1e-3  # the model tells ref and alt apart
        np.testing.assert_allclose(fast[column], naive[column], rtol=0, atol=1e-5, err_msg=column)
