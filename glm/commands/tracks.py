"""The track command: per-base genome-browser tracks (bigWig or bedGraph) of a model over regions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from glm.arguments import ConfigOptions, Help, command, setting
from glm.commands.options import (
    GenomeFasta,
    GenomeName,
    ModelDir,
    Precision,
    ProcessSettings,
    Quiet,
    ScoringBatch,
    StrandChoice,
    Window,
)
from glm.config import TrackMethod
from glm.fields import check_fields, option
from glm.io.paths import OutputFile
from glm.io.tracks import track_outputs

if TYPE_CHECKING:
    from glm.io.shards import Ranks
    from glm.scoring.tracks import TrackReport


class TracksOutput(OutputFile):
    """track's --out: one file per track named from it, their track lines and the --plot figure."""

    def written(self) -> list[Path]:
        return track_outputs(self)


@dataclass(frozen=True)
class TrackSettings:
    """What the tracks hold and how they are computed."""

    method: TrackMethod = option(
        "logprob",
        "logprob: log P(base | context) of A, C, G, T and the reference, one pass per window (cheap); "
        "llr: the scorer's llr of each SNV (exact, a few hundred times slower)",
    )
    strands: StrandChoice = setting(StrandChoice, "both")
    window: Window = setting(Window, None)
    batch_size: ScoringBatch = setting(ScoringBatch, None)
    precision: Precision = setting(Precision, "float32")
    plot: bool = option(False, "also draw OUT_STEM.png: every track over the first region (up to 100 kb)")

    def __post_init__(self) -> None:
        check_fields(self)


@command(
    "track",
    help="per-base tracks of regions: bigWig or bedGraph",
    description="Genome-browser tracks of a region. --method logprob (default) writes log P(A|context) .. "
    "log P(T|context) and log P(reference base) from one forward pass per window; --method llr writes the llr of "
    "the SNV to each base (0 at the reference) and their mean, from the variant scorer. Both average the two "
    "strands. One file per track (OUT_STEM.TRACK.SUFFIX); bases that cannot be scored (N, contig edges) have no "
    'interval. .bw needs pyBigWig (pip install "glm[tracks]"); .bedGraph needs nothing. With --devices N (and '
    "--num-nodes M) N x M processes share the pieces of the regions and the files are the same.",
)
def track(
    model: ModelDir,
    *,
    genome: GenomeFasta,
    regions: Annotated[list[str], Help("CHR:START-END (1-based), a contig, or a BED file (repeatable)")],
    out: Annotated[TracksOutput, Help("output: .bw / .bigWig, or .bedGraph / .bg; one file per track")],
    settings: Annotated[dict[str, Any], ConfigOptions(TrackSettings, "tracks", show_defaults=True)],
    genome_name: GenomeName = None,
    processes: Annotated[dict[str, Any], ConfigOptions(ProcessSettings, "processes", show_defaults=True)],
    quiet: Quiet = False,
) -> None:
    from glm.api import load
    from glm.io.genome import Genome
    from glm.io.tracks import track_format
    from glm.io.variants import resolve_regions
    from glm.scoring.plan import make_plan
    from glm.scoring.tracks import sorted_regions, write_tracks

    chosen, where = TrackSettings(**settings), ProcessSettings(**processes)
    track_format(out)  # a wrong suffix stops before the model loads

    def work(ranks: Ranks, device: str | None) -> TrackReport | None:
        reference = Genome(genome)
        chosen_regions = resolve_regions(regions, reference)
        if chosen.plot:
            _check_plot(sorted_regions(chosen_regions, reference))
        lm = load(model, device=device)
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
        return write_tracks(
            lm.model, lm.tokenizer, reference, chosen_regions, out, chosen.method, plan, model,
            ranks=ranks, resume=where.resume,
        )  # fmt: skip

    report = where.run(work)
    if report is None:  # not the first process: that one writes the files and reports
        return
    print(report.summary())
    if chosen.plot:
        _plot(report, out, chosen.method)


def _check_plot(regions: list[tuple[str, int, int]]) -> None:
    """--plot draws the first region: refuse one too long for a figure before the work starts."""
    from glm.errors import InputError
    from glm.scoring.tracks import KEPT

    if regions and regions[0][2] - regions[0][1] > KEPT:
        raise InputError(
            f"--plot: the first region is {regions[0][2] - regions[0][1]:,} bases; a figure shows at most {KEPT:,}"
        )


def _plot(report: TrackReport, out: str, method: TrackMethod) -> None:
    """The first region's tracks as a figure beside the track files."""
    import numpy as np

    from glm.io.coordinates import format_region, to_one_based
    from glm.io.tracks import TRACK_NAMES
    from glm.plots import plot_tracks

    contig, start, end = report.regions[0]
    positions = to_one_based(np.arange(start, end))
    tracks = {name: report.first_values[:, column] for column, name in enumerate(TRACK_NAMES[method])}
    picture = Path(out).with_suffix(".png")
    plot_tracks(positions, tracks, picture, title=f"{format_region(contig, start, end)}: {method}")
    print(f"figure -> {picture}")
