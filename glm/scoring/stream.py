"""Scoring a variant file of any size, on one process or many: shards of the input, parts, one output.

`score_file` reads the input in chunks of plan.chunk_size variants (glm.scoring.zero_shot.variant_chunks,
the chunks `score_variants` scores), and each chunk is a shard: process `rank` of `world_size`
scores shards rank, rank + world_size, ... (glm.io.shards), each into its own part in `OUT.parts/`
(its rows and what its header needs: fields, statuses, counts). Every process reads the whole
input (cheap beside scoring) and so sees every shard; a bad row stops them all alike. Then each
process formats its shards' rows by the layout of the whole file (glm.io.variant_writer.write_part:
whole BGZF blocks for `.vcf.gz`), and rank 0 joins header and parts into `out` with one index
(`join_parts`). A BGZF block ends after the header and after each chunk, on one process as on
many, so the output holds the same bytes whatever the number of processes, and the same as
`score_variants(...).write(out)` with the same chunk_size. `resume` keeps the finished parts of a
killed run (the manifest must match: the same input, genome, model, options and output kind).

Memory holds one chunk of variants and its windows, whatever the number of variants. The
progress bar (rank 0) measures the bytes of the input read (compressed bytes for gzip) against
its size, so it has a total without reading the input twice.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glm.errors import InputError
from glm.io.files import ReadProgress, atomic_file, read_json
from glm.io.genome import Genome
from glm.io.progress import progress_bar
from glm.io.shards import ONE_PROCESS, PartsFolder, Ranks, file_identity
from glm.io.variant_readers import Region
from glm.io.variant_writer import RowLayout, join_parts, output_kind, write_part
from glm.io.variants import VariantList
from glm.model.checkpoint import model_fingerprint
from glm.model.tokenizers import Tokenizer
from glm.model.transformer import Transformer
from glm.scoring.plan import ScoringOptions, ScoringPlan, make_plan, options_of
from glm.scoring.table import ScoreCounts, descriptions
from glm.scoring.zero_shot import VariantSource, score_chunk, variant_chunks
from glm.version import __version__

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack from Python 3.11

ROWS, RECORDS = ".rows.jsonl", ".records.json"  # a shard's scored rows; where its records lie in its part


@dataclass(frozen=True)
class ScoredFile:
    """The file `score_file` wrote: its path, its index (None: not indexed) and why it is not indexed."""

    path: Path
    index: Path | None = None
    unindexed: str = ""


def score_file(
    model: Transformer,
    tokenizer: Tokenizer,
    variants: VariantSource,
    genome: str | os.PathLike[str] | Genome,
    out: str | os.PathLike[str],
    regions: Sequence[Region] = (),
    ranks: Ranks = ONE_PROCESS,
    resume: bool = False,
    **options: Unpack[ScoringOptions],
) -> tuple[ScoreCounts, ScoredFile]:
    """Score a VCF/TSV/CSV file (or Python rows, a VariantList) into `out` (.tsv, .vcf, .vcf.gz + index).

    Options are those of `score_variants` (glm.scoring.plan.make_plan); `regions` (genome contig,
    0-based half-open) keep only the variants overlapping them. `ranks`: the processes sharing the
    work (glm.training.processes; this one alone by default); `resume`: keep the finished shards
    of an interrupted run. Returns the counts of every shard for a summary and the written file;
    only rank 0 writes it.

    With `progress`, a file read whole advances the bar by the bytes read (of its size on disk) and
    shows the variant count beside it; with `regions` (perhaps read through a tabix index, in
    pieces) or Python rows the bar counts rows, without a total.
    """
    genome = genome if isinstance(genome, Genome) else Genome(genome)
    progress = options.pop("progress", False) and ranks.rank == 0  # this bar follows the file, on rank 0
    plan = make_plan(model, tokenizer, **options_of(options))
    out = Path(out)
    kind = output_kind(out)
    if not out.parent.is_dir():
        raise InputError("output: directory does not exist", out.parent)
    folder = PartsFolder(out, _identity(model, variants, genome, plan, regions, kind), ranks, resume)
    with folder.removed_on_bad_input():
        chunks = _chunks(variants, genome, plan, regions, progress)
        return _score_in_shards(model, tokenizer, chunks, genome, plan, folder, out)


def _score_in_shards(
    model: Transformer,
    tokenizer: Tokenizer,
    chunks: Iterator[VariantList],
    genome: Genome,
    plan: ScoringPlan,
    folder: PartsFolder,
    out: Path,
) -> tuple[ScoreCounts, ScoredFile]:
    """Score this process's shards, format them, and join every part into `out` (rank 0)."""
    kind = output_kind(out)

    def score_shard(number: int, chunk: VariantList, path: Path) -> None:
        scored, columns = score_chunk(model, tokenizer, chunk, genome, plan)
        layout = RowLayout(header_lines=chunk.header_lines, descriptions=descriptions(columns))
        counts = ScoreCounts()
        counts.add(scored, columns["window_n"])
        rows = list(layout.rows(scored, columns))
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(json.dumps({"layout": layout.to_json(), "counts": counts.to_json()}) + "\n")
            handle.writelines(json.dumps(row) + "\n" for row in rows)

    count = folder.compute(chunks, ROWS, score_shard)
    layout, counts = RowLayout(), ScoreCounts()
    for number in range(count):
        with open(folder.part(number, ROWS), encoding="utf-8") as handle:
            saved = json.loads(handle.readline())
        layout.merge(RowLayout.from_json(saved["layout"]))
        counts.merge(ScoreCounts.from_json(saved["counts"]))

    def format_shard(number: int, _: int, path: Path) -> None:
        with open(folder.part(number, ROWS), encoding="utf-8") as handle:
            handle.readline()
            records = write_part(kind, layout, (json.loads(line) for line in handle), path)
        if records is not None:
            with atomic_file(folder.part(number, RECORDS)) as partial:
                partial.write_text(json.dumps(records))

    folder.compute(range(count), kind, format_shard)
    if folder.ranks.rank != 0:
        return counts, ScoredFile(out)
    parts = ((folder.part(number, kind), _records(folder.part(number, RECORDS))) for number in range(count))
    index, unindexed = join_parts(out, kind, layout, parts, genome.lengths)
    folder.remove()
    return counts, ScoredFile(out, index, unindexed)


def _records(path: Path) -> Any:
    return read_json(path) if path.is_file() else None


def _chunks(
    variants: VariantSource, genome: Genome, plan: ScoringPlan, regions: Sequence[Region], progress: bool
) -> Iterator[VariantList]:
    """The input's chunks (every shard, in order) while a progress bar follows the reading."""
    # Bytes read of the file's size: a total without reading (and decompressing) the input twice.
    # Not a file (missing, a directory): the count bar, and the reader says what is wrong.
    whole_file = progress and not regions and isinstance(variants, (str, os.PathLike)) and os.path.isfile(variants)
    read = ReadProgress() if whole_file else None
    if read is None:
        bar = progress_bar(None, "scoring", "variants", enabled=progress)
    else:
        bar = progress_bar(os.path.getsize(variants), "scoring", "B")  # type: ignore[arg-type]
    total = 0
    with bar:
        for chunk in variant_chunks(variants, genome, plan, regions, read):
            yield chunk
            total += len(chunk)
            if read is None:
                bar.update(len({(variant.source, variant.line) for variant in chunk}))  # rows: ALTs of a row share both
            else:
                bar.set_postfix(variants=total)  # before the update, so the line it may print has it
                bar.update(read.bytes_read - bar.n)
        if read is not None:  # the reader's last look is after its last chunk (a gzip trailer, blank lines)
            bar.update(read.bytes_read - bar.n)


def _identity(
    model: Transformer,
    variants: VariantSource,
    genome: Genome,
    plan: ScoringPlan,
    regions: Sequence[Region],
    kind: str,
) -> dict[str, Any]:
    """What a shard's part depends on, for the manifest of the parts: a resume must match it."""
    return {
        "input": file_identity(variants) if isinstance(variants, (str, os.PathLike)) else _rows_identity(variants),
        "genome": file_identity(genome.path),
        "model": model_fingerprint(model),
        "options": plan.identity(),
        "regions": [list(region) for region in regions],
        "output kind": kind,
        "glm version": __version__,
    }


def _rows_identity(variants: VariantSource) -> str:
    """Python rows cannot be checked without reading them; a VariantList is named by its source."""
    return str(variants.source) if isinstance(variants, VariantList) else "<Python rows>"
