"""Arguments and settings several subcommands share, each declared once with its help."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from glm.arguments import Help, setting
from glm.config import InferencePrecision, Pooling, Strands
from glm.fields import check_fields, option
from glm.errors import InputError
from glm.io.paths import OutputFile
from glm.io.tabix import INDEX_SUFFIXES

if TYPE_CHECKING:
    from glm.io.shards import Ranks

T = TypeVar("T")

ModelDir = Annotated[str, Help("model directory: glm's (runs/NAME/model) or a transformers causal DNA model")]
Device = Annotated[str | None, Help("cpu or cuda (default: cuda when present)")]
Threads = Annotated[
    int | None,
    Help("CPU threads (default: the allowed CPUs other processes leave free; see README, Threads)", bounds="[1, inf)"),
]
Quiet = Annotated[bool, Help("no progress bars")]
GenomeFasta = Annotated[str, Help("reference FASTA the variants refer to (.gz allowed)")]
Window = Annotated[int | None, Help("bases per scoring window (default: the model's context)", bounds="[1, inf)")]
ScoringBatch = Annotated[int | None, Help("windows per forward pass (default 16)", bounds="[1, inf)")]
Methods = Annotated[
    list[Literal["llr", "embedding"]] | None, Help("score to compute; repeat for several (default llr)")
]
StrandChoice = Annotated[Strands, Help("both: average with the reverse-complement strand")]
Aliases = Annotated[list[str] | None, Help("contig name mapping VARIANT_NAME=GENOME_NAME (repeatable)")]
Layer = Annotated[int, Help("0 = token embeddings, i = block i, -1 = final")]
PoolingChoice = Annotated[Pooling, Help("over tokens")]
Precision = Annotated[
    InferencePrecision, Help("bf16: autocast, faster on a GPU; values move a little (docs/VARIANTS.md)")
]
GenomeName = Annotated[
    str | None,
    Help("for a model trained with --genome-tokens: the genome (or group) whose token to condition on"),
]


@dataclass(frozen=True)
class ScoringSettings:
    """How the variants are scored."""

    # glm.scoring.plan.make_plan declares these options; None leaves its default.

    method: Methods = setting(Methods, None)
    strands: StrandChoice = setting(StrandChoice, "both")
    window: Window = setting(Window, None)
    batch_size: ScoringBatch = setting(ScoringBatch, None)
    chunk_size: int | None = option(
        None,
        "variants read, scored and written together, each chunk a shard of a run on several processes (default 10000)",
        bounds="[1, inf)",
    )
    precision: Precision = setting(Precision, "float32")

    def __post_init__(self) -> None:
        check_fields(self)

    def plan_options(self) -> dict[str, Any]:
        """The options given, as make_plan's keywords (the others keep make_plan's defaults)."""
        given = {"method": self.method, "strands": self.strands, "window": self.window, "batch_size": self.batch_size}
        given.update(chunk_size=self.chunk_size, precision=self.precision)
        return {name: value for name, value in given.items() if value is not None}


@dataclass(frozen=True)
class FileScoringSettings(ScoringSettings):
    """How the variants are scored, and which of them."""

    alias: Aliases = setting(Aliases, None)
    skip_ref_mismatch: bool = option(
        False, "report variants whose REF disagrees with the genome, not stop", negatable=False
    )
    head: str | None = option(None, "variant head directory from fit-head: adds a head_probability column")
    regions: list[str] | None = option(
        None, "score only variants in CHR:START-END (1-based), a contig, or a BED file (repeatable)"
    )


@dataclass(frozen=True)
class ProcessSettings:
    """Where the work runs: the device, and the processes sharing it."""

    device: Device = setting(Device, None)
    devices: int = option(
        1,
        "processes per node, each computing its share of the shards (chunks of variants, pieces of a track; "
        "Lightning starts them, or torchrun or srun does; README: Scoring on many processes)",
        bounds="[1, inf)",
    )
    num_nodes: int = option(1, "machines, each running --devices processes", bounds="[1, inf)")
    resume: bool = option(False, "keep the shards an interrupted run finished (in OUT.parts/)", negatable=False)

    def __post_init__(self) -> None:
        check_fields(self)

    def run(self, work: Callable[[Ranks, str | None], T]) -> T:
        """`work(ranks, device)` in this process, or on devices x num_nodes processes (Lightning's, then)."""
        launched = max(int(os.environ.get(name) or 1) for name in ("WORLD_SIZE", "SLURM_NTASKS"))  # torchrun, srun
        if self.devices * self.num_nodes == 1 and launched == 1:
            from glm.io.shards import ONE_PROCESS

            return work(ONE_PROCESS, self.device)
        from glm.training.processes import on_processes  # Lightning: only for several processes

        return on_processes(work, self.device, self.devices, self.num_nodes)


class VariantsOutput(OutputFile):
    """score's output, and for .vcf.gz the tabix (or CSI) index written beside it."""

    def written(self) -> list[Path]:
        path = Path(self)
        if not self.lower().endswith(".gz"):
            return [path]
        return [path, *(path.with_name(path.name + suffix) for suffix in INDEX_SUFFIXES)]


class EmbeddingsOutput(OutputFile):
    """embed's .npy file and the names table beside it."""

    @property
    def names(self) -> Path:
        """OUT.names.tsv (a .npy ending dropped): row index, name, label."""
        path = Path(self)
        return path.with_name(path.name.removesuffix(".npy") + ".names.tsv")

    def written(self) -> list[Path]:
        return [Path(self), self.names]


class MutagenesisOutput(OutputFile):
    """mutagenesis's prefix: PREFIX.tsv and PREFIX.png (a .tsv or .png ending dropped)."""

    def _with(self, suffix: str) -> Path:
        prefix = Path(self.removesuffix(".tsv").removesuffix(".png"))
        return prefix.with_name(prefix.name + suffix)

    @property
    def table(self) -> Path:
        return self._with(".tsv")

    @property
    def picture(self) -> Path:
        return self._with(".png")

    def written(self) -> list[Path]:
        return [self.table, self.picture]


def inputs(what: str) -> Any:
    """The --input option (also --fasta, --table): one or more files of sequences."""
    text = (
        f"{what}: FASTA, CSV/TSV with a 'sequence' column, or LABEL=FASTA (kind read from the content; "
        "repeat for several files)"
    )
    return Annotated[list[str], Help(text, flags=("--fasta", "--table"), metavar="FILE")]


def parse_aliases(pairs: list[str] | None) -> dict[str, str]:
    """["MT=MT_human", ...] -> {"MT": "MT_human", ...}."""
    aliases = {}
    for pair in pairs or []:
        name, equals, target = pair.partition("=")
        if not (equals and name and target):
            raise InputError(f"--alias: expected NAME=CONTIG (e.g. MT=chrM), got {pair!r}")
        aliases[name] = target
    return aliases
