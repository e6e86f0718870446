"""GenomicLM: the Python face of a trained model. Imports no Lightning.

    lm = glm.load("runs/lambda_virus/model")
    lm.log_likelihood("ACGTACGT...")          # total log-likelihood (nats) and bits per base
    lm.embed(["ACGT...", "GGCA..."], layer=-1, pooling="mean")   # (2, width) array
    lm.evaluate("genome.fa")                  # bits per base for each record and overall
    lm.generate("ATGAAACGC", max_bases=300, seed=1)   # a sampled continuation
    lm.score_variants("variants.vcf.gz", "genome.fa")    # zero-shot variant scores (glm.scoring)
    lm.mutagenesis("genome.fa", "chr1:1000-1100")       # every SNV of a region
    lm.save_hf("my-model")                    # a transformers directory (glm.hf); glm.load reads those too

A model trained with genome tokens (pretrain --genome-tokens) conditions on a genome: each of
these takes genome_name="NAME" (one of `lm.genome_names`), and needs it: a tagged model never saw
a window without its genome's token, so there is no untagged default. An untagged model refuses
a genome_name (see glm.model.genome_tags).

A thin facade: the work is done by glm.model (inference: sliding windows over long sequences,
generation) and glm.scoring (variants). Sequences of any length are processed in batches of
`batch_size` windows, so memory stays bounded however long the input.

The options of scoring and generation are declared once, by glm.scoring.plan.make_plan and
glm.model.generation.generate_pieces; the facade lists them again as explicit keyword parameters,
so help() and editors show each one with its default, and passes them on by name (`_options_of`).
A test (tests/test_api_options.py) keeps those defaults equal to the library's and every library
option reachable from here or named as deliberately left out. A misspelt option is an InputError
naming it (`glm.errors.named_options`). Every argument of every public method and of `load` is
checked against its annotation before any work (`glm.errors.typed_methods`): a wrong type is an
InputTypeError (an InputError and a TypeError) naming the method and the argument; the ranges are
then checked by the library functions that declare them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from glm.config import InferencePrecision, Pooling, Strands
from glm.errors import InputError, keyword_options, named_options, typed_arguments, typed_methods
from glm.io.coordinates import parse_region
from glm.io.genome import Genome, RecordView
from glm.io.variant_readers import Region
from glm.io.shards import ONE_PROCESS, Ranks
from glm.io.variants import OnRefMismatch
from glm.hf.export import export_hf
from glm.hf.hub_model import load_any
from glm.model.checkpoint import genome_tags_of
from glm.model.generation import generate_pieces
from glm.model.genome_tags import GenomeTags, genome_token
from glm.model.inference import LogLikelihood, embed, encode, log_likelihoods, plan_windows, record_log_likelihood
from glm.model.tokenizers import Encoding, Tokenizer, require_dna
from glm.model.transformer import Transformer
from glm.scoring import VariantScores, mutagenesis_variants, score_variants
from glm.scoring.heads import VariantHead
from glm.scoring.plan import CHUNK_SIZE, make_plan
from glm.scoring.stream import ScoredFile, score_file
from glm.scoring.table import ScoreCounts
from glm.threads import use_threads

__all__ = ["GenomicLM", "LogLikelihood", "evaluation_table", "load", "plan_windows"]


@typed_methods
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
    def load(cls, directory: str | Path, device: str | None = None, threads: int | None = None) -> GenomicLM:
        """Load an exported model directory (`runs/NAME/model`), or a transformers causal-LM directory with
        a nucleotide- or k-mer-level tokenizer (glm.hf.hub_model). Device: 'cuda' when present, else 'cpu'.

        threads: CPU threads for torch (default: glm.threads' policy, the allowed CPUs that other
        processes leave free), set process-wide as `glm.use_threads` does.
        """
        use_threads(threads)
        model, tokenizer, config = load_any(directory, device)
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

        genome_name: the genome to condition on (a model trained with genome tokens). A text model is
        refused: it would read the bases as unknown characters and score only those it happens to know.
        """
        require_dna(self.tokenizer, "bits per base of a FASTA")
        token = genome_token(self.genome_tags, genome_name)  # a wrong name fails before the genome is read
        rows, total, bases = [], 0.0, 0
        genome = Genome(fasta)
        for name in genome.names:  # each read in pieces: a chromosome is never held whole
            record = RecordView(genome, name)
            result = record_log_likelihood(self.model, self.tokenizer, record, self.batch_size, progress, token)
            rows.append((name, result.bases, result.bits_per_base))
            total, bases = total + result.total, bases + result.bases
        if not bases:  # bits per base of nothing: not a number to report
            only = " (only N or other IUPAC codes)" if self.tokenizer.kind == "kmer" else ""
            raise InputError(f"has no {'A/C/G/T bases' if only else 'tokens'} to score{only}", fasta)
        rows.append(("overall", bases, LogLikelihood(total, bases).bits_per_base))
        return rows

    @named_options("scoring")
    def score_variants(
        self,
        variants: str | os.PathLike[str] | Iterable[Any],
        genome: str | os.PathLike[str] | Genome,
        *,
        method: str | Sequence[str] = "llr",
        window: int | None = None,
        strands: Strands = "both",
        layer: int = -1,
        batch_size: int | None = None,
        aliases: Mapping[str, str] | None = None,
        on_ref_mismatch: OnRefMismatch = "error",
        reuse: bool = True,
        head: VariantHead | str | os.PathLike[str] | None = None,
        progress: bool = False,
        chunk_size: int = CHUNK_SIZE,
        genome_name: str | None = None,
        precision: InferencePrecision = "float32",
    ) -> VariantScores:
        """Zero-shot scores of variants (a VCF/TSV/CSV path or Python rows) against a genome FASTA.

        method: "llr" (log P(alt) - log P(ref) in nats; negative: alt less likely, predicted more
            damaging), "embedding" (cosine and L2 distances of the pooled states), or both as a list.
        window: bases per scoring window (None: the model's whole context).
        strands: "both" averages the forward and reverse-complement scores; "forward" scores the
            given strand only.
        layer: the hidden layer of the embedding distances (-1: the final one).
        batch_size: windows per forward pass (None: this model's batch_size).
        aliases: variant contig name -> genome contig name, for names that differ.
        on_ref_mismatch: "error" stops at a REF that disagrees with the genome; "skip" reports it.
        reuse: False computes every window in full (the naive path: slower, the same scores).
        head: a variant head (or its directory, from `fit-head`): adds a head_probability column
            and scores with the window, layer and both strands it was fitted with (another window or
            layer, or strands="forward", is an InputError).
        progress: show a progress bar.
        chunk_size: variants read and scored together (memory grows with it, not with the input).
        genome_name: for a model trained with genome tokens, the genome whose token starts every window.
        precision: "float32", or "bf16" for bf16 autocast (faster on a GPU; the llr moves a
            little: docs/VARIANTS.md).

        Returns a VariantScores table in input order (`.to_pandas()`, `.write("out.vcf.gz")`).
        """
        options = self._scoring_options(locals())
        return score_variants(self.model, self.tokenizer, variants, genome, **options)

    @named_options("scoring")
    def score_file(
        self,
        variants: str | os.PathLike[str] | Iterable[Any],
        genome: str | os.PathLike[str] | Genome,
        out: str | os.PathLike[str],
        regions: Sequence[Region] = (),
        *,
        resume: bool = False,
        ranks: Ranks = ONE_PROCESS,
        method: str | Sequence[str] = "llr",
        window: int | None = None,
        strands: Strands = "both",
        layer: int = -1,
        batch_size: int | None = None,
        aliases: Mapping[str, str] | None = None,
        on_ref_mismatch: OnRefMismatch = "error",
        reuse: bool = True,
        head: VariantHead | str | os.PathLike[str] | None = None,
        progress: bool = False,
        chunk_size: int = CHUNK_SIZE,
        genome_name: str | None = None,
        precision: InferencePrecision = "float32",
    ) -> tuple[ScoreCounts, ScoredFile]:
        """Score a variant file of any size (or Python rows) into `out`, chunk by chunk (memory flat in the variants).

        regions: (genome contig, start, end), 0-based half-open: keep only the variants overlapping
            them (none: every variant).
        resume: keep the shards (chunks) an interrupted run finished, in OUT.parts/ (same input,
            genome, model and options, or an error).
        ranks: the processes sharing the work (glm.training.processes starts them; default: this one).
        The other parameters are those of `score_variants` (help(GenomicLM.score_variants)).
        Returns the counts (`.summary(out)`) and the written file (`.path`, `.index`, `.unindexed`).
        """
        options = self._scoring_options(locals())
        return score_file(self.model, self.tokenizer, variants, genome, out, regions, ranks, resume, **options)

    @named_options("scoring")
    def mutagenesis(
        self,
        genome: str | os.PathLike[str] | Genome,
        region: str,
        *,
        method: str | Sequence[str] = "llr",
        window: int | None = None,
        strands: Strands = "both",
        layer: int = -1,
        batch_size: int | None = None,
        reuse: bool = True,
        head: VariantHead | str | os.PathLike[str] | None = None,
        progress: bool = False,
        chunk_size: int = CHUNK_SIZE,
        genome_name: str | None = None,
        precision: InferencePrecision = "float32",
    ) -> VariantScores:
        """Score every SNV of `region` ("chr:start-end", 1-based inclusive): three per base, none at N.

        The other parameters are those of `score_variants` (help(GenomicLM.score_variants)); its
        aliases and on_ref_mismatch do not apply: the variants are read off the genome itself.
        """
        options = self._scoring_options(locals())
        genome = genome if isinstance(genome, Genome) else Genome(genome)
        variants = mutagenesis_variants(genome, *parse_region(region, genome.lengths, str(genome.path)))
        return score_variants(self.model, self.tokenizer, variants, genome, **options)

    def save_hf(self, directory: str | Path, license: str = "other") -> Path:  # noqa: A002
        """Write this model as a transformers-native directory (glm.hf.export): Llama, or Qwen3 with QK-norm.

        license: the weights' license in the model card's metadata (a Hub license id). An option
        with no native equivalent is an InputError naming it. Needs transformers (glm[hf]).
        """
        return export_hf(directory, self.model, self.tokenizer, self.info, self.genome_tags, license)

    def _scoring_options(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """make_plan's options among a facade method's `arguments` (its locals()), with a head
        directory loaded, this model's batch size for None and this model's genome tags."""
        options = _options_of(make_plan, arguments)
        if isinstance(options["head"], (str, os.PathLike)):
            from glm.heads.probes import Head  # scikit-learn only when a head is used

            options["head"] = Head.load(options["head"], task="variant")
        if options["batch_size"] is None:
            options["batch_size"] = self.batch_size
        options["genome_tags"] = self.genome_tags
        return options

    @named_options("generation")
    def generate(
        self,
        prompt: str,
        max_new_tokens: int = 200,
        *,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        max_bases: int | None = None,
        use_cache: bool = True,
        genome_name: str | None = None,
    ) -> str:
        """Sample a continuation of `prompt` (bases for DNA, text for text models); returns only the new part.

        max_new_tokens: tokens to sample (a 3-mer model adds 3 bases per token).
        temperature: 0 always takes the most likely token; higher flattens the distribution.
        top_k: sample only among the k most likely tokens (None: all).
        top_p: sample only among the most likely tokens whose probability reaches p (None: all).
        seed: fixes the sample (the same output with and without the key/value cache).
        max_bases: stop at exactly that many new bases or characters (None: no limit).
        use_cache: keep the attention keys and values between tokens (faster, the same output).
        genome_name: for a model trained with genome tokens, the genome to sample like.

        A DNA prompt is conditioned on from its last whole k-mer backwards, so the continuation
        starts right after the prompt; it is conditioned on as it is, without the record separator
        that `log_likelihood` puts first (training windows start anywhere in a record, so a prompt
        is usually mid-record).
        """
        options = _options_of(generate_pieces, locals())
        return "".join(self.generate_stream(prompt, genome_name=genome_name, **options))

    @named_options("generation")
    def generate_stream(
        self,
        prompt: str,
        max_new_tokens: int = 200,
        *,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        max_bases: int | None = None,
        use_cache: bool = True,
        genome_name: str | None = None,
    ) -> Iterator[str]:
        """Sample a continuation of `prompt`, yielding each new piece of text as soon as it is sampled.

        The parameters are those of `generate` (help(GenomicLM.generate)); they are checked now,
        before the first token is sampled.
        """
        options = _options_of(generate_pieces, locals())
        token = genome_token(self.genome_tags, genome_name)
        return generate_pieces(self.model, self.tokenizer, prompt, token, **options)


def _options_of(function: Callable[..., object], arguments: dict[str, Any]) -> dict[str, Any]:
    """The entries of `arguments` (a facade method's locals()) that are keyword options of `function`."""
    return {name: arguments[name] for name in keyword_options(function) if name in arguments}


def evaluation_table(rows: list[tuple[str, int, float]]) -> str:
    """`GenomicLM.evaluate`'s rows as an aligned text table."""
    width = max(len(name) for name, _, _ in rows)
    lines = [f"{'record':<{width}}  {'bases':>12}  bits/base"]
    lines += [f"{name:<{width}}  {bases:>12,}  {bits:.4f}" for name, bases, bits in rows]
    return "\n".join(lines)


@typed_arguments
def load(directory: str | Path, device: str | None = None, threads: int | None = None) -> GenomicLM:
    """Load an exported model directory. See GenomicLM.load."""
    return GenomicLM.load(directory, device, threads)
