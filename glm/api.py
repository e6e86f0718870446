"""GenomicLM: the Python face of a trained model. Imports no Lightning.

    lm = glm.load("runs/lambda_virus/model")
    lm.log_likelihood("ACGTACGT...")          # total log-likelihood (nats) and bits per base
    lm.embed(["ACGT...", "GGCA..."], layer=-1, pooling="mean")   # (2, width) array
    lm.evaluate("genome.fa")                  # bits per base for each record and overall
    lm.generate("ATGAAACGC", max_bases=300, seed=1)   # a sampled continuation
    lm.score_variants("variants.vcf.gz", "genome.fa")    # zero-shot variant scores (glm.scoring)
    lm.mutagenesis("genome.fa", "chr1:1000-1100")       # every SNV of a region

A model trained with genome tokens (pretrain --genome-tokens) conditions on a genome: each of
these takes genome_name="NAME" (one of `lm.genome_names`), and needs it: a tagged model never saw
a window without its genome's token, so there is no untagged default. An untagged model refuses
a genome_name (see glm.model.genome_tags).

A thin facade: the work is done by glm.model (inference: sliding windows over long sequences,
generation) and glm.scoring (variants). Sequences of any length are processed in batches of
`batch_size` windows, so memory stays bounded however long the input.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from glm.config import Pooling, Strands
from glm.errors import check_options
from glm.io.coordinates import parse_region
from glm.io.genome import Genome, RecordView
from glm.io.variant_readers import Region
from glm.io.variant_writer import VariantWriter
from glm.model.checkpoint import genome_tags_of, load_model
from glm.model.generation import SamplingOptions, generate_pieces
from glm.model.genome_tags import GenomeTags, genome_token
from glm.model.inference import LogLikelihood, embed, encode, log_likelihoods, plan_windows, record_log_likelihood
from glm.model.tokenizers import Encoding, Tokenizer
from glm.model.transformer import Transformer
from glm.scoring import VariantScores, mutagenesis_variants, score_variants
from glm.scoring.plan import ScoringOptions
from glm.scoring.stream import score_file
from glm.scoring.table import ScoreCounts

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack from Python 3.11

__all__ = ["GenomicLM", "LogLikelihood", "evaluation_table", "load", "plan_windows"]


class GenomicLM:
    """A trained causal DNA (or text) language model with its tokenizer."""

    def __init__(
        self,
        model: Transformer,
        tokenizer: Tokenizer,
        info: dict[str, Any] | None = None,
        batch_size: int = 16,
        genome_tags: GenomeTags | None = None,
    ):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.info = info or {}
        self.batch_size = batch_size
        self.genome_tags = genome_tags

    @classmethod
    def load(cls, directory: str | Path, device: str | None = None) -> GenomicLM:
        """Load an exported model directory (`runs/NAME/model`). Device: 'cuda' when present, else 'cpu'."""
        model, tokenizer, config = load_model(directory, device)
        return cls(model, tokenizer, config.get("info", {}), genome_tags=genome_tags_of(config, directory))

    @property
    def genome_names(self) -> list[str]:
        """The genome tokens this model conditions on (empty for a model trained without them)."""
        return list(self.genome_tags.names) if self.genome_tags else []

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
        return encode(self.tokenizer, sequence)

    def log_likelihood(
        self, sequences: str | Sequence[str], progress: bool = False, genome_name: str | None = None
    ) -> LogLikelihood | list[LogLikelihood]:
        """log P(sequence) under the model, summed over every scored base (N and IUPAC excluded).

        Returns one LogLikelihood for a string, a list for a list of strings. genome_name: the
        genome to condition on (a model trained with genome tokens; see the module docstring).
        """
        single = isinstance(sequences, str)
        items = [sequences] if single else list(sequences)
        token = genome_token(self.genome_tags, genome_name)
        results = log_likelihoods(self.model, self.tokenizer, items, self.batch_size, progress, token)
        return results[0] if single else results

    def embed(
        self,
        sequences: str | Sequence[str],
        layer: int = -1,
        pooling: Pooling = "mean",
        strands: Strands = "forward",
        progress: bool = False,
        genome_name: str | None = None,
    ) -> np.ndarray:
        """Pooled hidden states, shape (n_sequences, width) (or (width,) for one string).

        layer: 0 is the token embedding, i the output of block i, -1 the final (normed) layer.
        pooling: "mean" or "max" over the sequence's tokens, or "last" (the final token).
        strands: "forward", or "both" to average the pooled vectors of the sequence and of its
        reverse complement (DNA models only), so a sequence and its reverse complement embed alike.
        A sequence longer than the context is embedded in sliding windows advancing by half a
        context (see the module docstring): each token's state comes from exactly one window, so
        mean pooling is over every token once, max over all, and "last" is the final token's state
        with at least half a context before it. genome_name: the genome to condition on (a model
        trained with genome tokens).
        """
        single = isinstance(sequences, str)
        items = [sequences] if single else list(sequences)
        token = genome_token(self.genome_tags, genome_name)
        pooled = embed(self.model, self.tokenizer, items, layer, pooling, strands, self.batch_size, progress, token)
        return pooled[0] if single else pooled

    def evaluate(
        self, fasta: str | Path, progress: bool = True, genome_name: str | None = None
    ) -> list[tuple[str, int, float]]:
        """(record name, scored bases, bits per base) for each record, then ("overall", ...).

        genome_name: the genome to condition on (a model trained with genome tokens).
        """
        token = genome_token(self.genome_tags, genome_name)  # a wrong name fails before the genome is read
        rows, total, bases = [], 0.0, 0
        genome = Genome(fasta)
        for name in genome.names:  # each read in pieces: a chromosome is never held whole
            record = RecordView(genome, name)
            result = record_log_likelihood(self.model, self.tokenizer, record, self.batch_size, progress, token)
            rows.append((name, result.bases, result.bits_per_base))
            total, bases = total + result.total, bases + result.bases
        rows.append(("overall", bases, LogLikelihood(total, bases).bits_per_base))
        return rows

    def score_variants(
        self,
        variants: str | os.PathLike[str] | Iterable[Any],
        genome: str | os.PathLike[str] | Genome,
        **options: Unpack[ScoringOptions],
    ) -> VariantScores:
        """Zero-shot scores of variants (a VCF/TSV/CSV path or Python rows) against a genome FASTA.

        Options are those of `glm.scoring.score_variants`: method ("llr": log P(alt) - log P(ref)
        in nats, negative = alt less likely, predicted more damaging; "embedding": cosine and L2
        distances; or both as a list), window, strands ("both" averages the two strands), layer,
        batch_size (default: this model's batch_size), aliases, on_ref_mismatch, reuse, progress,
        head: a variant head directory (or Head) from `fit-head`, adding a head_probability
        column, and genome_name (a model trained with genome tokens: the genome whose token starts
        every window). Returns a VariantScores table in input order (`.to_pandas()`, `.write("out.vcf.gz")`).
        """
        return score_variants(self.model, self.tokenizer, variants, genome, **self._scoring_options(options))

    def score_file(
        self,
        variants: str | os.PathLike[str],
        genome: str | os.PathLike[str] | Genome,
        out: str | os.PathLike[str],
        regions: Sequence[Region] = (),
        **options: Unpack[ScoringOptions],
    ) -> tuple[ScoreCounts, VariantWriter]:
        """Score a variant file of any size into `out`, chunk by chunk (memory flat in the variants).

        Options are those of `score_variants`; `regions` (genome contig, 0-based half-open) keep
        only the variants overlapping them. Returns the counts (`.summary(out)`) and the finished writer.
        """
        scoring = self._scoring_options(options)
        return score_file(self.model, self.tokenizer, variants, genome, out, regions, **scoring)

    def _scoring_options(self, options: ScoringOptions) -> ScoringOptions:
        """Scoring options with a head directory loaded, this model's batch size as the default and its genome tags."""
        if isinstance(options.get("head"), (str, os.PathLike)):
            from glm.heads.probes import Head  # scikit-learn only when a head is used

            options["head"] = Head.load(options["head"], task="variant")
        options.setdefault("batch_size", self.batch_size)
        options.setdefault("genome_tags", self.genome_tags)
        return options

    def mutagenesis(
        self, genome: str | os.PathLike[str] | Genome, region: str, **options: Unpack[ScoringOptions]
    ) -> VariantScores:
        """Score every SNV of `region` ("chr:start-end", 1-based inclusive): three per base, none at N.

        Options are those of `score_variants` (method, window, strands, batch_size, ...).
        """
        genome = genome if isinstance(genome, Genome) else Genome(genome)
        variants = mutagenesis_variants(genome, *parse_region(region, genome.lengths, str(genome.path)))
        return self.score_variants(variants, genome, **options)

    def generate(self, prompt: str, *, genome_name: str | None = None, **options: Unpack[SamplingOptions]) -> str:
        """Sample a continuation of `prompt` (bases for DNA, text for text models); returns only the new part.

        Options (see `generate_stream`): max_new_tokens (tokens; a 3-mer model adds 3 bases per
        token), temperature (0 is greedy), top_k, top_p, seed, max_bases (stop at exactly that
        many new bases or characters), use_cache, genome_name (a model trained with genome tokens:
        the genome to sample like). A fixed seed gives the same output with and without the
        key/value cache.
        """
        return "".join(self.generate_stream(prompt, genome_name=genome_name, **options))

    def generate_stream(
        self, prompt: str, *, genome_name: str | None = None, **options: Unpack[SamplingOptions]
    ) -> Iterator[str]:
        """Sample a continuation of `prompt`, yielding each new piece of text as soon as it is sampled.

        Options are those of `glm.model.generation.generate_pieces`: max_new_tokens (tokens),
        max_bases (stop at exactly that many new bases or characters), temperature (0 is greedy),
        top_k and top_p (sample only among the most likely tokens), seed (the same output with and
        without the key/value cache), use_cache. A DNA prompt is conditioned on from its last whole
        k-mer backwards, so the continuation starts right after the prompt; it is conditioned on
        as it is, without the record separator that `log_likelihood` puts first (training windows
        start anywhere in a record, so a prompt is usually mid-record). genome_name: for a model
        trained with genome tokens, the genome whose token comes before the prompt.
        """
        check_options("generation", options, generate_pieces)  # now, not at the first sample
        token = genome_token(self.genome_tags, genome_name)
        return generate_pieces(self.model, self.tokenizer, prompt, token, **options)


def evaluation_table(rows: list[tuple[str, int, float]]) -> str:
    """`GenomicLM.evaluate`'s rows as an aligned text table."""
    width = max(len(name) for name, _, _ in rows)
    lines = [f"{'record':<{width}}  {'bases':>12}  bits/base"]
    lines += [f"{name:<{width}}  {bases:>12,}  {bits:.4f}" for name, bases, bits in rows]
    return "\n".join(lines)


def load(directory: str | Path, device: str | None = None) -> GenomicLM:
    """Load an exported model directory. See GenomicLM."""
    return GenomicLM.load(directory, device)
