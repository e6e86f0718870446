"""Typed configuration: the single source of truth for a model, its data and its training.

A run is described by three dataclasses (`ModelConfig`, `DataConfig`, `TrainConfig`) grouped in
`Config`. They load from and save to YAML with three top-level sections (`model`, `data`,
`train`); an unknown key is an error that names the file and suggests the closest real key.
Presets live in `configs/<name>.yaml`. This module imports no torch.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from dataclasses import asdict, dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from glm.errors import InputError

PRESETS_DIR = Path(__file__).resolve().parent.parent / "configs"


@dataclass
class ModelConfig:
    """Shape of the decoder-only Transformer."""

    vocab_size: int = 0  # filled in from the tokenizer
    n_layers: int = 4
    n_heads: int = 4
    width: int = 128
    context: int = 256  # tokens per training window
    mlp_ratio: float = 8 / 3  # SwiGLU hidden size = round_up(mlp_ratio * width, 32)
    rope_base: float = 10000.0
    dropout: float = 0.0
    norm_eps: float = 1e-5

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

    format: str = "auto"  # auto (from the file's content) | fasta | text
    tokenizer: str = "kmer"  # kmer | char | byte
    k: int = 1
    stride: int | None = None  # None: equal to k (non-overlapping k-mers)
    split: str = "auto"  # auto | tail | records
    val_fraction: float = 0.05
    rc_augment: bool = True  # reverse-complement half of the training windows
    max_unknown_fraction: float = 0.5  # resample windows with more unknown (N) tokens than this
    soft_mask_weight: float = 1.0  # loss weight of lowercase (soft-masked) bases; 1 = no down-weighting
    num_workers: int = 0
    cache_dir: str | None = None  # None: $GLM_CACHE or ~/.cache/glm

    def resolved_cache_dir(self) -> Path:
        if self.cache_dir:
            return Path(self.cache_dir).expanduser()
        return Path(os.environ.get("GLM_CACHE", Path.home() / ".cache" / "glm")).expanduser()

    def validate(self) -> None:
        if self.format not in ("auto", "fasta", "text"):
            raise InputError(f"data.format must be auto, fasta or text, got {self.format!r}")
        if self.tokenizer not in ("kmer", "char", "byte"):
            raise InputError(f"data.tokenizer must be kmer, char or byte, got {self.tokenizer!r}")
        if self.split not in ("auto", "tail", "records"):
            raise InputError(f"data.split must be auto, tail or records, got {self.split!r}")
        if not 0.0 < self.val_fraction < 1.0:
            raise InputError(f"data.val_fraction must be between 0 and 1, got {self.val_fraction}")
        if not 0.0 <= self.soft_mask_weight <= 1.0:
            raise InputError(f"data.soft_mask_weight must be between 0 and 1, got {self.soft_mask_weight}")


PRECISIONS = ("auto", "32-true", "32", "bf16-mixed", "16-mixed", "bf16-true")
STRATEGIES = ("auto", "ddp", "fsdp")


@dataclass
class TrainConfig:
    """Optimisation, hardware and bookkeeping."""

    batch_size: int = 32  # windows per step per device
    max_steps: int = 2000
    max_time: str | None = None  # wall-clock budget: "15m", "2h", "90s" or "DD:HH:MM:SS"
    lr: float = 2e-3
    min_lr_ratio: float = 0.1  # cosine decay ends at lr * min_lr_ratio
    warmup_steps: int = 100
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    accumulate: int = 1  # batches per optimizer step; derived from global_batch_tokens when that is set
    global_batch_tokens: int | None = None  # tokens per optimizer step over all processes (sets accumulate)
    precision: str = "auto"  # auto | 32-true | bf16-mixed | 16-mixed | bf16-true
    accelerator: str = "auto"
    devices: str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"  # auto (DDP when several processes) | ddp | fsdp (shards each Transformer block)
    compile: bool = False  # torch.compile each Transformer block
    activation_checkpointing: bool = False  # recompute each block's activations in the backward pass
    val_every: int = 200  # steps between validations
    val_windows: int = 256  # cap on validation windows (spread evenly over the held-out data)
    log_every: int = 10
    seed: int = 0

    def validate(self) -> None:
        for name in ("batch_size", "max_steps", "accumulate", "val_every", "val_windows", "num_nodes"):
            if getattr(self, name) < 1:
                raise InputError(f"train.{name} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise InputError(f"train.lr must be positive, got {self.lr}")
        if self.precision not in PRECISIONS:
            raise InputError(f"train.precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.strategy not in STRATEGIES:
            raise InputError(f"train.strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        if self.global_batch_tokens is not None:
            if not isinstance(self.global_batch_tokens, int) or self.global_batch_tokens < 1:
                raise InputError(f"train.global_batch_tokens must be at least 1, got {self.global_batch_tokens}")
            if self.accumulate != 1:
                raise InputError("give train.accumulate or train.global_batch_tokens (which sets it), not both")
        if self.max_time:
            parse_duration(self.max_time)


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
        path = Path(path)
        partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
        partial.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))
        os.replace(partial, path)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> Config:
        config = cls()
        _update(config, values, source, prefix="")
        return config.validate()

    def with_overrides(self, overrides: dict[str, Any], source: str = "command line") -> Config:
        """A copy with `{"model.width": 256, ...}` style overrides applied (None values skipped)."""
        nested: dict[str, dict[str, Any]] = {}
        for dotted, value in overrides.items():
            if value is None:
                continue
            section, _, key = dotted.partition(".")
            nested.setdefault(section, {})[key] = value
        config = dataclasses.replace(
            self,
            model=dataclasses.replace(self.model),
            data=dataclasses.replace(self.data),
            train=dataclasses.replace(self.train),
        )
        _update(config, nested, source, prefix="")
        return config.validate()


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
