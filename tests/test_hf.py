"""Hugging Face interop (glm.hf): a glm model exported as a native transformers model computes glm's
logits from glm's token ids, loads back into glm to the same scores, options without a native
equivalent are refused, and a transformers model from elsewhere scores a VCF through `glm score`."""

from __future__ import annotations

import gzip
import json
import sys

import numpy as np
import pytest
import torch
from conftest import DATA

import glm
from glm.commands import main
from glm.config import ModelConfig
from glm.errors import InputError
from glm.heads.features import FeatureCache, FeatureSpec
from glm.io.genome import Genome
from glm.io.variant_readers import read_variants
from glm.model.checkpoint import export_model
from glm.model.genome_tags import GenomeTags
from glm.model.tokenizers import ByteTokenizer, KmerTokenizer
from glm.model.transformer import Transformer
from glm.scoring.windows import reference_windows, window_grid

transformers = pytest.importorskip("transformers")
from tokenizers import Regex, models, pre_tokenizers  # noqa: E402 - installed with transformers
from tokenizers import Tokenizer as HubTokenizer  # noqa: E402

MITOMAP = DATA / "mitomap_confirmed_mutations.vcf.gz"
MT = DATA / "MT-human.fa"


def glm_model(k: int = 1, stride: int | None = None, seed: int = 0, **options) -> tuple[Transformer, KmerTokenizer]:
    """A tiny random glm model whose norm weights are not all 1 (so a misplaced norm shows)."""
    torch.manual_seed(seed)
    tokenizer = KmerTokenizer(k, stride)
    config = ModelConfig(vocab_size=tokenizer.vocab_size, n_layers=2, n_heads=2, width=32, context=64, **options)
    model = Transformer(config).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "norm" in name:
                parameter.add_(0.3 * torch.randn_like(parameter))
    return model, tokenizer


def random_dna(length: int, seed: int = 1) -> str:
    return "".join(np.random.default_rng(seed).choice(list("ACGT"), size=length))


EXPORTABLE = [
    pytest.param(1, {"qk_norm": False, "tie_embeddings": True}, "llama", id="k1-llama-tied"),
    pytest.param(3, {"qk_norm": False, "tie_embeddings": False, "rope_base": 5000.0}, "llama", id="k3-llama-untied"),
    pytest.param(1, {"qk_norm": True, "tie_embeddings": False, "norm_eps": 1e-6}, "qwen3", id="k1-qwen3-untied"),
    pytest.param(3, {"qk_norm": True, "tie_embeddings": True, "zero_init": True}, "qwen3", id="k3-qwen3-tied"),
]


@pytest.mark.parametrize(("k", "options", "model_type"), EXPORTABLE)
def test_an_exported_model_computes_glms_logits_from_glms_token_ids(tmp_path, k, options, model_type) -> None:
    model, tokenizer = glm_model(k, **options)
    out = glm.GenomicLM(model, tokenizer).save_hf(tmp_path / "hub")
    hub = transformers.AutoModelForCausalLM.from_pretrained(out)
    hub_tokenizer = transformers.AutoTokenizer.from_pretrained(out)
    assert hub.config.model_type == model_type and hub.config.tie_word_embeddings == options["tie_embeddings"]
    # what transformers 4.x reads too (it knows neither rope_parameters nor TokenizersBackend)
    assert json.loads((out / "config.json").read_text())["rope_theta"] == options.get("rope_base", 10000.0)
    assert json.loads((out / "tokenizer_config.json").read_text())["tokenizer_class"] == "PreTrainedTokenizerFast"
    sequence = random_dna(3 * 50 + 2)  # a tail shorter than k when k = 3
    ids = hub_tokenizer(sequence, return_tensors="pt").input_ids
    assert ids[0].tolist() == [2, *tokenizer.encode(sequence).ids.tolist()]  # SEP first, then glm's tokens
    with torch.no_grad():
        difference = (hub(input_ids=ids).logits - model(ids)).abs().max().item()
    assert difference < 1e-5
    odd = "acgTNRYacgtAC"  # lowercase, N, IUPAC codes, a tail
    assert hub_tokenizer(odd).input_ids == [2, *tokenizer.encode(odd).ids.tolist()]
    assert hub_tokenizer.decode(tokenizer.encode("ACGTAC").ids.tolist()) == "ACGTAC"
    card = (out / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: transformers\nlicense: other\n")
    assert "Negative: the model finds the alternative less likely" in card


def test_an_exported_model_loaded_back_scores_a_vcf_to_the_same_llr(tmp_path) -> None:
    model, tokenizer = glm_model(3, qk_norm=True, tie_embeddings=False)
    info = {"val_bits_per_base": 1.95, "trained_on": "/somewhere/MT-human.fa"}
    original = glm.GenomicLM(model, tokenizer, info)
    exported = original.save_hf(tmp_path / "hub")
    loaded = glm.load(exported, device="cpu")
    assert type(loaded.model).__name__ == "HubModel" and loaded.tokenizer.k == 3 and loaded.context == 64
    options = {"aliases": {"MT": "MT_human"}, "method": ["llr", "embedding"]}
    ours, theirs = original.score_variants(MITOMAP, MT, **options), loaded.score_variants(MITOMAP, MT, **options)
    assert len(ours) == 117
    np.testing.assert_allclose(theirs["llr"], ours["llr"], atol=1e-5)
    np.testing.assert_allclose(theirs["llr_forward"], ours["llr_forward"], atol=1e-5)
    np.testing.assert_allclose(theirs["embedding_l2"], ours["embedding_l2"], atol=1e-5)
    assert np.abs(ours["llr"]).max() > 1e-3  # the scores are not all zero
    sequence = Genome(MT).fetch("MT_human", 0, 500)
    assert loaded.log_likelihood(sequence).total == pytest.approx(original.log_likelihood(sequence).total, abs=1e-4)
    np.testing.assert_allclose(
        loaded.embed(sequence, strands="both"), original.embed(sequence, strands="both"), atol=1e-5
    )
    region = "MT_human:3230-3240"
    np.testing.assert_allclose(
        loaded.mutagenesis(MT, region)["llr"], original.mutagenesis(MT, region)["llr"], atol=1e-5
    )
    prompt = sequence[:30]
    assert loaded.generate(prompt, 20, temperature=0) == original.generate(prompt, 20, temperature=0)
    export_model(tmp_path / "glm", model, tokenizer)
    sequences = [sequence[:90], sequence[200:260]]
    np.testing.assert_allclose(
        FeatureCache(FeatureSpec(model=str(exported)))(sequences),
        FeatureCache(FeatureSpec(model=str(tmp_path / "glm")))(sequences),
        atol=1e-5,
    )  # a probe's embedding features
    card = (exported / "README.md").read_text()
    assert "value: 1.95" in card and "MT-human.fa" in card and "/somewhere" not in card


@pytest.mark.parametrize(
    ("k", "stride", "options", "tags", "named"),
    [
        (1, None, {"mlp": "relu2"}, None, "mlp relu2"),
        (1, None, {"value_embeddings": True}, None, "value_embeddings"),
        (1, None, {"logit_cap": 30.0}, None, "logit_cap 30"),
        (3, 1, {}, None, "stride 1 < k 3"),
        (1, None, {}, GenomeTags(("ecoli", "phage"), 7), "genome_tokens"),
    ],
)
def test_an_option_without_a_native_equivalent_is_refused_by_name(tmp_path, k, stride, options, tags, named) -> None:
    model, tokenizer = glm_model(k, stride, **options)
    with pytest.raises(InputError, match=named):
        glm.GenomicLM(model, tokenizer, genome_tags=tags).save_hf(tmp_path / "hub")
    assert not (tmp_path / "hub").exists()


def test_export_hf_on_the_command_line_refuses_in_one_line_and_needs_transformers(
    tmp_path, capsys, monkeypatch
) -> None:
    model, tokenizer = glm_model(mlp="relu2")
    export_model(tmp_path / "relu2", model, tokenizer)
    assert main(["export-hf", str(tmp_path / "relu2"), str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == "error: export-hf: mlp relu2: Llama and Qwen3 have only the SwiGLU MLP\n"
    export_model(tmp_path / "text", Transformer(ModelConfig(vocab_size=259, n_layers=1, width=32)), ByteTokenizer())
    assert main(["export-hf", str(tmp_path / "text"), str(tmp_path / "out")]) == 2
    assert "tokenizer byte" in capsys.readouterr().err
    model, tokenizer = glm_model()
    export_model(tmp_path / "model", model, tokenizer)
    monkeypatch.setitem(sys.modules, "transformers", None)  # as if it were not installed
    assert main(["export-hf", str(tmp_path / "model"), str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert error.endswith('pip install "glm[hf]"\n') and error.count("\n") == 1
    assert not (tmp_path / "out").exists()
    monkeypatch.undo()
    assert main(["export-hf", str(tmp_path / "model"), str(tmp_path / "out"), "--license", "mit"]) == 0
    assert "license: mit" in (tmp_path / "out" / "README.md").read_text()


def nucleotide_hub_model(directory, model_type: str) -> None:
    """A tiny random transformers model with a single-nucleotide tokenizer of its own ids (BOS <s>)."""
    vocabulary = {name: i for i, name in enumerate(["<pad>", "<unk>", "<s>", "</s>", "N", "T", "G", "C", "A"])}
    vocabulary["<mask>"] = len(vocabulary)  # a token that is neither a base nor the separator
    hub_tokenizer = HubTokenizer(models.WordLevel(vocabulary, unk_token="<unk>"))
    hub_tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    wrapped = transformers.PreTrainedTokenizerFast(
        tokenizer_object=hub_tokenizer, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>"
    )
    wrapped.save_pretrained(directory)
    config_class = transformers.Qwen3Config if model_type == "qwen3" else transformers.LlamaConfig
    config = config_class(
        vocab_size=len(vocabulary), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=256,
    )  # fmt: skip
    torch.manual_seed(3)
    transformers.AutoModelForCausalLM.from_config(config).save_pretrained(directory)


def hub_log_likelihood(hub, ids: list[int]) -> float:
    """log P(ids[1:] | ids[0]) summed, computed by transformers alone."""
    with torch.no_grad():
        log_probs = hub(input_ids=torch.tensor([ids])).logits[0, :-1].log_softmax(-1)
    return float(log_probs[torch.arange(len(ids) - 1), torch.tensor(ids[1:])].sum())


@pytest.mark.parametrize("model_type", ["llama", "qwen3"])
def test_a_transformers_model_with_a_nucleotide_tokenizer_scores_the_mitomap_vcf(tmp_path, model_type) -> None:
    nucleotide_hub_model(tmp_path / "hub", model_type)
    out = tmp_path / "scored.vcf.gz"
    argv = ["score", str(tmp_path / "hub"), "--genome", str(MT), "--variants", str(MITOMAP), "--alias", "MT=MT_human"]
    assert main([*argv, "--window", "101", "--out", str(out), "--quiet"]) == 0
    with gzip.open(out, "rt") as lines:
        rows = [line.split("\t") for line in lines if not line.startswith("#")]
    assert len(rows) == 117
    written = {(row[0], int(row[1]), row[3], row[4]): row[7] for row in rows}
    # The forward-strand llr of the first SNV, recomputed with transformers alone on glm's windows.
    hub = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hub")
    hub_tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path / "hub")
    genome = Genome(MT)
    variants = read_variants(MITOMAP, genome, {"MT": "MT_human"})
    snv = next(v for v in variants if len(v.ref) == len(v.alt) == 1)
    tokenizer = KmerTokenizer(1)
    ref_window, alt_window, _ = reference_windows(snv, genome, 101, 1, window_grid(101, tokenizer))
    bos = hub_tokenizer.bos_token_id
    expected = hub_log_likelihood(hub, [bos, *hub_tokenizer(alt_window).input_ids]) - hub_log_likelihood(
        hub, [bos, *hub_tokenizer(ref_window).input_ids]
    )
    info = dict(item.split("=") for item in written[("MT", snv.pos + 1, snv.ref, snv.alt)].split(";") if "=" in item)
    assert float(info["GLM_LLR_FORWARD"]) == pytest.approx(expected, abs=1e-4)
    lm = glm.load(tmp_path / "hub", device="cpu")
    sequence = genome.fetch("MT_human", 100, 300)  # within one window of the context
    direct = hub_log_likelihood(hub, [bos, *hub_tokenizer(sequence).input_ids])
    assert lm.log_likelihood(sequence).total == pytest.approx(direct, abs=1e-4)


def test_a_tokenizer_that_does_not_cut_dna_into_kmers_is_refused(tmp_path) -> None:
    vocabulary = {"<unk>": 0, "<s>": 1, "A": 2, "C": 3, "G": 4, "T": 5, "ACGT": 6}
    hub_tokenizer = HubTokenizer(models.WordLevel(vocabulary, unk_token="<unk>"))
    hub_tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(".{1,4}"), behavior="isolated")  # 4 bases a token
    transformers.PreTrainedTokenizerFast(
        tokenizer_object=hub_tokenizer, bos_token="<s>", unk_token="<unk>"
    ).save_pretrained(tmp_path)
    config = transformers.LlamaConfig(
        vocab_size=7, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2
    )
    transformers.AutoModelForCausalLM.from_config(config).save_pretrained(tmp_path)
    with pytest.raises(InputError, match="does not cut DNA into non-overlapping 1-mers"):
        glm.load(tmp_path, device="cpu")


def test_a_transformers_directory_glm_cannot_use_is_an_input_error(tmp_path) -> None:
    nucleotide_hub_model(tmp_path / "hub", "llama")
    (tmp_path / "hub" / "tokenizer.json").unlink()
    (tmp_path / "hub" / "tokenizer_config.json").unlink()
    with pytest.raises(InputError, match="tokenizer: transformers cannot load it"):
        glm.load(tmp_path / "hub", device="cpu")
    (tmp_path / "hub" / "model.safetensors").unlink()  # a pickle would not be read either
    with pytest.raises(InputError, match="weights: transformers cannot load it"):
        glm.load(tmp_path / "hub", device="cpu")
