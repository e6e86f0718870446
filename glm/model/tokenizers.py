"""Tokenizers: DNA k-mers for genomes, characters or bytes for text. numpy only.

Every tokenizer shares one interface: `encode(text) -> Encoding` (ids plus, for each token, the
offset of its first base or character in the input), `decode(ids) -> str`, `vocab_size`,
`bases_per_token` (how many new input symbols one token adds, for bits-per-base metrics) and
`to_dict()` / `tokenizer_from_dict()` for the JSON stored beside a model.

Three special tokens come first in every vocabulary:
  PAD (0)  padding; never a training target
  UNK (1)  a k-mer containing N or another IUPAC ambiguity code (or an unknown character);
           never a training target
  SEP (2)  a record separator, written after each FASTA record or text document
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from glm.alphabet import AMBIGUOUS, BASE_CODE, BASES, INVALID, as_bytes
from glm.config import DataConfig
from glm.errors import InputError
from glm.io.files import read_json, read_text, write_json
from glm.io.schema import Fields

PAD, UNK, SEP = 0, 1, 2
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[SEP]")
N_SPECIAL = len(SPECIAL_TOKENS)
NOT_A_TARGET = (PAD, UNK, SEP)
NOT_UTF8_HINT = "; --tokenizer byte reads any bytes"  # what a text that is not UTF-8 can train with


@dataclass
class Encoding:
    """Token ids and where each token starts in the input.

    `offsets[i]` is the index of the first base (or character) of token i, so a genome position
    p inside an encoded window starting at w maps to the token whose span holds p - w.
    `ends[i]` is one past its last base (offsets[i] + k, or less for a tail token), and
    `soft_masked[i]` counts the lowercase (soft-masked) bases inside token i.
    """

    ids: np.ndarray  # (n_tokens,) int64
    offsets: np.ndarray  # (n_tokens,) int64
    ends: np.ndarray  # (n_tokens,) int64
    soft_masked: np.ndarray  # (n_tokens,) uint8

    def new_bases(self) -> np.ndarray:
        """Bases each token adds beyond those of the tokens before it (stride, or k for the first)."""
        covered = np.maximum.accumulate(np.concatenate([[0], self.ends[:-1]])) if len(self.ends) else self.ends
        return self.ends - np.maximum(self.offsets, covered)

    def __len__(self) -> int:
        return len(self.ids)


class Tokenizer(Protocol):
    kind: str
    unit: str  # what one input symbol is called in metrics: base, char or byte
    vocab_size: int
    bases_per_token: float

    def encode(self, text: str | bytes) -> Encoding: ...
    def decode(self, ids: np.ndarray | list[int]) -> str: ...
    def to_dict(self) -> dict[str, Any]: ...


def encode_in_chunks(tokenizer: Tokenizer, sequence: str, chunk: int = 1 << 20) -> Iterator[Encoding]:
    """Encode a long sequence piece by piece, giving exactly the tokens of `tokenizer.encode(sequence)`.

    Keeps the temporary arrays of encoding small (a few times `chunk`) however long the input.
    Offsets in each piece are relative to that piece's first base.
    """
    k, stride = getattr(tokenizer, "k", 1), getattr(tokenizer, "stride", 1)
    chunk = max(chunk // stride, 1) * stride  # pieces start on a token boundary
    start = 0
    while True:
        overhang = start + chunk + k - stride  # the last token starting in this piece ends here
        if overhang >= len(sequence):
            yield tokenizer.encode(sequence[start:])
            return
        yield tokenizer.encode(sequence[start:overhang])
        start += chunk


MAX_K = 8  # the longest k-mer a token may be


class KmerTokenizer:
    """DNA k-mers of length k taken every `stride` bases (stride = k: non-overlapping).

    Vocabulary: the 3 special tokens, then every k-mer, then every shorter l-mer (l = k-1 .. 1)
    for the tail of a sequence whose length is not a multiple of the stride, so no base is
    dropped. Upper and lower case give the same ids; lowercase is reported in `soft_masked`.
    A k-mer with any N or IUPAC ambiguity code becomes UNK.
    """

    kind = "kmer"
    unit = "base"  # metrics are bits per base

    def __init__(self, k: int = 1, stride: int | None = None):
        if not 1 <= k <= MAX_K:
            raise InputError(f"k must be between 1 and {MAX_K}, got {k}")
        stride = k if stride is None else stride
        if not 1 <= stride <= k:
            raise InputError(f"stride must be between 1 and k={k}, got {stride}")
        self.k, self.stride = k, stride
        # First id of the l-mers, for l = k, k-1, ..., 1.
        self._first_id = {}
        next_id = N_SPECIAL
        for length in range(k, 0, -1):
            self._first_id[length] = next_id
            next_id += 4**length
        self.vocab_size = next_id
        self.bases_per_token = float(stride)
        self._strings: list[str] | None = None
        self._rc_table: np.ndarray | None = None

    def __repr__(self) -> str:
        return f"KmerTokenizer(k={self.k}, stride={self.stride})"

    def token_starts(self, length: int) -> np.ndarray:
        """Offsets of the tokens of a sequence of `length` bases (the last may be shorter than k)."""
        if length == 0:
            return np.zeros(0, dtype=np.int64)
        n_tokens = 1 + -(-max(length - self.k, 0) // self.stride)
        return np.arange(n_tokens, dtype=np.int64) * self.stride

    def encode(self, sequence: str | bytes) -> Encoding:
        raw = np.frombuffer(as_bytes(sequence), dtype=np.uint8)
        codes = BASE_CODE[raw]
        bad = np.flatnonzero(codes == INVALID)
        if len(bad):
            position = int(bad[0])
            raise InputError(f"sequence: invalid base {chr(raw[position])!r} at position {position}")
        length = len(codes)
        starts = self.token_starts(length)
        ends = np.minimum(starts + self.k, length)
        n_full = (length - self.k) // self.stride + 1 if length >= self.k else 0  # full k-mers, then the tail
        ids = np.empty(len(starts), dtype=np.int64)
        ids[:n_full] = self._kmer_ids(codes, 0, n_full, self.k)
        soft_masked = np.zeros(len(starts), dtype=np.uint8)
        lowercase = (raw >= ord("a")).view(np.uint8)
        for j in range(self.k):  # base j of every full token: one strided view, no gather
            soft_masked[:n_full] += lowercase[j : j + n_full * self.stride : self.stride]
        for i in range(n_full, len(starts)):  # at most k / stride tail tokens
            start, end = int(starts[i]), int(ends[i])
            ids[i] = self._kmer_ids(codes, start, 1, end - start)[0]
            soft_masked[i] = lowercase[start:end].sum()
        return Encoding(ids=ids, offsets=starts, ends=ends, soft_masked=soft_masked)

    def _kmer_ids(self, codes: np.ndarray, first: int, count: int, length: int) -> np.ndarray:
        """Ids of the `count` l-mers (l = `length`) starting at first, first + stride, ..."""
        value = np.zeros(count, dtype=np.int32)
        unknown = np.zeros(count, dtype=bool)
        for j in range(length):
            base = codes[first + j : first + j + count * self.stride : self.stride]
            ambiguous = base == AMBIGUOUS
            unknown |= ambiguous
            value = value * 4 + np.where(ambiguous, 0, base)
        return np.where(unknown, UNK, self._first_id[length] + value.astype(np.int64))

    def kmer_ids(self, length: int | None = None) -> range:
        """The ids of all l-mers of one length (default: the full k-mers)."""
        length = self.k if length is None else length
        return range(self._first_id[length], self._first_id[length] + 4**length)

    def token_string(self, token_id: int) -> str:
        """The bases of one token ('N' * k for UNK, '' for PAD and SEP)."""
        if self._strings is None:
            self._strings = self._all_strings()
        return self._strings[token_id]

    def _all_strings(self) -> list[str]:
        strings = ["", "N" * self.k, ""]
        for length in range(self.k, 0, -1):
            codes = np.arange(4**length)
            digits = [(codes // 4 ** (length - 1 - j)) % 4 for j in range(length)]
            strings += ["".join(BASES[d[i]] for d in digits) for i in range(4**length)]
        return strings

    def decode(self, ids: np.ndarray | list[int]) -> str:
        """Bases of a token sequence, merging overlaps when stride < k. UNK decodes as N."""
        pieces, covered = [], 0  # covered: bases written so far, relative to the first token
        position = 0
        for token_id in (int(i) for i in ids):
            if token_id in (PAD, SEP):
                continue
            bases = self.token_string(token_id)
            pieces.append(bases[covered - position :])
            covered = max(covered, position + len(bases))
            position += self.stride
        return "".join(pieces)

    def reverse_complement_table(self) -> np.ndarray:
        """`table[id]` is the id of the reverse complement of token `id` (specials map to themselves).

        Reverse-complementing a non-overlapping tokenized window is `table[ids[::-1]]`.
        """
        if self._rc_table is None:
            table = np.arange(self.vocab_size, dtype=np.int64)
            for length in range(self.k, 0, -1):
                codes = np.arange(4**length)
                reverse = np.zeros_like(codes)
                for j in range(length):  # digit j of the k-mer becomes digit length-1-j, complemented
                    digit = (codes // 4 ** (length - 1 - j)) % 4
                    reverse += (3 - digit) * 4**j
                first = self._first_id[length]
                table[first : first + 4**length] = first + reverse
            self._rc_table = table
        return self._rc_table

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "k": self.k, "stride": self.stride, "vocab_size": self.vocab_size}


class ByteTokenizer:
    """UTF-8 bytes: any text round-trips exactly."""

    kind = "byte"
    unit = "byte"
    bases_per_token = 1.0

    def __init__(self) -> None:
        self.vocab_size = N_SPECIAL + 256

    def encode(self, text: str | bytes) -> Encoding:
        raw = np.frombuffer(text.encode("utf-8") if isinstance(text, str) else text, dtype=np.uint8)
        ids = raw.astype(np.int64) + N_SPECIAL
        return _one_per_symbol(ids)

    def decode(self, ids: np.ndarray | list[int]) -> str:
        data = bytes(int(i) - N_SPECIAL for i in ids if int(i) >= N_SPECIAL)
        return data.decode("utf-8", errors="replace")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "vocab_size": self.vocab_size}


class CharTokenizer:
    """Characters of a fixed alphabet (built from training text); other characters become UNK."""

    kind = "char"
    unit = "char"
    bases_per_token = 1.0

    def __init__(self, alphabet: str):
        if len(set(alphabet)) != len(alphabet):
            raise InputError("char tokenizer: alphabet has repeated characters")
        self.alphabet = alphabet
        self._index = {char: N_SPECIAL + i for i, char in enumerate(alphabet)}
        self.vocab_size = N_SPECIAL + len(alphabet)

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        return cls("".join(sorted(set(text))))

    def encode(self, text: str | bytes) -> Encoding:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        # Characters outside the training alphabet become UNK (never a target, decoded as U+FFFD).
        ids = np.array([self._index.get(char, UNK) for char in text], dtype=np.int64)
        return _one_per_symbol(ids)

    def decode(self, ids: np.ndarray | list[int]) -> str:
        out = []
        for token_id in (int(i) for i in ids):
            if token_id == UNK:
                out.append("\ufffd")
            elif token_id >= N_SPECIAL:
                out.append(self.alphabet[token_id - N_SPECIAL])
        return "".join(out)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "alphabet": self.alphabet, "vocab_size": self.vocab_size}


def _one_per_symbol(ids: np.ndarray) -> Encoding:
    offsets = np.arange(len(ids), dtype=np.int64)
    return Encoding(ids=ids, offsets=offsets, ends=offsets + 1, soft_masked=np.zeros(len(ids), np.uint8))


def require_dna(tokenizer: Tokenizer, what: str) -> KmerTokenizer:
    """The tokenizer of a DNA model, or an InputError: `what` (variant scoring, a variant head, bits per
    base of a FASTA) reads genomes, which a text model would see as unknown characters, not bases."""
    if not isinstance(tokenizer, KmerTokenizer):
        raise InputError(f"{what} needs a DNA model (k-mer tokenizer); this model reads {tokenizer.unit}s")
    return tokenizer


def tokenizer_from_dict(values: Any, source: str | Path = "tokenizer") -> Tokenizer:
    """Rebuild a tokenizer from `to_dict()` output (checked field by field), and check the stored vocabulary size."""
    fields = Fields(values, source)
    kind = fields.string("kind", choices=("kmer", "byte", "char"))
    try:
        if kind == "kmer":
            tokenizer: Tokenizer = KmerTokenizer(fields.integer("k"), fields.integer("stride"))
        elif kind == "byte":
            tokenizer = ByteTokenizer()
        else:
            tokenizer = CharTokenizer(fields.string("alphabet"))
    except InputError as error:
        raise InputError(error.message, error.path or source) from None
    stored = fields.integer("vocab_size", None)
    if stored is not None and stored != tokenizer.vocab_size:
        fields.problem("vocab_size", f"{stored} does not match the {kind} tokenizer's {tokenizer.vocab_size}")
    return tokenizer


def save_tokenizer(tokenizer: Tokenizer, path: str | Path) -> None:
    write_json(path, tokenizer.to_dict())


def load_tokenizer(path: str | Path) -> Tokenizer:
    return tokenizer_from_dict(read_json(path), source=path)


def build_tokenizer(data: DataConfig, text_path: str | Path | None = None) -> Tokenizer:
    """The tokenizer a data config asks for; a char vocabulary is built from the whole text (nanoGPT's way)."""
    if data.tokenizer == "kmer":
        return KmerTokenizer(data.k, data.stride)
    if data.tokenizer == "byte":
        return ByteTokenizer()
    assert text_path is not None, "a char tokenizer is built from its text"
    return CharTokenizer.from_text(read_text(text_path, hint=NOT_UTF8_HINT))
