"""GenomicLM: the Python face of a trained model. Imports no Lightning.

    lm = glm.load("runs/lambda_virus/model")
    lm.log_likelihood("ACGTACGT...")          # total log-likelihood (nats) and bits per base
    lm.embed(["ACGT...", "GGCA..."], layer=-1, pooling="mean")   # (2, width) array
    lm.evaluate("genome.fa")                  # bits per base for each record and overall
    lm.generate("ATGAAACGC", max_bases=300, seed=1)   # a sampled continuation
    lm.score_variants("variants.vcf.gz", "genome.fa")    # zero-shot variant scores (glm.scoring)
    lm.mutagenesis("genome.fa", "chr1:1000-1100")       # every SNV of a region

Every sequence is scored after a leading SEP token (the record separator the model saw before
each record in training), so its first token is predicted too. Sequences longer than the
model's context are processed in sliding windows that advance by half a context; every token
is scored (or embedded) in the window that gives it the most preceding context, at least half a
context once the sequence is that long. Windows run in batches of `batch_size`, so memory stays
bounded however long the input.
"""

from __future__ import annotations

import codecs
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from glm.checkpoint import load_model
from glm.errors import InputError
from glm.generation import sample_tokens
from glm.genome import Genome, parse_region, read_fasta, reverse_complement
from glm.model import Transformer
from glm.scoring import VariantScores, mutagenesis_variants, score_variants
from glm.tokenizers import N_SPECIAL, NOT_A_TARGET, PAD, SEP, Encoding, Tokenizer

POOLINGS = ("mean", "max", "last")
STRANDS = ("forward", "both")


@dataclass
class LogLikelihood:
    """Log-likelihood of one sequence: `total` in nats over `bases` scored bases (N excluded)."""

    total: float
    bases: int

    @property
    def bits_per_base(self) -> float:
        return -self.total / math.log(2) / self.bases if self.bases else math.nan


@dataclass
class _Window:
    sequence: int  # which input sequence
    start: int  # first token of the window in that sequence's token list
    keep_from: int  # positions before this are covered by an earlier window


def plan_windows(n_tokens: int, window: int) -> list[tuple[int, int]]:
    """(start, keep_from) for sliding windows of `window` tokens advancing by half a window.

    Each position p >= 0 of the token list is kept from exactly one window: the first window
    keeps everything it holds, each later one only the positions no earlier window kept.
    """
    if n_tokens <= window:
        return [(0, 0)]
    step = max(window // 2, 1)
    plan, covered, start = [(0, 0)], window, 0
    while covered < n_tokens:
        start = min(start + step, n_tokens - window)
        plan.append((start, covered))
        covered = start + window
    return plan


class GenomicLM:
    """A trained causal DNA (or text) language model with its tokenizer."""

    def __init__(
        self, model: Transformer, tokenizer: Tokenizer, info: dict[str, Any] | None = None, batch_size: int = 16
    ):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.info = info or {}
        self.batch_size = batch_size

    @classmethod
    def load(cls, directory: str | Path, device: str | None = None) -> GenomicLM:
        """Load an exported model directory (`runs/NAME/model`). Device: 'cuda' when present, else 'cpu'."""
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        model, tokenizer, config = load_model(directory, device)
        return cls(model, tokenizer, config.get("info", {}))

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def context(self) -> int:
        return self.model.config.context

    def __repr__(self) -> str:
        return f"GenomicLM({self.model.num_parameters():,} parameters, {self.tokenizer!r}, context {self.context})"

    def encode(self, sequence: str) -> tuple[Encoding, np.ndarray]:
        """The encoding of `sequence` and its token ids with the leading SEP."""
        if not sequence:
            raise InputError("sequence: empty input sequence")
        try:
            encoding = self.tokenizer.encode(sequence)
        except InputError as error:
            raise InputError(f"{error} (in an input sequence of length {len(sequence)})") from None
        return encoding, np.concatenate([[SEP], encoding.ids])

    def log_likelihood(
        self, sequences: str | Sequence[str], progress: bool = False
    ) -> LogLikelihood | list[LogLikelihood]:
        """log P(sequence) under the model, summed over every scored base (N and IUPAC excluded).

        Returns one LogLikelihood for a string, a list for a list of strings.
        """
        single = isinstance(sequences, str)
        items = [sequences] if single else list(sequences)
        encodings = [self.encode(sequence) for sequence in items]
        totals = [0.0] * len(items)
        for index, start, keep_from, log_probs in self._windows([ids for _, ids in encodings], "log_probs", progress):
            ids = encodings[index][1]
            positions = np.arange(max(keep_from, 1), start + len(log_probs) + 1)  # target positions in ids
            scored = ~np.isin(ids[positions], NOT_A_TARGET)
            totals[index] += float(log_probs[positions - start - 1][scored].sum())
        results = []
        for (encoding, ids), total in zip(encodings, totals):
            scored = ~np.isin(ids[1:], NOT_A_TARGET)
            results.append(LogLikelihood(total=total, bases=int(encoding.new_bases()[scored].sum())))
        return results[0] if single else results

    def embed(
        self,
        sequences: str | Sequence[str],
        layer: int = -1,
        pooling: str = "mean",
        strands: str = "forward",
        progress: bool = False,
    ) -> np.ndarray:
        """Pooled hidden states, shape (n_sequences, width) (or (width,) for one string).

        layer: 0 is the token embedding, i the output of block i, -1 the final (normed) layer.
        pooling: "mean" or "max" over the sequence's tokens, or "last" (the final token).
        strands: "forward", or "both" to average the pooled vectors of the sequence and of its
        reverse complement (DNA models only), so a sequence and its reverse complement embed alike.
        A sequence longer than the context is embedded in sliding windows advancing by half a
        context (see the module docstring): each token's state comes from exactly one window, so
        mean pooling is over every token once, max over all, and "last" is the final token's state
        with at least half a context before it.
        """
        if pooling not in POOLINGS:
            raise InputError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
        if strands not in STRANDS:
            raise InputError(f"strands must be one of {', '.join(STRANDS)}, got {strands!r}")
        if strands == "both" and self.tokenizer.kind != "kmer":
            raise InputError("strands='both' needs a DNA model (reverse complements of text do not exist)")
        n_states = self.model.config.n_layers + 1
        if not -n_states <= layer < n_states:
            raise InputError(f"layer must be in [{-n_states}, {n_states - 1}] for this model, got {layer}")
        single = isinstance(sequences, str)
        items = [sequences] if single else list(sequences)
        if strands == "both":
            pooled = self._embed_pooled(items + [reverse_complement(s) for s in items], layer, pooling, progress)
            pooled = (pooled[: len(items)] + pooled[len(items) :]) / 2
        else:
            pooled = self._embed_pooled(items, layer, pooling, progress)
        return pooled[0] if single else pooled

    def _embed_pooled(self, items: list[str], layer: int, pooling: str, progress: bool) -> np.ndarray:
        """(len(items), width) pooled states of one layer; see `embed`."""
        token_lists = [self.encode(sequence)[1] for sequence in items]
        width = self.model.config.width
        pooled = np.zeros((len(items), width), dtype=np.float32)
        if pooling == "max":
            pooled[:] = -np.inf
        for index, start, keep_from, states in self._windows(token_lists, layer, progress):
            keep = states[max(keep_from, 1) - start :]  # position 0 is the leading SEP: not pooled
            if pooling == "mean":
                pooled[index] += keep.sum(axis=0)
            elif pooling == "max":
                pooled[index] = np.maximum(pooled[index], keep.max(axis=0, initial=-np.inf))
            elif start + len(states) == len(token_lists[index]):
                pooled[index] = states[-1]
        if pooling == "mean":
            pooled /= np.array([max(len(ids) - 1, 1) for ids in token_lists], dtype=np.float32)[:, None]
        return pooled

    def evaluate(self, fasta: str | Path, progress: bool = True) -> list[tuple[str, int, float]]:
        """(record name, scored bases, bits per base) for each record, then ("overall", ...)."""
        rows, total, bases = [], 0.0, 0
        for record in read_fasta(fasta):
            result = self.log_likelihood(record.sequence, progress=progress)
            rows.append((record.name, result.bases, result.bits_per_base))
            total, bases = total + result.total, bases + result.bases
        rows.append(("overall", bases, LogLikelihood(total, bases).bits_per_base))
        return rows

    def score_variants(
        self,
        variants: str | os.PathLike[str] | Iterable[Any],
        genome: str | os.PathLike[str] | Genome,
        method: str | Sequence[str] = "llr",
        window: int | None = None,
        strands: str = "both",
        layer: int = -1,
        batch_size: int | None = None,
        aliases: dict[str, str] | None = None,
        on_ref_mismatch: str = "error",
        head: str | os.PathLike[str] | Any = None,
        progress: bool = False,
    ) -> VariantScores:
        """Zero-shot scores of variants (a VCF/TSV/CSV path or Python rows) against a genome FASTA.

        method: "llr" (log P(alt) - log P(ref) in nats; negative = alt less likely, predicted more
        damaging), "embedding" (cosine and L2 distances) or both as a list. strands="both" averages
        the forward and reverse-complement scores. head: a variant head directory (or Head) from
        `fit-head`, adding a head_probability column. Returns a VariantScores table in input
        order (`.to_pandas()`, `.write("out.vcf.gz")`). See glm.scoring for the windows.
        """
        if isinstance(head, (str, os.PathLike)):
            from glm.variant_heads import load_head  # noqa: PLC0415 - scikit-learn only when a head is used

            head = load_head(head)
        return score_variants(
            self.model,
            self.tokenizer,
            variants,
            genome,
            method=method,
            window=window,
            strands=strands,
            layer=layer,
            batch_size=batch_size or self.batch_size,
            aliases=aliases,
            on_ref_mismatch=on_ref_mismatch,
            head=head,
            progress=progress,
        )

    def mutagenesis(
        self, genome: str | os.PathLike[str] | Genome, region: str, progress: bool = False, **options: Any
    ) -> VariantScores:
        """Score every SNV of `region` ("chr:start-end", 1-based inclusive): three per base, none at N.

        Options are those of `score_variants` (method, window, strands, batch_size, ...).
        """
        genome = genome if isinstance(genome, Genome) else Genome(genome)
        variants = mutagenesis_variants(genome, *parse_region(region, genome))
        return self.score_variants(variants, genome, progress=progress, **options)

    def generate(self, prompt: str, **options: Any) -> str:
        """Sample a continuation of `prompt` (bases for DNA, text for text models); returns only the new part.

        Options (see `generate_stream`): max_new_tokens (tokens; a 3-mer model adds 3 bases per
        token), temperature (0 is greedy), top_k, top_p, seed, max_bases (stop at exactly that
        many new bases or characters), use_cache. A fixed seed gives the same output with and
        without the key/value cache.
        """
        return "".join(self.generate_stream(prompt, **options))

    def generate_stream(
        self,
        prompt: str,
        max_new_tokens: int = 200,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        max_bases: int | None = None,
        use_cache: bool = True,
    ) -> Iterator[str]:
        """Sample a continuation of `prompt`, yielding each new piece of text as soon as it is sampled.

        max_new_tokens counts tokens; max_bases stops at exactly that many new bases (or
        characters). temperature 0 is greedy; top_k and top_p restrict sampling to the most likely
        tokens; a fixed seed gives the same output with and without the key/value cache.
        A DNA prompt is conditioned on from its last whole k-mer backwards: up to k-1 leading bases
        are left out of the conditioning, so the continuation starts right after the prompt. The
        prompt is conditioned on as it is, without the record separator that `log_likelihood` puts
        first (training windows start anywhere in a record, so a prompt is usually mid-record).
        """
        tokenizer = self.tokenizer
        if not prompt:
            raise InputError("prompt: empty; give at least one base (or character) to continue from")
        allowed = torch.zeros(tokenizer.vocab_size, dtype=torch.bool)
        if tokenizer.kind == "kmer":
            if tokenizer.stride != tokenizer.k:
                raise InputError("generation needs non-overlapping k-mers (a model trained with stride = k)")
            prompt = prompt[len(prompt) % tokenizer.k :]
            if not prompt:
                raise InputError(f"prompt: at least k={tokenizer.k} bases are needed to continue from")
            allowed[list(tokenizer.kmer_ids())] = True  # whole k-mers only: no specials, no tails
        else:
            allowed[N_SPECIAL:] = True
        try:
            prompt_ids = tokenizer.encode(prompt).ids  # no leading SEP: a prompt need not start a record
        except InputError as error:
            raise InputError(f"prompt: {error}") from None
        decoder = codecs.getincrementaldecoder("utf-8")("replace") if tokenizer.kind == "byte" else None
        produced = 0
        for token in sample_tokens(
            self.model, prompt_ids.tolist(), max_new_tokens, allowed, temperature, top_k, top_p, seed, use_cache
        ):
            piece = decoder.decode(bytes([token - N_SPECIAL])) if decoder else tokenizer.decode([token])
            if max_bases is not None and produced + len(piece) >= max_bases:
                yield piece[: max_bases - produced]
                return
            produced += len(piece)
            yield piece

    @torch.inference_mode()
    def _windows(
        self, token_lists: list[np.ndarray], output: str | int, progress: bool
    ) -> Iterator[tuple[int, int, int, np.ndarray]]:
        """Run the model over sliding windows of every token list, in batches.

        Yields (sequence index, window start, keep_from, values) where values are, for
        output="log_probs", log P(token[t] | earlier tokens in the window) for t = start+1 ..
        start+len, and for an integer output, that layer's hidden states of the window.
        """
        window = self.context + 1
        jobs = [
            _Window(index, start, keep_from)
            for index, ids in enumerate(token_lists)
            for start, keep_from in plan_windows(len(ids), window)
        ]
        batches = range(0, len(jobs), self.batch_size)
        for first in tqdm(batches, desc="windows", unit="batch", disable=not progress or len(batches) < 2):
            batch = jobs[first : first + self.batch_size]
            pieces = [token_lists[job.sequence][job.start : job.start + window] for job in batch]
            longest = max(len(piece) for piece in pieces)
            ids = np.full((len(pieces), longest), PAD, dtype=np.int64)
            for row, piece in enumerate(pieces):
                ids[row, : len(piece)] = piece  # padding goes after: causal, so it changes nothing
            ids_tensor = torch.from_numpy(ids).to(self.device)
            if output == "log_probs":
                values = self.model.token_log_probs(ids_tensor).cpu().numpy()
                trim = [len(piece) - 1 for piece in pieces]
            else:
                values = self.model.hidden_states(ids_tensor)[int(output)].float().cpu().numpy()
                trim = [len(piece) for piece in pieces]
            for row, job in enumerate(batch):
                yield job.sequence, job.start, job.keep_from, values[row, : trim[row]]


def load(directory: str | Path, device: str | None = None) -> GenomicLM:
    """Load an exported model directory. See GenomicLM."""
    return GenomicLM.load(directory, device)
