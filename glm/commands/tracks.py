"""The track command: per-base genome-browser tracks (bigWig or bedGraph) of a model over regions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from glm.arguments import ConfigOptions, Help, command, setting
from glm.commands.options import Device, GenomeFasta, GenomeName, ModelDir, Quiet, ScoringBatch, StrandChoice, Window
from glm.config import InferencePrecision, TrackMethod, check_fields, option
from glm.io.files import OutputFile


@dataclass(frozen=True)
class TrackSettings:
    """What the tracks hold and how they are computed."""

    method: TrackMethod = option(
        "logprob",
        "logprob: log P(base | context) of A, C, G, T and the reference, one pass per window (cheap); "
        "llr: the scorer's llr of each SNV (exact, about 100x slower)",
    )
    strands: StrandChoice = setting(StrandChoice, "both")
    window: Window = setting(Window, None)
    batch_size: ScoringBatch = setting(ScoringBatch, None)
    precision: InferencePrecision = option("auto", "auto: bf16 autocast on CUDA, float32 elsewhere")

    def __post_init__(self) -> None:
        check_fields(self)


@command(
    "track",
    help="per-base tracks of regions: bigWig or bedGraph",
    description="Genome-browser tracks of a region. --method logprob (default) writes log P(A|context) .. "
    "log P(T|context) and log P(reference base) from one forward pass per window; --method llr writes the llr of "
    "the SNV to each base (0 at the reference) and their mean, from the variant scorer. Both average the two "
    "strands. One file per track (OUT_STEM.TRACK.SUFFIX); bases that cannot be scored (N, contig edges) have no "
    'interval. .bw needs pyBigWig (pip install "glm[tracks]"); .bedGraph needs nothing.',
)
def track(
    model: ModelDir,
    *,
    genome: GenomeFasta,
    regions: Annotated[list[str], Help("CHR:START-END (1-based), a contig, or a BED file (repeatable)")],
    out: Annotated[OutputFile, Help("output: .bw / .bigWig, or .bedGraph / .bg; one file per track")],
    settings: Annotated[dict[str, Any], ConfigOptions(TrackSettings, "tracks", show_defaults=True)],
    genome_name: GenomeName = None,
    device: Device = None,
    quiet: Quiet = False,
) -> None:
    from glm.api import load
    from glm.io.genome import Genome
    from glm.io.tracks import track_format
    from glm.io.variants import resolve_regions
    from glm.scoring.plan import make_plan
    from glm.scoring.tracks import write_tracks

    chosen = TrackSettings(**settings)
    track_format(out)  # a wrong suffix stops before the model loads
    lm = load(model, device=device)
    reference = Genome(genome)
    plan = make_plan(
        lm.model,
        lm.tokenizer,
        window=chosen.window,
        strands=chosen.strands,
        batch_size=chosen.batch_size or lm.batch_size,
        progress=not quiet,
        genome_name=genome_name,
        genome_tags=lm.genome_tags,
        precision=chosen.precision,
    )
    chosen_regions = resolve_regions(regions, reference)
    report = write_tracks(lm.model, lm.tokenizer, reference, chosen_regions, out, chosen.method, plan, model)
    print(report.summary())
