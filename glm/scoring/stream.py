"""Scoring a variant file of any size: read in chunks, score each, write as it goes (`score_file`).

Memory holds one chunk of variants and its windows, whatever the number of variants. Chunks go
through the one path of `score_variants` (glm.scoring.zero_shot.scored_chunks), so with the same
chunk_size the file is byte for byte the in-memory table's; rows keep the input order, sorted or not.
The progress bar measures the bytes of the input file read (compressed bytes for gzip) against its
size, so it has a total without reading the input twice.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from glm.io.files import ReadProgress
from glm.io.genome import Genome
from glm.io.progress import progress_bar
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
    variants: str | os.PathLike[str] | Iterable[Any],
    genome: str | os.PathLike[str] | Genome,
    out: str | os.PathLike[str],
    regions: Sequence[Region] = (),
    **options: Unpack[ScoringOptions],
) -> tuple[ScoreCounts, VariantWriter]:
    """Score a VCF/TSV/CSV file (or Python rows) into `out` (.tsv, .vcf, .vcf.gz + index) chunk by chunk.

    Options are those of `score_variants` (glm.scoring.plan.make_plan); `regions` (genome contig,
    0-based half-open) keep only the variants overlapping them. Returns the counts for a summary
    and the finished writer (`index`, `unindexed`).

    With `progress`, a file read whole advances the bar by the bytes read (of its size on disk) and
    shows the variant count beside it; with `regions` (perhaps read through a tabix index, in
    pieces) or Python rows the bar counts rows, without a total.
    """
    genome = genome if isinstance(genome, Genome) else Genome(genome)
    progress = options.pop("progress", False)  # this bar follows the file; the chunks' own bars stay off
    plan = make_plan(model, tokenizer, **options_of(options))
    counts = ScoreCounts()
    # Bytes read of the file's size: a total without reading (and decompressing) the input twice.
    # Not a file (missing, a directory): the count bar, and the reader says what is wrong.
    whole_file = progress and not regions and isinstance(variants, (str, os.PathLike)) and os.path.isfile(variants)
    read = ReadProgress() if whole_file else None
    if read is None:
        bar = progress_bar(None, "scoring", "variants", enabled=progress)
    else:
        bar = progress_bar(os.path.getsize(variants), "scoring", "B")
    with bar, VariantWriter(out, lengths=genome.lengths) as writer:
        for chunk, columns in scored_chunks(model, tokenizer, variants, genome, plan, regions, read):
            writer.header_lines, writer.descriptions = chunk.header_lines, descriptions(columns)
            writer.add(chunk, columns)
            counts.add(chunk, columns["window_n"])
            if read is None:
                bar.update(len({(variant.source, variant.line) for variant in chunk}))  # rows: ALTs of a row share both
            else:
                bar.set_postfix(variants=counts.total)  # before the update, so the line it may print has it
                bar.update(read.bytes_read - bar.n)
        if read is not None:  # the reader's last look is after its last chunk (a gzip trailer, blank lines)
            bar.update(read.bytes_read - bar.n)
    return counts, writer
