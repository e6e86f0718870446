"""The DNA alphabet: which characters are bases, which are IUPAC ambiguity codes, and complements.

Shared by the FASTA readers (validation), the tokenizers (base codes) and the k-mer features, so
that every part of glm agrees on what a base is. numpy only.
"""

from __future__ import annotations

import numpy as np

from glm.errors import InputError

BASES = "ACGT"
IUPAC_AMBIGUOUS = "NRYKMSWBDHV"
INVALID, AMBIGUOUS = 255, 4  # base codes of a character that is not a nucleotide, and of N or IUPAC

# Byte -> base code: A/C/G/T (either case, U as T) -> 0..3, IUPAC ambiguity -> 4, else invalid.
BASE_CODE = np.full(256, INVALID, dtype=np.uint8)
for _code, _base in enumerate(BASES):
    BASE_CODE[ord(_base)] = BASE_CODE[ord(_base.lower())] = _code
BASE_CODE[ord("U")] = BASE_CODE[ord("u")] = 3
for _base in IUPAC_AMBIGUOUS:
    BASE_CODE[ord(_base)] = BASE_CODE[ord(_base.lower())] = AMBIGUOUS

_COMPLEMENT = str.maketrans("ACGTUNRYKMSWBDHVacgtunrykmswbdhv", "TGCAANYRMKSWVHDBtgcaanyrmkswvhdb")


def reverse_complement(sequence: str) -> str:
    """Reverse complement, IUPAC-aware and case-preserving."""
    return sequence.translate(_COMPLEMENT)[::-1]


def as_bytes(text: str | bytes) -> bytes:
    """ASCII bytes of a sequence; a non-ASCII character is an InputError naming its position."""
    if isinstance(text, bytes):
        return text
    try:
        return text.encode("ascii")
    except UnicodeEncodeError as error:
        raise InputError(f"sequence: non-ASCII character {text[error.start]!r} at position {error.start}") from None


def base_codes(sequence: str | bytes) -> np.ndarray:
    """Base code of every character (0-3 for A/C/G/T, AMBIGUOUS, or INVALID), uint8."""
    return BASE_CODE[np.frombuffer(as_bytes(sequence), dtype=np.uint8)]


def find_invalid_base(sequence: str | bytes, chunk: int = 1 << 22) -> int | None:
    """Index of the first character that is not a nucleotide or IUPAC code, or None."""
    for start in range(0, len(sequence), chunk):
        bad = np.flatnonzero(base_codes(sequence[start : start + chunk]) == INVALID)
        if len(bad):
            return start + int(bad[0])
    return None
