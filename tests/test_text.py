"""Text: format detection, character/byte pretraining, and generation with and without the cache."""

from __future__ import annotations

import pytest
import torch
from conftest import write_fasta

import cli
from glm.api import GenomicLM
from glm.config import Config
from glm.errors import InputError
from glm.model.tokenizers import ByteTokenizer, CharTokenizer, KmerTokenizer
from glm.model.transformer import Transformer
from glm.training.pretrain import pretrain
from glm.training.run_data import input_format

PARAGRAPH = (
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
    "First Citizen:\nYou are all resolved rather to die than to famish?\n\nAll:\nResolved. resolved.\n"
) * 4


def text_config(tokenizer: str, steps: int = 20) -> Config:
    return Config.from_dict(
        {
            "model": {"n_layers": 2, "n_heads": 2, "width": 64, "context": 64},
            "data": {"tokenizer": tokenizer, "val_fraction": 0.1},
            "train": {"batch_size": 16, "max_steps": steps, "lr": 0.005, "warmup_steps": 10, "val_every": steps},
        }
    )


def test_format_comes_from_content_not_name(tmp_path) -> None:
    fasta_named_txt = write_fasta(tmp_path / "genome.txt", {"chr1": "ACGT" * 30})
    text_named_fa = tmp_path / "notes.fa"
    text_named_fa.write_text("Once upon a time\n> not a header: the first line decides\n")
    kmer, char = Config(), text_config("char")
    assert input_format(fasta_named_txt, kmer) == "fasta"
    assert input_format(text_named_fa, char) == "text"
    with pytest.raises(InputError, match=r"notes\.fa:1: expected a FASTA header.*--tokenizer char or byte"):
        input_format(text_named_fa, kmer)
    with pytest.raises(InputError, match=r"this is FASTA; --tokenizer char trains on text"):
        input_format(fasta_named_txt, char)
    forced = text_config("char").with_overrides({"data.format": "text"})
    assert input_format(fasta_named_txt, forced) == "text"


@pytest.mark.parametrize("tokenizer", ["char", "byte"])
def test_tiny_text_model_overfits_a_paragraph(tmp_path, tokenizer: str) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(PARAGRAPH)
    result = pretrain(corpus, text_config(tokenizer, steps=150), tmp_path / "run", progress=False, say=lambda *_: None)
    assert result.unit == tokenizer
    # A uniform guess over this text's 30-odd characters costs about 5 bits; a memorised,
    # four-times-repeated paragraph costs well under one (measured: about 0.2 after 150 steps).
    assert result.train_bits < 1.0
    lm = GenomicLM.load(result.model_dir)
    assert lm.tokenizer.kind == tokenizer
    # greedy decoding recites the memorised text (measured: " proceed any further" for char)
    continuation = lm.generate("First Citizen:\nBefore we", max_bases=20, temperature=0)
    assert continuation.startswith(" proce")


def tiny_lm(tokenizer, context: int = 16, seed: int = 0) -> GenomicLM:
    torch.manual_seed(seed)
    from glm.config import ModelConfig

    config = ModelConfig(vocab_size=tokenizer.vocab_size, n_layers=2, n_heads=2, width=32, context=context)
    return GenomicLM(Transformer(config).eval(), tokenizer)


@pytest.mark.parametrize(
    "tokenizer,prompt",
    [(KmerTokenizer(3), "ACGTTGCAAGGC"), (CharTokenizer.from_text(PARAGRAPH), "Speak"), (ByteTokenizer(), "héllo")],
)
def test_cached_generation_equals_uncached(tokenizer, prompt: str) -> None:
    lm = tiny_lm(tokenizer)
    # 60 new tokens with a 16-token context: the window restarts several times on the way.
    cached = lm.generate(prompt, max_new_tokens=60, seed=3, top_k=10, top_p=0.9)
    uncached = lm.generate(prompt, max_new_tokens=60, seed=3, top_k=10, top_p=0.9, use_cache=False)
    assert cached == uncached
    assert cached != lm.generate(prompt, max_new_tokens=60, seed=4, top_k=10, top_p=0.9)


def test_dna_generation_gives_bases_and_stops_at_max_bases() -> None:
    lm = tiny_lm(KmerTokenizer(3))
    out = lm.generate("ACGTA", max_new_tokens=100, max_bases=31, seed=0)
    assert len(out) == 31 and set(out) <= set("ACGT")
    assert len(lm.generate("ACGTA", max_new_tokens=7, seed=0)) == 21  # 7 whole 3-mers


def test_max_new_tokens_may_be_given_positionally() -> None:
    lm = tiny_lm(KmerTokenizer(3))
    assert lm.generate("ACGTA", 7, seed=0) == lm.generate("ACGTA", max_new_tokens=7, seed=0)
    assert len(lm.generate("ACGTA", 7, seed=0)) == 21
    assert "".join(lm.generate_stream("ACGTA", 4, seed=1)) == lm.generate("ACGTA", 4, seed=1)
    assert len(lm.generate("ACGTA", seed=0)) == 3 * 200  # the default: generate_pieces' 200 tokens


def test_bad_prompts_give_clear_errors() -> None:
    lm = tiny_lm(KmerTokenizer(3))
    with pytest.raises(InputError, match="prompt: empty"):
        lm.generate("", max_new_tokens=5)
    with pytest.raises(InputError, match=r"prompt: .*invalid base 'Z'"):
        lm.generate("ACGTZAC", max_new_tokens=5)
    with pytest.raises(InputError, match="at least k=3 bases"):
        lm.generate("AC", max_new_tokens=5)


def test_a_misspelt_generation_option_is_named() -> None:
    lm = tiny_lm(KmerTokenizer(3))
    with pytest.raises(InputError, match=r"unknown generation option\(s\) \['max_token'\]; known: .*max_new_tokens"):
        lm.generate_stream("ACGTA", max_token=5)  # before any token is sampled


def test_cli_generate_streams_prompt_and_samples(tmp_path, capsys) -> None:
    from glm.model.checkpoint import export_model

    lm = tiny_lm(KmerTokenizer(2))
    export_model(tmp_path / "model", lm.model, lm.tokenizer)
    code = cli.main(
        ["generate", str(tmp_path / "model"), "--prompt", "ACGT", "--num-samples", "2", "--max-bases", "10"]
    )
    assert code == 0
    samples = capsys.readouterr().out.strip().split("\n---\n")
    assert len(samples) == 2 and all(s.startswith("ACGT") and len(s) == 14 for s in samples)
    code = cli.main(["generate", str(tmp_path / "model"), "--prompt", "AC!T"])
    assert code == 2 and "prompt" in capsys.readouterr().err
