from __future__ import annotations

import numpy as np
import pytest

from glm.alphabet import reverse_complement
from glm.errors import InputError
from glm.model.tokenizers import (
    PAD,
    SEP,
    UNK,
    ByteTokenizer,
    CharTokenizer,
    KmerTokenizer,
    encode_in_chunks,
    load_tokenizer,
    save_tokenizer,
)

RNG = np.random.default_rng(0)


def random_dna(length: int) -> str:
    return "".join(RNG.choice(list("ACGT"), size=length))


@pytest.mark.parametrize("k", [1, 2, 3, 4, 6, 8])
@pytest.mark.parametrize("length", [1, 5, 17, 64, 101])
def test_kmer_round_trip_non_overlapping_with_tails(k: int, length: int) -> None:
    tokenizer = KmerTokenizer(k)
    sequence = random_dna(length)
    encoding = tokenizer.encode(sequence)
    assert len(encoding) == -(-length // k)  # the tail shorter than k is its own token
    assert tokenizer.decode(encoding.ids) == sequence
    assert list(encoding.offsets) == list(range(0, length, k))
    assert encoding.new_bases().sum() == length


@pytest.mark.parametrize("k,stride", [(3, 1), (4, 2), (6, 3), (5, 2)])
@pytest.mark.parametrize("length", [3, 7, 30, 31])
def test_kmer_round_trip_overlapping(k: int, stride: int, length: int) -> None:
    tokenizer = KmerTokenizer(k, stride)
    sequence = random_dna(length)
    encoding = tokenizer.encode(sequence)
    assert tokenizer.decode(encoding.ids) == sequence
    assert np.all(np.diff(encoding.offsets) == stride)
    assert encoding.ends[-1] == length  # the last token reaches the end: nothing dropped
    assert encoding.new_bases().sum() == length
    for token_id, start, end in zip(encoding.ids, encoding.offsets, encoding.ends):
        assert tokenizer.token_string(int(token_id)) == sequence[start:end]


def test_kmer_ids_known_values() -> None:
    tokenizer = KmerTokenizer(2)
    # 3 specials, then the 16 2-mers in ACGT order, then the 4 1-mers.
    assert tokenizer.vocab_size == 3 + 16 + 4
    assert list(tokenizer.encode("AAACGTT").ids) == [3 + 0, 3 + 1, 3 + 11, 3 + 16 + 3]
    assert tokenizer.decode([3 + 15]) == "TT"


def test_lowercase_same_ids_and_soft_mask_counts() -> None:
    tokenizer = KmerTokenizer(3)
    upper, lower = tokenizer.encode("ACGTACGTA"), tokenizer.encode("ACgtaCGTa")
    assert np.array_equal(upper.ids, lower.ids)
    assert list(lower.soft_masked) == [1, 2, 1]
    assert list(upper.soft_masked) == [0, 0, 0]


@pytest.mark.parametrize("k,stride", [(1, 1), (3, 3), (4, 2), (6, 1), (8, 8)])
def test_kmer_encoding_equals_one_token_at_a_time(k: int, stride: int) -> None:
    """The vectorised encoder against the definition: each token read on its own."""
    tokenizer = KmerTokenizer(k, stride)
    for length in [0, 1, k - 1, k, k + 1, 97]:
        sequence = "".join(RNG.choice(list("ACGTacgtNR"), size=length))
        encoding = tokenizer.encode(sequence)
        expected_ids, expected_soft = [], []
        for start in tokenizer.token_starts(length):
            bases = sequence[start : start + k]
            if any(base not in "ACGTacgt" for base in bases):
                expected_ids.append(UNK)
            else:
                value = int("".join(str("ACGT".index(base.upper())) for base in bases), 4)
                expected_ids.append(tokenizer.kmer_ids(len(bases))[value])
            expected_soft.append(sum(base.islower() for base in bases))
        assert list(encoding.ids) == expected_ids
        assert list(encoding.soft_masked) == expected_soft
        assert list(encoding.ends - encoding.offsets) == [min(k, length - start) for start in encoding.offsets]


@pytest.mark.parametrize("code", list("NRYKMSWBDHVn"))
def test_iupac_codes_become_unknown(code: str) -> None:
    tokenizer = KmerTokenizer(3)
    encoding = tokenizer.encode(f"ACG{code}TTGGC")
    assert list(encoding.ids == UNK) == [False, True, False]
    assert tokenizer.decode(encoding.ids) == "ACGNNNGGC"  # documented: UNK decodes as N


def test_invalid_characters_raise_with_position() -> None:
    with pytest.raises(InputError, match=r"invalid base '7' at position 4"):
        KmerTokenizer(2).encode("ACGT7A")


def test_bad_k_and_stride() -> None:
    with pytest.raises(InputError, match="k must be between 1 and 8"):
        KmerTokenizer(9)
    with pytest.raises(InputError, match="stride"):
        KmerTokenizer(3, 4)


@pytest.mark.parametrize("k", [1, 3, 4])
def test_reverse_complement_table_matches_sequence_reverse_complement(k: int) -> None:
    tokenizer = KmerTokenizer(k)
    sequence = random_dna(12 * k)  # a multiple of k: token boundaries mirror exactly
    forward, reverse = tokenizer.encode(sequence), tokenizer.encode(reverse_complement(sequence))
    table = tokenizer.reverse_complement_table()
    assert np.array_equal(table[forward.ids[::-1]], reverse.ids)
    assert table[PAD] == PAD and table[UNK] == UNK and table[SEP] == SEP
    assert np.array_equal(table[table], np.arange(tokenizer.vocab_size))  # an involution


def test_kmer_save_load(tmp_path) -> None:
    tokenizer = KmerTokenizer(4, 2)
    save_tokenizer(tokenizer, tmp_path / "tokenizer.json")
    loaded = load_tokenizer(tmp_path / "tokenizer.json")
    assert (loaded.k, loaded.stride, loaded.vocab_size) == (4, 2, tokenizer.vocab_size)
    sequence = random_dna(50)
    assert np.array_equal(loaded.encode(sequence).ids, tokenizer.encode(sequence).ids)


def test_byte_tokenizer_round_trips_any_unicode() -> None:
    text = "naïve café — 日本語 🧬\r\n\x00end"
    tokenizer = ByteTokenizer()
    encoding = tokenizer.encode(text)
    assert len(encoding) == len(text.encode("utf-8"))
    assert tokenizer.decode(encoding.ids) == text


def test_char_tokenizer_round_trip_and_unknown(tmp_path) -> None:
    text = "To be, or not to be: that is the question.\n"
    tokenizer = CharTokenizer.from_text(text)
    assert tokenizer.decode(tokenizer.encode(text).ids) == text
    assert tokenizer.encode("Z").ids[0] == UNK
    save_tokenizer(tokenizer, tmp_path / "t.json")
    assert load_tokenizer(tmp_path / "t.json").alphabet == tokenizer.alphabet


@pytest.mark.parametrize("k,stride", [(1, 1), (3, 3), (4, 2), (6, 1), (5, 3)])
@pytest.mark.parametrize("length", [1, 29, 30, 31, 100, 257])
def test_chunked_encoding_equals_whole_encoding(k: int, stride: int, length: int) -> None:
    tokenizer = KmerTokenizer(k, stride)
    sequence = random_dna(length).lower()[: length // 2] + random_dna(length)[length // 2 :]
    whole = tokenizer.encode(sequence)
    pieces = list(encode_in_chunks(tokenizer, sequence, chunk=30))
    assert np.array_equal(np.concatenate([p.ids for p in pieces]), whole.ids)
    assert np.array_equal(np.concatenate([p.soft_masked for p in pieces]), whole.soft_masked)
    assert len(pieces) == max(1, -(-(length - (k - stride)) // (30 // stride * stride)))


def test_char_tokenizer_round_trips_its_training_text() -> None:
    from conftest import DATA

    text = (DATA / "tinyshakespeare.txt").read_text()
    tokenizer = CharTokenizer.from_text(text)
    assert tokenizer.vocab_size == 3 + 65  # nanoGPT's shakespeare_char vocabulary
    assert tokenizer.decode(tokenizer.encode(text).ids) == text
