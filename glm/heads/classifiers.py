"""Sequence classifiers: one `predict_proba(sequences)` for a frozen probe and for a fine-tuned network.

Two kinds share one directory layout:
  probe      features (glm.heads.features) + a glm.heads.probes Head:
             HEAD_DIR/head.json + head.safetensors (the feature settings, including the model
             directory, are in head.json's info["features"])
  finetuned  the Transformer with a linear layer on its pooled states, trained end to end
             (glm.training.finetune): HEAD_DIR/finetuned.json + classifier.safetensors + model/
             (model/ is an ordinary exported model: glm.load(HEAD_DIR/model) embeds with the
             fine-tuned weights)
Fine-tuned networks see at most `context` tokens: a longer sequence is cut to its central
`context` tokens (the same in training and prediction). Everything here runs without Lightning.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

from glm.alphabet import reverse_complement
from glm.config import Pooling, Strands
from glm.errors import InputError, choices
from glm.heads.features import FeatureCache, FeatureSpec
from glm.heads.probes import HEAD_JSON, Head
from glm.io.files import atomic_directory, atomic_file, read_safetensors, write_json
from glm.io.progress import progress_bar
from glm.io.schema import Fields
from glm.io.sequences import SequenceSet
from glm.model.batching import pad_batch, with_separator
from glm.model.checkpoint import export_model, load_model, resolve_device
from glm.model.tokenizers import PAD, Tokenizer
from glm.model.transformer import Transformer

FINETUNED_JSON, FINETUNED_WEIGHTS, FINETUNED_MODEL = "finetuned.json", "classifier.safetensors", "model"


def classifier_tokens(tokenizer: Tokenizer, sequence: str, context: int) -> np.ndarray:
    """SEP then the sequence's tokens: its central `context` of them when it has more."""
    ids = tokenizer.encode(sequence).ids
    start = max((len(ids) - context) // 2, 0)
    return with_separator(ids[start : start + context])


def encode_batch(tokenizer: Tokenizer, sequences: Sequence[str], context: int) -> torch.Tensor:
    """(batch, tokens) ids of `classifier_tokens` for each sequence, PAD after the shorter ones."""
    return torch.from_numpy(pad_batch([classifier_tokens(tokenizer, s, context) for s in sequences]))


class SequenceClassifierNet(nn.Module):
    """A Transformer whose pooled hidden states (one layer) feed a linear layer: ids -> class logits.

    Pooling matches GenomicLM.embed: over the tokens after the leading SEP, padding excluded.
    """

    def __init__(self, backbone: Transformer, n_classes: int, layer: int = -1, pooling: str = "mean"):
        super().__init__()
        self.backbone, self.layer, self.pooling = backbone, layer, pooling
        self.classifier = nn.Linear(backbone.config.width, n_classes)

    def pooled(self, ids: torch.Tensor) -> torch.Tensor:
        states = self.backbone.hidden_states(ids)[self.layer]  # (batch, time, width)
        valid = (ids != PAD).clone()
        valid[:, 0] = False  # the leading SEP is context, not content
        mask = valid.unsqueeze(-1).to(states.dtype)
        if self.pooling == "mean":
            return (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        if self.pooling == "max":
            return states.masked_fill(~valid.unsqueeze(-1), float("-inf")).max(dim=1).values
        last = valid.sum(dim=1)  # index of the last real token (SEP is at 0)
        return states[torch.arange(len(ids), device=ids.device), last]

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pooled(ids).float())


class ProbeClassifier:
    """A glm.heads probe on sequence features (embeddings of a model, or k-mer frequencies)."""

    def __init__(self, head: Head, features: FeatureCache):
        self.head, self.classes, self.info = head, head.classes, head.info
        self.features = features

    def predict_proba(self, sequences: Sequence[str], progress: bool = False) -> np.ndarray:
        return self.head.predict_proba(self.features(sequences, progress))

    def save(self, directory: str | Path) -> None:
        self.head.save(directory)


def feature_spec_of(head: Head, source: Path) -> FeatureSpec:
    """The features a sequence probe was fitted on (info.features of its head.json, `source`); a variant head
    is refused."""
    if head.info.get("task") == "variant":
        raise InputError("a variant head (fit-head's: use it with score --head), not a sequence classifier", source)
    return FeatureSpec.from_fields(Fields(head.info, source, "info.").object("features"))


class FinetunedClassifier:
    """A fine-tuned SequenceClassifierNet; with strands="both" the two strands' probabilities are averaged."""

    def __init__(
        self,
        net: SequenceClassifierNet,
        tokenizer: Tokenizer,
        classes: list[str],
        strands: str = "both",
        info: dict[str, Any] | None = None,
    ):
        self.net, self.tokenizer, self.classes, self.strands = net.eval(), tokenizer, classes, strands
        self.info = info or {}
        self.batch_size = 64

    def save(self, directory: str | Path) -> None:
        """Write finetuned.json, classifier.safetensors and model/ atomically: safetensors and JSON only."""
        net = self.net
        settings = {
            "kind": "finetuned",
            "classes": self.classes,
            "layer": net.layer,
            "pooling": net.pooling,
            "strands": self.strands,
            "info": self.info,
        }
        with atomic_directory(directory) as partial:
            export_model(partial / FINETUNED_MODEL, net.backbone, self.tokenizer, {"finetuned_for": self.classes})
            weights = {name: t.detach().cpu().contiguous() for name, t in net.classifier.state_dict().items()}
            save_file(weights, partial / FINETUNED_WEIGHTS)
            write_json(partial / FINETUNED_JSON, settings)

    @torch.inference_mode()
    def predict_proba(self, sequences: Sequence[str], progress: bool = False) -> np.ndarray:
        strands = [list(sequences)]
        if self.strands == "both" and self.tokenizer.kind == "kmer":
            strands.append([reverse_complement(s) for s in sequences])
        device = next(self.net.parameters()).device
        context = self.net.backbone.config.context
        total = np.zeros((len(sequences), len(self.classes)))
        batches = range(0, len(sequences), self.batch_size)
        with progress_bar(len(batches) * len(strands), "classify", "batches", enabled=progress) as bar:
            for strand in strands:
                for first in batches:
                    ids = encode_batch(self.tokenizer, strand[first : first + self.batch_size], context).to(device)
                    total[first : first + len(ids)] += torch.softmax(self.net(ids).float(), dim=-1).cpu().numpy()
                    bar.update(1)
        return total / len(strands)


def load_classifier(directory: str | Path, device: str | None = None) -> ProbeClassifier | FinetunedClassifier:
    """Load a classifier directory written by fit-classifier (its head/ folder, or the folder itself)."""
    directory = Path(directory)
    if (directory / "head").is_dir() and not (directory / HEAD_JSON).exists():
        directory = directory / "head"
    if (directory / HEAD_JSON).is_file():
        head = Head.load(directory)
        return ProbeClassifier(head, FeatureCache(feature_spec_of(head, directory / HEAD_JSON)))
    if not (directory / FINETUNED_JSON).is_file():
        raise InputError(f"not a classifier directory: neither {HEAD_JSON} nor {FINETUNED_JSON} is here", directory)
    settings = Fields.read(directory / FINETUNED_JSON)
    classes = settings.strings("classes", at_least=2)
    layer, pooling = settings.integer("layer"), settings.string("pooling", choices=choices(Pooling))
    strands = settings.string("strands", choices=choices(Strands))
    device = resolve_device(device)
    backbone, tokenizer, _ = load_model(directory / FINETUNED_MODEL, device)
    net = SequenceClassifierNet(backbone, len(classes), layer, pooling)
    try:
        net.classifier.load_state_dict(read_safetensors(directory / FINETUNED_WEIGHTS), strict=True)
    except RuntimeError as error:
        raise InputError(f"classifier weights do not match {FINETUNED_JSON}: {error}", directory) from None
    info = settings.object("info", {}).values
    return FinetunedClassifier(net.to(device), tokenizer, classes, strands, info)


def write_predictions(path: str | Path, sequences: SequenceSet, probabilities: np.ndarray, classes: list[str]) -> None:
    """TSV: name, (label,) predicted class, one probability column per class. Written atomically."""
    labelled = sequences.labels is not None
    with atomic_file(path) as partial, open(partial, "w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(["name", *(["label"] if labelled else []), "predicted", *[f"p_{c}" for c in classes]])
        for row, name in enumerate(sequences.names):
            label = [sequences.labels[row]] if labelled else []
            best = classes[int(probabilities[row].argmax())]
            writer.writerow([name, *label, best, *(f"{p:.6g}" for p in probabilities[row])])
