"""glm's k-mer tokenizer in Hugging Face's format, and a Hub tokenizer's vocabulary read back as glm's.

Export: `write_hub_tokenizer` writes tokenizer.json and tokenizer_config.json that AutoTokenizer
loads and that give glm's ids: a WordLevel vocabulary of glm's tokens (PAD, UNK, SEP, the k-mers,
then the shorter tail l-mers), lowercase bases read as uppercase, the input cut into consecutive
pieces of k characters (the last may be shorter), a piece with N or another IUPAC code -> [UNK],
and [SEP] put first, as glm puts it before every sequence.

Import: `hub_vocabulary` finds the k of a nucleotide- or k-mer-level tokenizer from its vocabulary
(every uppercase k-mer a token) and maps glm's ids onto its ids; the separator glm puts first is
the tokenizer's BOS token (else its EOS, else its SEP). It checks that the tokenizer really cuts
DNA into non-overlapping k-mers by encoding every k-mer and comparing.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from glm.errors import InputError
from glm.hf import transformers_module
from glm.io.files import read_json, write_json
from glm.model.tokenizers import MAX_K, N_SPECIAL, PAD, SEP, SPECIAL_TOKENS, UNK, KmerTokenizer

PAD_TOKEN, UNK_TOKEN, SEP_TOKEN = SPECIAL_TOKENS


def glm_vocabulary(tokenizer: KmerTokenizer) -> dict[str, int]:
    """Token string -> glm id for every token of a k-mer tokenizer."""
    vocabulary = {name: token_id for token_id, name in enumerate(SPECIAL_TOKENS)}
    vocabulary.update((tokenizer.token_string(i), i) for i in range(N_SPECIAL, tokenizer.vocab_size))
    return vocabulary


def write_hub_tokenizer(tokenizer: KmerTokenizer, directory: Path, context: int) -> None:
    """tokenizer.json + tokenizer_config.json in `directory`, tokenising DNA exactly as `tokenizer` does."""
    transformers_module()
    from tokenizers import Regex, decoders, models, normalizers, pre_tokenizers, processors
    from tokenizers import Tokenizer as HubTokenizer
    from transformers import PreTrainedTokenizerFast

    hub = HubTokenizer(models.WordLevel(glm_vocabulary(tokenizer), unk_token=UNK_TOKEN))
    hub.normalizer = normalizers.Sequence([normalizers.Replace(base.lower(), base) for base in "ACGT"])
    hub.pre_tokenizer = pre_tokenizers.Split(Regex(f".{{1,{tokenizer.k}}}"), behavior="isolated")
    hub.post_processor = processors.TemplateProcessing(
        single=f"{SEP_TOKEN} $A", pair=f"{SEP_TOKEN} $A {SEP_TOKEN} $B", special_tokens=[(SEP_TOKEN, SEP)]
    )
    hub.decoder = decoders.Fuse()  # bases back as one string
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=hub,
        model_max_length=context,
        pad_token=PAD_TOKEN,
        unk_token=UNK_TOKEN,
        bos_token=SEP_TOKEN,
        eos_token=SEP_TOKEN,
        sep_token=SEP_TOKEN,
    )
    wrapped.save_pretrained(directory)
    # transformers 5 names its own class here, which 4.x does not have; both load this one.
    settings = read_json(directory / "tokenizer_config.json")
    write_json(directory / "tokenizer_config.json", {**settings, "tokenizer_class": "PreTrainedTokenizerFast"})


@dataclass(frozen=True)
class HubVocabulary:
    """How glm's ids of a k-mer tokenizer map onto a Hub tokenizer's ids."""

    tokenizer: KmerTokenizer  # glm's tokenizer with the Hub one's k
    hub_ids: np.ndarray  # (glm vocab,) the Hub id of each glm id
    separator: int  # the Hub id glm puts first (glm's SEP)
    hub_size: int  # the Hub model's vocabulary size (its logits)


def hub_vocabulary(hub_tokenizer: Any, hub_size: int, source: str | Path) -> HubVocabulary:
    """glm's view of a Hub tokenizer (`AutoTokenizer`'s) whose tokens are DNA k-mers; an InputError otherwise."""
    vocabulary = hub_tokenizer.get_vocab()
    tokenizer = KmerTokenizer(_k_of(vocabulary, source))
    hub_ids = np.empty(tokenizer.vocab_size, dtype=np.int64)
    for name, token_id in glm_vocabulary(tokenizer).items():
        if token_id >= N_SPECIAL:
            if name not in vocabulary:
                raise InputError(f"tokenizer: no token {name!r} for the tail of a sequence (k={tokenizer.k})", source)
            hub_ids[token_id] = vocabulary[name]
    separator = _special_id(hub_tokenizer, ("bos_token", "eos_token", "sep_token"))
    if separator is None:
        raise InputError(
            "tokenizer: no BOS, EOS or SEP token for glm to put before a sequence; set bos_token in "
            "tokenizer_config.json",
            source,
        )
    unknown = vocabulary.get("N" * tokenizer.k, _special_id(hub_tokenizer, ("unk_token",)))
    if unknown is None:
        raise InputError(
            f"tokenizer: no unknown token and no {'N' * tokenizer.k!r} token for N and IUPAC codes", source
        )
    hub_ids[[SEP, UNK]] = separator, unknown
    padding = _special_id(hub_tokenizer, ("pad_token",))
    hub_ids[PAD] = separator if padding is None else padding  # after the tokens: never attended to
    _check_cuts_like_glm(hub_tokenizer, tokenizer, hub_ids, source)
    if hub_ids.max() >= hub_size or separator in hub_ids[N_SPECIAL:]:
        raise InputError(f"tokenizer: its ids do not fit the model's {hub_size} logits", source)
    return HubVocabulary(tokenizer, hub_ids, separator, hub_size)


def _k_of(vocabulary: dict[str, int], source: str | Path) -> int:
    """The largest k such that every uppercase k-mer is a token."""
    whole = [k for k in range(1, MAX_K + 1) if all(kmer in vocabulary for kmer in _all_kmers(k))]
    if not whole:
        raise InputError(
            "tokenizer: the bases A, C, G and T are not all tokens; glm reads models whose tokenizer is "
            "nucleotide- or k-mer-level",
            source,
        )
    return max(whole)


def _all_kmers(k: int) -> Iterator[str]:
    return ("".join(bases) for bases in itertools.product("ACGT", repeat=k))


def _special_id(hub_tokenizer: Any, names: tuple[str, ...]) -> int | None:
    """The id of the first of the named special tokens the tokenizer has."""
    for name in names:
        token = getattr(hub_tokenizer, name, None)
        if token is not None:
            return int(hub_tokenizer.convert_tokens_to_ids(token))
    return None


def _check_cuts_like_glm(hub_tokenizer: Any, tokenizer: KmerTokenizer, hub_ids: np.ndarray, source: str | Path) -> None:
    """An InputError unless the Hub tokenizer encodes every k-mer (then a tail) as glm's tokens would map."""
    probe = "".join(_all_kmers(tokenizer.k)) + "ACGT"[: tokenizer.k - 1]
    theirs = list(hub_tokenizer(probe, add_special_tokens=False, verbose=False)["input_ids"])
    ours = hub_ids[tokenizer.encode(probe).ids].tolist()
    if theirs != ours:
        raise InputError(
            f"tokenizer: does not cut DNA into non-overlapping {tokenizer.k}-mers (it splits "
            f"{probe[:12]!r}... into {hub_tokenizer.convert_ids_to_tokens(theirs[:4])})",
            source,
        )
