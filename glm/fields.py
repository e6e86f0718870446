"""Option fields of glm's config and settings dataclasses: declared, checked and updated.

`option(...)` declares a field with its command-line help and allowed range beside it (glm.arguments
turns such fields into options); `check_fields` checks a dataclass's Literal choices and `Bounds`;
`with_overrides` / `update_fields` set fields from dotted keys or nested mappings, each value
checked against the type of the default it replaces, an unknown key named with the closest real one.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import re
import typing
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from glm.errors import InputError, check_choice


@dataclass(frozen=True)
class Bounds:
    """An allowed numeric range, written as an interval: Bounds.parse("[0, 1)"), "[1, inf)", "(0, inf)"."""

    low: float
    high: float
    low_closed: bool
    high_closed: bool

    @classmethod
    def parse(cls, text: str) -> Bounds:
        match = re.fullmatch(r"([\[(])\s*(-?[\d.e+-]+|-inf)\s*,\s*(-?[\d.e+-]+|inf)\s*([\])])", text)
        assert match, f"not an interval: {text!r}"
        return cls(float(match.group(2)), float(match.group(3)), match.group(1) == "[", match.group(4) == "]")

    def __contains__(self, value: float) -> bool:
        above = value >= self.low if self.low_closed else value > self.low
        below = value <= self.high if self.high_closed else value < self.high
        return above and below

    def __str__(self) -> str:
        low, high = f"{self.low:g}", f"{self.high:g}"
        if self.high == math.inf:
            return f"at least {low}" if self.low_closed else f"above {low}"
        if self.low_closed and self.high_closed:
            return f"between {low} and {high}"
        return f"in {'[' if self.low_closed else '('}{low}, {high}{']' if self.high_closed else ')'}"


def check_bounds(name: str, value: Any, bounds: str | Bounds) -> None:
    """An InputError unless `value` (a number, or None for "not set") lies in `bounds`."""
    bounds = Bounds.parse(bounds) if isinstance(bounds, str) else bounds
    if value is not None and value not in bounds:
        raise InputError(f"{name} must be {bounds}, got {value}")


def option(
    default: Any,
    help: str,  # noqa: A002
    flag: str | None = None,
    cli: bool = True,
    bounds: str | None = None,
    negatable: bool = True,
) -> Any:
    """A config field with its command-line help beside it (glm.arguments turns fields into options).

    flag: the option's name when it differs from the field's (`n_layers` -> `--layers`);
    cli=False keeps the field off the command line; bounds: the allowed range as an interval
    ("[0, 1)", "[1, inf)"), checked by `validate` and shown in the help; negatable=False: a bool
    field is the plain flag `--X`, without `--no-X` (for one off unless given, which no preset sets).
    """
    metadata = {"help": help, "flag": flag, "cli": cli, "bounds": bounds, "negatable": negatable}
    return field(default=default, metadata=metadata)


def check_fields(section: Any, prefix: str = "") -> None:
    """Check every field of a config section: Literal fields against their choices, numbers against bounds.

    Errors name a field `prefix.field` (just `field` without a prefix).
    """
    hints = typing.get_type_hints(type(section))
    for item in fields(section):
        name, value = f"{prefix}.{item.name}" if prefix else item.name, getattr(section, item.name)
        if typing.get_origin(hints[item.name]) is Literal:
            check_choice(name, value, hints[item.name])
        if item.metadata.get("bounds"):
            check_bounds(name, value, item.metadata["bounds"])


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
    update_fields(updated, nested, source)
    return updated.validate()


def update_fields(obj: Any, values: dict[str, Any], source: str, prefix: str = "") -> None:
    """Set the fields of dataclass `obj` (nested ones too) from a mapping; `source` and `prefix` name them in errors."""
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
            update_fields(current, value, source, prefix=f"{prefix}{key}.")
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
        if isinstance(current, list):
            return [str(item) for item in (value if isinstance(value, list) else [value])]
        return str(value)
    except (TypeError, ValueError):
        raise InputError(f"{name}: expected {type(current).__name__}, got {value!r}", source) from None
