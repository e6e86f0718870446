"""Typed configuration: the single source of truth for a model, its data and its training.

A run is described by three dataclasses (`ModelConfig`, `DataConfig`, `TrainConfig`) grouped in
`Config`. They load from and save to YAML with three top-level sections (`model`, `data`,
`train`); an unknown key is an error that names the file and suggests the closest real key.
Presets are package data, `glm/presets/<name>.yaml`, read through importlib.resources so they are
there in every install (a wheel, `pip install git+URL`, a checkout). Fields are declared, checked and
updated by glm.fields (`option`: help and bounds beside each). This module imports no torch.
"""

from __future__ import annotations

import importlib.resources
import re
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

from glm.errors import InputError
from glm.fields import check_fields, option, update_fields, with_overrides
from glm.io.files import atomic_file, cache_root, read_text

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

PRESETS = importlib.resources.files("glm") / "presets"  # shipped inside the package (pyproject package-data)


Strands = Literal["forward", "both"]  # both: average with the reverse complement
Pooling = Literal["mean", "max", "last"]  # over a sequence's tokens
Precision = Literal["auto", "32-true", "32", "bf16-mixed", "16-mixed", "bf16-true"]
InferencePrecision = Literal["float32", "bf16"]  # scoring and tracks: bf16 autocast only when asked
TrackMethod = Literal["logprob", "llr"]  # per-base tracks (glm.scoring.tracks): cheap log-probs, or exact llr
ProbeKind = Literal["logistic", "boosting"]  # glm.heads.probes
FeatureKind = Literal["embedding", "kmer"]  # what a sequence probe reads (glm.heads.features)
VariantFeatures = Literal["all", "scores"]  # a variant head's features: five scores (+ the embedding delta)


@dataclass
class ModelConfig:
    """Shape of the decoder-only Transformer."""

    vocab_size: int = option(0, "filled in from the tokenizer", cli=False)
    n_layers: int = option(4, "Transformer blocks", flag="layers", bounds="[1, inf)")
    n_heads: int = option(4, "attention heads per block", flag="heads", bounds="[1, inf)")
    width: int = option(128, "hidden width (a multiple of --heads)", bounds="[1, inf)")
    context: int = option(256, "tokens per training window", bounds="[1, inf)")
    mlp_ratio: float = option(
        8 / 3, "SwiGLU hidden size = mlp_ratio x width, rounded up to a multiple of 32", bounds="(0, inf)"
    )
    rope_base: float = option(10000.0, "base of the rotary position embedding frequencies", bounds="(1, inf)")
    dropout: float = option(0.0, "dropout probability in the residual branches", bounds="[0, 1)")
    norm_eps: float = option(1e-5, "epsilon of the RMS norms", bounds="(0, inf)")
    # The recipe options of issue 12 (docs/BENCHMARKS.md, "Recipe"): each defaults to the block
    # every earlier model was trained with; LEGACY_MODEL keeps it so when a saved config lacks one.
    mlp: Literal["swiglu", "relu2"] = option(
        "swiglu", "MLP: SwiGLU, or squared ReLU with the same parameter count (1.5x the hidden size)"
    )
    qk_norm: bool = option(False, "RMS-normalise queries and keys before attention (QK-norm)")
    zero_init: bool = option(False, "start the projections that write into the residual stream at zero")
    tie_embeddings: bool = option(True, "share the input embedding with the output head")
    value_embeddings: bool = option(
        False, "a second token embedding mixed into every layer's attention values (as in modded-nanogpt)"
    )
    logit_cap: float = option(0.0, "soft-cap the logits at +-this with tanh (0: off)", bounds="[0, inf)")

    @property
    def mlp_hidden(self) -> int:
        """Hidden size of the MLP: ReLU²'s two matrices hold exactly the parameters of SwiGLU's three."""
        swiglu = 32 * -(-int(self.mlp_ratio * self.width) // 32)
        return 3 * swiglu // 2 if self.mlp == "relu2" else swiglu

    def validate(self) -> None:
        check_fields(self, "model")
        if self.width % self.n_heads:
            raise InputError(f"model.width ({self.width}) must be a multiple of model.n_heads ({self.n_heads})")
        if (self.width // self.n_heads) % 2:
            raise InputError("model.width / model.n_heads must be even (rotary embeddings rotate pairs)")


# The recipe options' values in every model exported before they existed (format 1 without
# them): load_model fills them in, so a new default never changes an old model.
LEGACY_MODEL: dict[str, Any] = {
    "mlp": "swiglu",
    "qk_norm": False,
    "zero_init": False,
    "tie_embeddings": True,
    "value_embeddings": False,
    "logit_cap": 0.0,
}


@dataclass
class DataConfig:
    """How sequences become training windows."""

    format: Literal["auto", "fasta", "text"] = option("auto", "input kind (auto: from the file's content)")
    tokenizer: Literal["kmer", "char", "byte"] = option("kmer", "kmer for DNA; char or byte for text")
    k: int = option(1, "k-mer length", bounds="[1, 8]")
    stride: int | None = option(None, "bases between k-mer starts (default k: non-overlapping)", bounds="[1, 8]")
    split: Literal["auto", "tail", "records"] = option(
        "auto",
        "how validation data is held out: the tail of every record, or whole records (auto: records when the "
        "file has at least 20)",
    )
    val_fraction: float = option(0.05, "fraction of bases held out for validation", bounds="(0, 1)")
    rc_augment: bool = option(True, "reverse-complement half of the training windows", flag="rc")
    max_unknown_fraction: float = option(
        0.5, "redraw training windows with more unknown (N) tokens than this", bounds="[0, 1]"
    )
    soft_mask_weight: float = option(1.0, "loss weight of lowercase (soft-masked) bases", bounds="[0, 1]")
    num_workers: int = option(
        0, "DataLoader worker processes (at most the CPUs the threads leave free)", flag="workers", bounds="[0, inf)"
    )
    genome_temperature: float = option(
        1.0,
        "with several genomes, windows are drawn in proportion to genome size ** this: 1 by size, 0 every "
        "genome equally (a manifest's weights replace it)",
        bounds="[0, 1]",
    )
    holdout_genomes: list[str] | None = option(
        None, "genome names kept out of training and only validated (repeatable)", flag="holdout_genomes"
    )
    genome_tokens: bool = option(
        False,
        "give each genome (or manifest group) its own token at the start of every window, so one model "
        "conditions on the species (inference then takes --genome-name)",
    )
    cache_dir: str | None = option(None, "where token stores are cached (default $GLM_CACHE or ~/.cache/glm)")

    def resolved_cache_dir(self) -> Path:
        if self.cache_dir:
            return Path(self.cache_dir).expanduser()
        return cache_root()

    def validate(self) -> None:
        check_fields(self, "data")
        if self.stride is not None and self.stride > self.k:
            raise InputError(f"data.stride must be at most data.k ({self.k}), got {self.stride}")


@dataclass
class TrainConfig:
    """Optimisation, hardware and bookkeeping."""

    batch_size: int = option(32, "windows (or sequences) per step per device", bounds="[1, inf)")
    max_steps: int = option(2000, "optimizer steps at most", bounds="[1, inf)")
    max_time: str | None = option(
        None, "wall-clock budget, e.g. 15m, 2h, 90s or DD:HH:MM:SS; the learning rate decays to fit it"
    )
    lr: float = option(2e-3, "peak learning rate", bounds="(0, inf)")
    min_lr_ratio: float = option(0.1, "the cosine decay ends at lr x this", bounds="[0, 1]")
    warmup_steps: int = option(100, "linear warmup steps (at most a quarter of --max-steps)", bounds="[0, inf)")
    weight_decay: float = option(0.1, "AdamW weight decay of the weight matrices", bounds="[0, inf)")
    beta1: float = option(0.9, "AdamW beta1", bounds="[0, 1)")
    beta2: float = option(0.95, "AdamW beta2", bounds="[0, 1)")
    optimizer: Literal["adamw", "muon"] = option(
        "adamw", "adamw for everything, or Muon for the blocks' weight matrices (AdamW for the rest)"
    )
    muon_lr: float = option(0.02, "peak learning rate of the Muon matrices", bounds="(0, inf)")
    muon_momentum: float = option(0.95, "Muon's (Nesterov) momentum", bounds="[0, 1)")
    schedule: Literal["cosine", "wsd"] = option(
        "cosine", "after warmup: cosine decay, or warmup-stable-decay (constant, then linear over --decay-fraction)"
    )
    decay_fraction: float = option(0.2, "wsd: the final share of the budget that decays linearly", bounds="(0, 1]")
    grad_clip: float = option(1.0, "gradient norm clipping (0: none)", bounds="[0, inf)")
    accumulate: int = option(1, "batches per optimizer step (gradient accumulation)", bounds="[1, inf)")
    global_batch_tokens: int | None = option(
        None,
        "tokens per optimizer step over all processes; sets accumulate = this / (batch size x context x "
        "processes), so a run makes the same steps on 1 or 64 GPUs",
        bounds="[1, inf)",
    )
    precision: Precision = option("auto", "numeric precision (auto: bf16-mixed on GPUs and bf16-capable CPUs, else 32)")
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"] = option(
        "auto", "where to train (auto: a GPU when present)"
    )
    devices: str = option("auto", "processes per node: auto, a count, or a list of GPU indices such as 0,1")
    num_nodes: int = option(1, "machines (for multi-node runs under SLURM or torchrun)", bounds="[1, inf)")
    strategy: Literal["auto", "ddp", "fsdp"] = option(
        "auto", "auto: DDP when several processes; fsdp shards each Transformer block (GPUs only)"
    )
    compile: bool = option(False, "torch.compile each Transformer block")
    activation_checkpointing: bool = option(
        False, "recompute activations in the backward pass: less memory for long contexts, about 1/3 more compute"
    )
    val_every: int = option(
        200, "optimizer steps between validations (and checkpoints); the last step validates too", bounds="[1, inf)"
    )
    val_windows: int = option(
        256, "cap on validation windows (spread evenly over the held-out data)", bounds="[1, inf)"
    )
    log_every: int = option(10, "steps between logged training metrics", bounds="[1, inf)")
    seed: int = option(0, "seed for initialisation and data order", bounds="[0, inf)")

    def validate(self) -> None:
        check_fields(self, "train")
        if self.global_batch_tokens is not None and self.accumulate != 1:
            raise InputError("give train.accumulate or train.global_batch_tokens (which sets it), not both")
        if self.max_time and parse_duration(self.max_time).total_seconds() <= 0:
            raise InputError(f"train.max_time must be above 0, got {self.max_time!r}")
        if self.optimizer == "muon" and self.strategy == "fsdp":
            # FSDP hands each rank a flat shard of every matrix; Muon orthogonalises whole matrices.
            raise InputError("train.optimizer muon needs whole weight matrices: use strategy ddp (or auto), not fsdp")
        devices = str(self.devices).strip().strip("[]")
        if devices not in ("auto", "-1") and not re.fullmatch(r"\d+|\d+(\s*,\s*\d+)+,?|\d+,", devices):
            raise InputError(
                f"train.devices: expected auto, a count (1 or more) or GPU indices such as 0,1; got {self.devices!r}"
            )
        if devices.isdigit() and int(devices) < 1:
            raise InputError("train.devices must be at least 1 (or auto), got 0")


def _finetune_training() -> TrainConfig:
    # A pretrained model wants a gentler learning rate, a shorter warmup and more frequent dev checks.
    return TrainConfig(lr=5e-4, warmup_steps=50, val_every=100)


@dataclass
class FinetuneConfig:
    """Fine-tuning a pretrained model end to end as a sequence classifier."""

    # layer, pooling and strands are fit-classifier's own options, shared with the probes.
    layer: int = option(-1, "hidden layer that is pooled", cli=False)
    # The last token is the only one whose causal state has seen the whole sequence; on the
    # prom_300_tata dev split it beat mean pooling clearly (AUROC 0.774 against 0.672).
    pooling: Pooling = option("last", "pooling over tokens", cli=False)
    strands: Strands = option(
        "both", "reverse-complement augmentation in training, both strands averaged in prediction", cli=False
    )
    patience: int = option(5, "dev evaluations without improvement before stopping", bounds="[1, inf)")
    train: TrainConfig = field(default_factory=_finetune_training)

    def validate(self) -> FinetuneConfig:
        check_fields(self, "finetune")
        self.train.validate()
        return self


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> Config:
        self.model.validate()
        self.data.validate()
        self.train.validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: str | Path) -> None:
        """Write YAML atomically (every rank of a distributed run may save while another reads)."""
        with atomic_file(path) as partial:
            partial.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> Config:
        config = cls()
        update_fields(config, values, source)
        return config.validate()

    def with_overrides(self, overrides: dict[str, Any], source: str = "command line") -> Config:
        """A copy with `{"model.width": 256, ...}` style overrides applied (None values skipped)."""
        return with_overrides(self, overrides, source)


def preset_names() -> list[str]:
    """The presets shipped with glm: ["base", "small", "text", "tiny"]."""
    return sorted(item.name.removesuffix(".yaml") for item in PRESETS.iterdir() if item.name.endswith(".yaml"))


def preset_path(name: str) -> Path | Traversable:
    """The packaged `presets/<name>.yaml` for a preset name; a path to a YAML file is returned as it is."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    candidate = PRESETS / f"{name}.yaml"
    if not candidate.is_file():
        available = ", ".join(preset_names())
        raise InputError(f"no preset named {name!r} (available: {available}); or give the path of a YAML file")
    return candidate


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (plain YAML keeps the last, silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in first_line:
                problem = f"key {key!r} given twice, first at line {first_line[key]}"
                raise yaml.constructor.ConstructorError(None, None, problem, key_node.start_mark)
            first_line[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


def load_config(name_or_path: str | Path) -> Config:
    """Load a preset name (`tiny`) or a YAML file into a validated `Config`."""
    path = preset_path(str(name_or_path))
    if isinstance(path, Path) and path.is_dir():
        raise InputError("is a directory; --config takes a preset name or a YAML file", path)
    if isinstance(path, Path) and not path.exists():  # a preset was found by preset_path
        raise InputError("no such config file", path)
    text = read_text(path) if isinstance(path, Path) else path.read_text()  # a user's file is checked as every input
    try:
        values = yaml.load(text, Loader=_UniqueKeyLoader) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise InputError(f"not valid YAML ({getattr(error, 'problem', error)})", path, line) from None
    return Config.from_dict(values, source=str(path))


def parse_duration(text: str) -> timedelta:
    """'90s', '15m', '2h', '1.5h', '1d' or Lightning's 'DD:HH:MM:SS' as a timedelta."""
    text = str(text).strip()
    if re.fullmatch(r"\d+:\d\d:\d\d:\d\d", text):
        days, hours, minutes, seconds = (int(part) for part in text.split(":"))
        return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhd]?)", text)
    if not match:
        raise InputError(f"train.max_time: expected e.g. 90s, 15m, 2h or DD:HH:MM:SS, got {text!r}")
    unit = {"s": "seconds", "": "minutes", "m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
    return timedelta(**{unit: float(match.group(1))})
