"""Typed configuration: the single source of truth for a model, its data and its training.

A run is described by three dataclasses (`ModelConfig`, `DataConfig`, `TrainConfig`) grouped in
`Config`. They load from and save to YAML with three top-level sections (`model`, `data`,
`train`); an unknown key is an error that names the file and suggests the closest real key.
Presets live in `configs/<name>.yaml`. This module imports no torch.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import re
import typing
from dataclasses import asdict, dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import yaml

from glm.errors import InputError
from glm.io.files import atomic_file, cache_root

PRESETS_DIR = Path(__file__).resolve().parent.parent / "configs"


Strands = Literal["forward", "both"]  # both: average with the reverse complement
Pooling = Literal["mean", "max", "last"]  # over a sequence's tokens
Precision = Literal["auto", "32-true", "32", "bf16-mixed", "16-mixed", "bf16-true"]


def choices(literal: Any) -> tuple[str, ...]:
    """The values of a Literal type: choices(Strands) == ("forward", "both")."""
    return typing.get_args(literal)


def check_choice(name: str, value: Any, literal: Any) -> None:
    """An InputError unless `value` is one of the Literal's values."""
    if value not in choices(literal):
        raise InputError(f"{name} must be one of {', '.join(choices(literal))}, got {value!r}")


def option(default: Any, help: str, flag: str | None = None, cli: bool = True) -> Any:
    """A config field with its command-line help beside it (glm.arguments turns fields into options).

    flag: the option's name when it differs from the field's (`n_layers` -> `--layers`);
    cli=False keeps the field off the command line.
    """
    return field(default=default, metadata={"help": help, "flag": flag, "cli": cli})


def _check_choices(section: Any, prefix: str) -> None:
    """Check every Literal-typed field of a config section against its choices."""
    hints = typing.get_type_hints(type(section))
    for item in fields(section):
        if typing.get_origin(hints[item.name]) is Literal:
            check_choice(f"{prefix}.{item.name}", getattr(section, item.name), hints[item.name])


@dataclass
class ModelConfig:
    """Shape of the decoder-only Transformer."""

    vocab_size: int = option(0, "filled in from the tokenizer", cli=False)
    n_layers: int = option(4, "Transformer blocks", flag="layers")
    n_heads: int = option(4, "attention heads per block", flag="heads")
    width: int = option(128, "hidden width (a multiple of --heads)")
    context: int = option(256, "tokens per training window")
    mlp_ratio: float = option(8 / 3, "SwiGLU hidden size = mlp_ratio x width, rounded up to a multiple of 32")
    rope_base: float = option(10000.0, "base of the rotary position embedding frequencies")
    dropout: float = option(0.0, "dropout probability in the residual branches")
    norm_eps: float = option(1e-5, "epsilon of the RMS norms")

    @property
    def mlp_hidden(self) -> int:
        return 32 * -(-int(self.mlp_ratio * self.width) // 32)

    def validate(self) -> None:
        if self.width % self.n_heads:
            raise InputError(f"model.width ({self.width}) must be a multiple of model.n_heads ({self.n_heads})")
        if (self.width // self.n_heads) % 2:
            raise InputError("model.width / model.n_heads must be even (rotary embeddings rotate pairs)")
        for name in ("n_layers", "n_heads", "width", "context"):
            if getattr(self, name) < 1:
                raise InputError(f"model.{name} must be at least 1, got {getattr(self, name)}")


@dataclass
class DataConfig:
    """How sequences become training windows."""

    format: Literal["auto", "fasta", "text"] = option("auto", "input kind (auto: from the file's content)")
    tokenizer: Literal["kmer", "char", "byte"] = option("kmer", "kmer for DNA; char or byte for text")
    k: int = option(1, "k-mer length, 1 to 8")
    stride: int | None = option(None, "bases between k-mer starts (default k: non-overlapping)")
    split: Literal["auto", "tail", "records"] = option(
        "auto",
        "how validation data is held out: the tail of every record, or whole records (auto: records when the "
        "file has at least 20)",
    )
    val_fraction: float = option(0.05, "fraction of bases held out for validation")
    rc_augment: bool = option(True, "reverse-complement half of the training windows", flag="rc")
    max_unknown_fraction: float = option(0.5, "redraw training windows with more unknown (N) tokens than this")
    soft_mask_weight: float = option(1.0, "loss weight of lowercase (soft-masked) bases, 0 to 1")
    num_workers: int = option(0, "DataLoader worker processes", flag="workers")
    cache_dir: str | None = option(None, "where token stores are cached (default $GLM_CACHE or ~/.cache/glm)")

    def resolved_cache_dir(self) -> Path:
        if self.cache_dir:
            return Path(self.cache_dir).expanduser()
        return cache_root()

    def validate(self) -> None:
        _check_choices(self, "data")
        if not 0.0 < self.val_fraction < 1.0:
            raise InputError(f"data.val_fraction must be between 0 and 1, got {self.val_fraction}")
        if not 0.0 <= self.soft_mask_weight <= 1.0:
            raise InputError(f"data.soft_mask_weight must be between 0 and 1, got {self.soft_mask_weight}")


@dataclass
class TrainConfig:
    """Optimisation, hardware and bookkeeping."""

    batch_size: int = option(32, "windows (or sequences) per step per device")
    max_steps: int = option(2000, "optimizer steps at most")
    max_time: str | None = option(
        None, "wall-clock budget, e.g. 15m, 2h, 90s or DD:HH:MM:SS; the learning rate decays to fit it"
    )
    lr: float = option(2e-3, "peak learning rate")
    min_lr_ratio: float = option(0.1, "the cosine decay ends at lr x this")
    warmup_steps: int = option(100, "linear warmup steps")
    weight_decay: float = option(0.1, "AdamW weight decay of the weight matrices")
    beta1: float = option(0.9, "AdamW beta1")
    beta2: float = option(0.95, "AdamW beta2")
    grad_clip: float = option(1.0, "gradient norm clipping")
    accumulate: int = option(1, "batches per optimizer step (gradient accumulation)")
    global_batch_tokens: int | None = option(
        None,
        "tokens per optimizer step over all processes; sets accumulate = this / (batch size x context x "
        "processes), so a run makes the same steps on 1 or 64 GPUs",
    )
    precision: Precision = option("auto", "numeric precision (auto: bf16-mixed on GPUs and bf16-capable CPUs, else 32)")
    accelerator: str = option("auto", "auto, cpu, gpu")
    devices: str = option("auto", "processes per node: auto, a count, or a list of GPU indices such as 0,1")
    num_nodes: int = option(1, "machines (for multi-node runs under SLURM or torchrun)")
    strategy: Literal["auto", "ddp", "fsdp"] = option(
        "auto", "auto: DDP when several processes; fsdp shards each Transformer block (GPUs only)"
    )
    compile: bool = option(False, "torch.compile each Transformer block")
    activation_checkpointing: bool = option(
        False, "recompute activations in the backward pass: less memory for long contexts, about 1/3 more compute"
    )
    val_every: int = option(200, "optimizer steps between validations (and checkpoints)")
    val_windows: int = option(256, "cap on validation windows (spread evenly over the held-out data)")
    log_every: int = option(10, "steps between logged training metrics")
    seed: int = option(0, "seed for initialisation and data order")

    def validate(self) -> None:
        for name in ("batch_size", "max_steps", "accumulate", "val_every", "val_windows", "num_nodes"):
            if getattr(self, name) < 1:
                raise InputError(f"train.{name} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise InputError(f"train.lr must be positive, got {self.lr}")
        _check_choices(self, "train")
        if self.global_batch_tokens is not None:
            if not isinstance(self.global_batch_tokens, int) or self.global_batch_tokens < 1:
                raise InputError(f"train.global_batch_tokens must be at least 1, got {self.global_batch_tokens}")
            if self.accumulate != 1:
                raise InputError("give train.accumulate or train.global_batch_tokens (which sets it), not both")
        if self.max_time:
            parse_duration(self.max_time)


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
    patience: int = option(5, "dev evaluations without improvement before stopping")
    train: TrainConfig = field(default_factory=_finetune_training)

    def validate(self) -> FinetuneConfig:
        check_choice("pooling", self.pooling, Pooling)
        check_choice("strands", self.strands, Strands)
        if self.patience < 1:
            raise InputError(f"patience must be at least 1, got {self.patience}")
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
        _update(config, values, source, prefix="")
        return config.validate()

    def with_overrides(self, overrides: dict[str, Any], source: str = "command line") -> Config:
        """A copy with `{"model.width": 256, ...}` style overrides applied (None values skipped)."""
        return with_overrides(self, overrides, source)


def with_overrides(config: Any, overrides: dict[str, Any], source: str = "command line") -> Any:
    """A validated copy of a config dataclass with dotted-key overrides (`{"train.lr": 1e-3}`); None skipped."""
    nested: dict[str, Any] = {}
    for dotted, value in overrides.items():
        if value is None:
            continue
        *parents, key = dotted.split(".")
        target = nested
        for parent in parents:
            target = target.setdefault(parent, {})
        target[key] = value
    updated = copy.deepcopy(config)
    _update(updated, nested, source, prefix="")
    return updated.validate()


def _update(obj: Any, values: dict[str, Any], source: str, prefix: str) -> None:
    if not isinstance(values, dict):
        raise InputError(
            f"{prefix.rstrip('.') or 'top level'}: expected a mapping, got {type(values).__name__}", source
        )
    known = {f.name: f for f in fields(obj)}
    for key, value in values.items():
        if key not in known:
            close = difflib.get_close_matches(str(key), list(known), n=1)
            hint = f" (did you mean {prefix}{close[0]}?)" if close else f" (known: {', '.join(known)})"
            raise InputError(f"unknown key {prefix}{key}{hint}", source)
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            _update(current, value, source, prefix=f"{prefix}{key}.")
        else:
            setattr(obj, key, _coerce(value, current, f"{prefix}{key}", source))


def _coerce(value: Any, current: Any, name: str, source: str) -> Any:
    """Check a YAML/CLI value against the type of the default it replaces."""
    if value is None or current is None:
        return value
    try:
        if isinstance(current, bool):
            if isinstance(value, str):
                if value.lower() in ("true", "yes", "1"):
                    return True
                if value.lower() in ("false", "no", "0"):
                    return False
                raise ValueError
            return bool(value)
        if isinstance(current, int):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if isinstance(current, float):
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise InputError(f"{name}: expected {type(current).__name__}, got {value!r}", source) from None


def preset_path(name: str) -> Path:
    """`configs/<name>.yaml` for a preset name; a path to a YAML file is returned as it is."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    candidate = PRESETS_DIR / f"{name}.yaml"
    if not candidate.exists():
        available = sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))
        raise InputError(f"no preset named {name!r} (available: {', '.join(available)})", PRESETS_DIR)
    return candidate


def load_config(name_or_path: str | Path) -> Config:
    """Load a preset name (`tiny`) or a YAML file into a validated `Config`."""
    path = preset_path(str(name_or_path))
    if not path.exists():
        raise InputError("no such config file", path)
    try:
        values = yaml.safe_load(path.read_text()) or {}
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
