"""The data of one pretraining run: its inputs -> genomes, token stores, genome tokens, window, weights.

`read_inputs` reads the run's genomes (files, folders, a manifest), which of them data.holdout_genomes
keeps out of training, and each one's format (FASTA or text, told by content); `prepare_data` makes
(or opens from the cache) every genome's token store and gathers them in a `RunData` with the
genome tokens, the training window length and the share of windows each trained genome gets.
glm.training.pretrain runs these steps before the Trainer's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from glm.config import Config
from glm.errors import InputError
from glm.io.corpus import CorpusEntry, read_corpus
from glm.io.fasta import is_fasta
from glm.io.files import first_line
from glm.model.genome_tags import GenomeTags, tag_names
from glm.model.tokenizers import Tokenizer
from glm.training.data import TokenStore, prepare
from glm.training.windows import sampling_weights

MIN_WINDOW = 8  # tokens; a genome shorter than this cannot train anything


def input_format(path: str | Path, config: Config) -> str:
    """'fasta' or 'text': data.format, or (auto) from the file's content, never from its name."""
    found = config.data.format
    if found == "auto":
        found = "fasta" if is_fasta(path) else "text"
    tokenizer = config.data.tokenizer
    if found == "text" and tokenizer == "kmer":
        raise InputError(
            "expected a FASTA header line starting with '>' (to train on text instead, use --tokenizer char "
            "or byte, or --config text)",
            path,
            first_line(path)[0],
        )
    if found == "fasta" and tokenizer != "kmer" and config.data.format == "auto":
        raise InputError(f"this is FASTA; --tokenizer {tokenizer} trains on text (add --format text to force)", path)
    return found


@dataclass
class RunData:
    """The data of one run: its genomes, their token stores and how training windows are drawn."""

    entries: list[CorpusEntry]
    held_out: list[bool]  # per genome: kept out of training, only validated
    stores: list[TokenStore]  # one per genome
    tokenizer: Tokenizer
    tags: GenomeTags | None  # one token per genome (data.genome_tokens), else None
    window: int  # tokens per training window: context + 1, less for a genome shorter than that
    weights: np.ndarray  # the share of training windows of each trained genome

    @property
    def names(self) -> list[str]:
        return [entry.name for entry in self.entries]

    @property
    def lost(self) -> list[str]:
        """The names of the genomes held out of training."""
        return [name for name, out in zip(self.names, self.held_out) if out]

    @property
    def trained(self) -> list[TokenStore]:
        return [store for store, out in zip(self.stores, self.held_out) if not out]


def read_inputs(
    inputs: str | Path | Sequence[str | Path], corpus: str | Path | None, config: Config
) -> tuple[list[CorpusEntry], list[bool], list[str]]:
    """The run's genomes, which are held out of training, and the format of each ('fasta' or 'text')."""
    entries = read_corpus([inputs] if isinstance(inputs, (str, Path)) else list(inputs), corpus)
    held_out = _held_out(entries, config)
    formats = [input_format(entry.path, config) for entry in entries]
    if "text" in formats and len(entries) > 1:
        raise InputError("a text run takes one text file; several inputs must all be FASTA", entries[1].path)
    return entries, held_out, formats


def prepare_data(
    entries: list[CorpusEntry],
    held_out: list[bool],
    formats: list[str],
    tokenizer: Tokenizer,
    config: Config,
    progress: bool,
    say: Callable[[str], Any],
) -> RunData:
    """Token stores of every genome, genome tokens, the window length and the sampling weights."""
    stores = [  # each validated and cached on its own: a bad file names itself, the others stay cached
        prepare(
            entry.path,
            tokenizer,
            config.data.resolved_cache_dir(),
            split=config.data.split,
            val_fraction=config.data.val_fraction,
            progress=progress,
            input_format=fmt,
        )
        for entry, fmt in zip(entries, formats)
    ]
    trained = [store for store, out in zip(stores, held_out) if not out]
    tags = _genome_tags(entries, held_out, tokenizer.vocab_size) if config.data.genome_tokens else None
    window = _window_length(stores, entries, config, say, tagged=tags is not None)
    weights = sampling_weights(
        trained, [e.weight for e, out in zip(entries, held_out) if not out], config.data.genome_temperature
    )
    return RunData(entries, held_out, stores, tokenizer, tags, window, weights)


def _held_out(entries: list[CorpusEntry], config: Config) -> list[bool]:
    """Which genomes data.holdout_genomes keeps out of training (an unknown name is an error)."""
    names = [entry.name for entry in entries]
    asked = list(config.data.holdout_genomes or [])
    unknown = [name for name in asked if name not in names]
    if unknown:
        raise InputError(f"holdout_genomes: {unknown} not among the genomes of this run ({', '.join(names)})")
    if len(set(asked)) >= len(names):
        raise InputError("holdout_genomes: at least one genome must be left to train on")
    return [name in asked for name in names]


def _genome_tags(entries: list[CorpusEntry], held_out: list[bool], first_id: int) -> GenomeTags:
    """One token per genome, or per manifest group; a held-out genome must share one with a trained genome."""
    tag_of = tag_names([entry.name for entry in entries], [entry.group for entry in entries])
    trained = {tag_of[entry.name] for entry, out in zip(entries, held_out) if not out}
    for entry, out in zip(entries, held_out):
        if out and tag_of[entry.name] not in trained:
            raise InputError(
                f"holdout_genomes: {entry.name!r} would have a genome token that no training window uses; "
                "with --genome-tokens, give it a manifest group shared with a trained genome"
            )
    return GenomeTags.build(tag_of, first_id)


def _window_length(
    stores: list[TokenStore], entries: list[CorpusEntry], config: Config, say: Callable[[str], Any], tagged: bool
) -> int:
    """Tokens per training window (context + 1), shrunk with a note for a genome shorter than that.

    With genome tokens the tag is one of them, so a genome needs one token less. Validation
    windows are cut to the held-out data by ValidationWindows itself.
    """
    window = config.model.context + 1
    for store, entry in zip(stores, entries):
        if min(store.n_tokens("train"), store.n_tokens("val")) < MIN_WINDOW:
            raise InputError(
                f"too short to train: {store.meta['train_bases']} train and {store.meta['val_bases']} val bases "
                f"give fewer than {MIN_WINDOW} tokens on one side of the split",
                entry.path,
            )
    available = min(store.n_tokens("train") for store in stores) + tagged
    if available < window:
        say(f"note: a genome is shorter than one window; training on windows of {available - 1} tokens")
        window = available
    return window
