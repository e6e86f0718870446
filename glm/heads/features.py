"""Features of sequences for probes: pooled embeddings of a model, or k-mer frequencies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import numpy as np

from glm.alphabet import base_codes
from glm.config import FeatureKind, Pooling, Strands
from glm.errors import InputError, check_choice, choices
from glm.hf.hub_model import load_any
from glm.io.schema import Fields
from glm.model.checkpoint import genome_tags_of, require_untagged
from glm.model.inference import embed


@dataclass
class FeatureSpec:
    """How sequences become probe features: pooled embeddings of a model, or k-mer frequencies."""

    kind: FeatureKind = "embedding"
    model: str | None = None  # exported model directory (embedding)
    layer: int = -1
    pooling: Pooling = "mean"
    strands: Strands = "both"
    k: int = 4  # k-mer lengths 1..k (kmer)

    def validate(self) -> FeatureSpec:
        check_choice("features", self.kind, FeatureKind)
        if self.kind == "embedding" and not self.model:
            raise InputError("embedding features need a model directory")
        check_choice("pooling", self.pooling, Pooling)
        check_choice("strands", self.strands, Strands)
        return self

    @classmethod
    def from_fields(cls, fields: Fields) -> FeatureSpec:
        """The spec saved in a head's info["features"], each field checked (glm.io.schema)."""
        kind = fields.string("kind", choices=choices(FeatureKind))
        return cls(
            kind=kind,  # type: ignore[arg-type]
            model=fields.string("model") if kind == "embedding" else None,  # k-mer features need no model
            layer=fields.integer("layer", -1),
            pooling=fields.string("pooling", "mean", choices=choices(Pooling)),  # type: ignore[arg-type]
            strands=fields.string("strands", "both", choices=choices(Strands)),  # type: ignore[arg-type]
            k=fields.integer("k", 4, minimum=1),
        )


class FeatureCache:
    """Features under one spec, computed once per distinct sequence (folds and splits reuse them).

    Embedding features load the spec's model once (on the GPU when there is one).
    """

    def __init__(self, spec: FeatureSpec):
        self.spec = spec.validate()
        self.model = None
        if spec.kind == "embedding":
            model, tokenizer, config = load_any(spec.model)
            require_untagged(genome_tags_of(config, spec.model), spec.model, "a probe on embeddings")
            self.model = model, tokenizer
        self.rows: dict[str, np.ndarray] = {}
        self.names: list[str] = []

    def __call__(self, sequences: Sequence[str], progress: bool = False) -> np.ndarray:
        missing = list(dict.fromkeys(s for s in sequences if s not in self.rows))
        if missing:
            features, self.names = self._compute(missing, progress)
            self.rows.update(zip(missing, features))
        return np.stack([self.rows[s] for s in sequences])

    def _compute(self, sequences: list[str], progress: bool) -> tuple[np.ndarray, list[str]]:
        """(features (n, d), feature names) of the sequences under the spec."""
        spec = self.spec
        if self.model is None:
            return kmer_features(sequences, spec.k)
        model, tokenizer = self.model
        features = embed(model, tokenizer, sequences, spec.layer, spec.pooling, spec.strands, progress=progress)
        return features.astype(np.float64), [f"layer{spec.layer}_{spec.pooling}_{i}" for i in range(features.shape[1])]


def kmer_features(sequences: Sequence[str], k: int) -> tuple[np.ndarray, list[str]]:
    """Overlapping k-mer frequencies for every length 1..k, (n, 4 + 16 + ... + 4^k), and their names.

    Each length's counts are divided by the number of k-mers of that length in the sequence;
    k-mers holding N or another IUPAC code are not counted.
    """
    if not 1 <= k <= 8:
        raise InputError(f"k-mer length must be 1 to 8, got {k}")
    blocks = []
    for length in range(1, k + 1):
        table = np.zeros((len(sequences), 4**length), dtype=np.float32)
        for row, sequence in enumerate(sequences):
            codes = base_codes(sequence)
            if len(codes) < length:
                continue
            windows = np.lib.stride_tricks.sliding_window_view(codes, length)  # (positions, length)
            valid = (windows < 4).all(axis=1)
            index = (windows[valid] * 4 ** np.arange(length - 1, -1, -1)).sum(axis=1)
            counts = np.bincount(index, minlength=4**length)
            table[row] = counts / max(int(valid.sum()), 1)
        blocks.append(table)
    names = [_kmer_name(i, length) for length in range(1, k + 1) for i in range(4**length)]
    return np.concatenate(blocks, axis=1), names


def _kmer_name(index: int, length: int) -> str:
    return "".join("ACGT"[(index >> (2 * (length - 1 - position))) & 3] for position in range(length))
