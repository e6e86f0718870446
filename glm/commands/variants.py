"""Subcommands about variants: zero-shot scores, saturation mutagenesis, supervised variant heads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from glm.arguments import ConfigOptions, Help, command, setting
from glm.commands.options import (
    Aliases,
    Device,
    FileScoringSettings,
    ProcessSettings,
    GenomeFasta,
    GenomeName,
    ModelDir,
    MutagenesisOutput,
    Quiet,
    ScoringBatch,
    ScoringSettings,
    VariantsOutput,
    Window,
    parse_aliases,
)
from glm.fields import check_fields
from glm.heads.settings import VariantHeadSettings
from glm.io.paths import OutputDirectory

if TYPE_CHECKING:
    from glm.io.shards import Ranks
    from glm.scoring.stream import ScoredFile
    from glm.scoring.table import ScoreCounts


@command(
    "score",
    help="score variants (VCF or TSV) against a genome",
    description="Zero-shot variant effect scores. llr = log P(alt window) - log P(ref window) in nats, averaged "
    "over both strands: negative means the model finds the alternative less likely (predicted more damaging). "
    "Output is TSV, VCF or .vcf.gz (BGZF with a tabix index when the input is sorted; scores as INFO fields), "
    "chosen by the --out suffix. Variants are read, scored and written in chunks, in input order; with "
    "--devices N (and --num-nodes M) N x M processes share the chunks and the output is the same file.",
)
def score(
    model: ModelDir,
    *,
    genome: GenomeFasta,
    variants: Annotated[str, Help("VCF (.vcf, .vcf.gz) or TSV/CSV with chrom, pos, ref, alt")],
    out: Annotated[VariantsOutput, Help("output file: .tsv, .vcf or .vcf.gz")],
    scoring: Annotated[dict[str, Any], ConfigOptions(FileScoringSettings, "scoring", show_defaults=True)],
    genome_name: GenomeName = None,
    processes: Annotated[dict[str, Any], ConfigOptions(ProcessSettings, "processes", show_defaults=True)],
    quiet: Quiet = False,
) -> None:
    from glm.api import load
    from glm.io.genome import Genome
    from glm.io.variants import resolve_regions

    chosen, where = FileScoringSettings(**scoring), ProcessSettings(**processes)

    def work(ranks: Ranks, device: str | None) -> tuple[int, ScoreCounts, ScoredFile]:
        lm = load(model, device=device)
        reference = Genome(genome)
        aliases = parse_aliases(chosen.alias)
        counts, written = lm.score_file(
            variants,
            reference,
            out,
            regions=resolve_regions(chosen.regions or [], reference, aliases),
            resume=where.resume,
            ranks=ranks,
            aliases=aliases,
            on_ref_mismatch="skip" if chosen.skip_ref_mismatch else "error",
            head=chosen.head,
            progress=not quiet,
            genome_name=genome_name,
            **chosen.plan_options(),
        )
        return ranks.rank, counts, written

    rank, counts, written = where.run(work)
    if rank != 0:
        return
    print(counts.summary(written.path))
    if written.index is not None:
        print(f"index -> {written.index}")
    elif written.unindexed:
        print(
            f"not indexed: the output is in input order, which is not sorted ({written.unindexed}); "
            "`bcftools sort` and `tabix -p vcf` index it"
        )


@command(
    "mutagenesis",
    help="score every SNV of a region; TSV and heatmap",
    description="Saturation mutagenesis: score all three alternatives at every base of a region and write "
    "OUT.tsv and OUT.png (heatmap of positions x alternative bases, with the per-position minimum). "
    "With --devices N (and --num-nodes M) N x M processes share the chunks of the region.",
)
def mutagenesis(
    model: ModelDir,
    *,
    genome: GenomeFasta,
    region: Annotated[str, Help("CONTIG:START-END, 1-based inclusive")],
    out: Annotated[
        MutagenesisOutput, Help("output prefix: writes PREFIX.tsv and PREFIX.png (a .tsv or .png ending is dropped)")
    ],
    scoring: Annotated[dict[str, Any], ConfigOptions(ScoringSettings, "scoring", show_defaults=True)],
    genome_name: GenomeName = None,
    processes: Annotated[dict[str, Any], ConfigOptions(ProcessSettings, "processes", show_defaults=True)],
    quiet: Quiet = False,
) -> None:
    from glm.api import load
    from glm.io.coordinates import parse_region
    from glm.io.genome import Genome
    from glm.plots import plot_mutagenesis
    from glm.scoring import mutagenesis_matrix, mutagenesis_variants
    from glm.scoring.table import read_scores

    chosen, where = ScoringSettings(**scoring), ProcessSettings(**processes)

    def work(ranks: Ranks, device: str | None) -> tuple[int, ScoreCounts, ScoredFile]:
        lm = load(model, device=device)
        reference = Genome(genome)
        variants = mutagenesis_variants(reference, *parse_region(region, reference.lengths, str(reference.path)))
        counts, written = lm.score_file(
            variants, reference, out.table, resume=where.resume, ranks=ranks, progress=not quiet,
            genome_name=genome_name, **chosen.plan_options(),
        )  # fmt: skip
        return ranks.rank, counts, written

    rank, counts, written = where.run(work)
    if rank != 0:
        return
    print(counts.summary(written.path))
    column = "llr" if "llr" in (chosen.method or ["llr"]) else "embedding_cosine"
    positions, reference, matrix = mutagenesis_matrix(read_scores(written.path, Genome(genome), column), column)
    plot_mutagenesis(positions, reference, matrix, out.picture, title=f"{region}: {column}", label=column)
    print(f"heatmap -> {out.picture}")


@dataclass(frozen=True)
class FeatureScoringSettings:
    """How the labelled variants' features are computed."""

    window: Window = setting(Window, None)
    batch_size: ScoringBatch = setting(ScoringBatch, None)
    alias: Aliases = setting(Aliases, None)

    def __post_init__(self) -> None:
        check_fields(self)


@command(
    "fit-head",
    help="fit a supervised variant head with (grouped) cross-validation",
    description="Fit a probe on model features of labelled variants, report out-of-fold AUROC/AUPRC/MCC with 95% "
    "bootstrap intervals and per-fold values (beside any --baseline columns, with a paired bootstrap of the "
    "difference), draw the ROC curve and save the head (JSON + safetensors) to OUT for `score --head`.",
)
def fit_head(
    model: ModelDir,
    *,
    genome: GenomeFasta,
    variants: Annotated[str, Help("labelled variants: TSV/CSV (or VCF with the label in INFO)")],
    out: Annotated[OutputDirectory, Help("output directory for the head, roc.png and predictions")],
    settings: Annotated[dict[str, Any], ConfigOptions(VariantHeadSettings, "the head", show_defaults=True)],
    scoring: Annotated[dict[str, Any], ConfigOptions(FeatureScoringSettings, "features", show_defaults=True)],
    device: Device = None,
    quiet: Quiet = False,
) -> None:
    from glm.api import load
    from glm.heads.variant_heads import fit_variant_head
    from glm.model.checkpoint import require_untagged

    lm = load(model, device=device)
    require_untagged(lm.genome_tags, model, "fit-head")
    computed = FeatureScoringSettings(**scoring)
    batch_size = computed.batch_size or lm.batch_size
    chosen = VariantHeadSettings(**settings, window=computed.window, batch_size=batch_size)
    aliases = parse_aliases(computed.alias)
    report = fit_variant_head(lm.model, lm.tokenizer, variants, genome, chosen, aliases, out, progress=not quiet)
    print(report.summary())
