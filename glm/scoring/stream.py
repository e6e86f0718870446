"""Scoring a variant file of any size: read in chunks, score each, write as it goes (`score_file`).

Memory holds one chunk of variants and its windows, whatever the number of variants. Chunks go
through the one path of `score_variants` (glm.scoring.zero_shot.scored_chunks), so with the same
chunk_size the file is byte for byte the in-memory table's; rows keep the input order, sorted or not.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from tqdm.auto import tqdm

from glm.io.genome import Genome
from glm.io.variant_readers import Region
from glm.io.variant_writer import VariantWriter
from glm.model.tokenizers import Tokenizer
from glm.model.transformer import Transformer
from glm.scoring.plan import ScoringOptions, make_plan, options_of
from glm.scoring.table import ScoreCounts, descriptions
from glm.scoring.zero_shot import scored_chunks

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack from Python 3.11


def score_file(
    model: Transformer,
    tokenizer: Tokenizer,
    variants: str | os.PathLike[str],
    genome: str | os.PathLike[str] | Genome,
    out: str | os.PathLike[str],
    regions: Sequence[Region] = (),
    **options: Unpack[ScoringOptions],
) -> tuple[ScoreCounts, VariantWriter]:
    """Score a VCF/TSV/CSV file into `out` (.tsv, .vcf, .vcf.gz + index) chunk by chunk.

    Options are those of `score_variants` (glm.scoring.plan.make_plan); `regions` (genome contig,
    0-based half-open) keep only the variants overlapping them. Returns the counts for a summary
    and the finished writer (`index`, `unindexed`).
    """
    genome = genome if isinstance(genome, Genome) else Genome(genome)
    progress = options.pop("progress", False)  # this bar counts variants; the chunks' own bars stay off
    plan = make_plan(model, tokenizer, **options_of(options))
    counts = ScoreCounts()
    # No total: counting the rows first would read (and decompress) the whole input twice.
    bar = tqdm(desc="scoring", unit="variant", disable=not progress, file=sys.stderr)
    with bar, VariantWriter(out, lengths=genome.lengths) as writer:
        for chunk, columns in scored_chunks(model, tokenizer, variants, genome, plan, regions):
            writer.header_lines, writer.descriptions = chunk.header_lines, descriptions(columns)
            writer.add(chunk, columns)
            counts.add(chunk, columns["window_n"])
            bar.update(len({(variant.source, variant.line) for variant in chunk}))  # rows: ALTs of a row share both
    return counts, writer
