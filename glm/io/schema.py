"""Checked fields of the JSON files glm writes and reads back (model configs, tokenizers, heads, caches).

A file glm wrote may still be damaged, edited by hand, or made by another version of glm. Every
reader of such a file takes what it needs through `Fields`, whose getters check the type (and the
range) of each value and raise one InputError naming the file and the field:

    head.json: classes: expected a list of strings, got 3
    tokenizer.json: k: missing

`format_version` refuses a file made by a newer glm, with the fix (upgrade), instead of misreading it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from glm.errors import InputError
from glm.io.files import read_json

MISSING: Any = object()  # a getter's default when the field is required


def describe(value: Any) -> str:
    """How a value found in a file is named in a message: 'abc', 3, a list, an object, null."""
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "an object"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class Fields:
    """The fields of one JSON object read from `source`; `prefix` names where it sits (`info.features.`)."""

    def __init__(self, values: Any, source: str | Path, prefix: str = ""):
        self.source, self.prefix = source, prefix
        if not isinstance(values, dict):
            where = prefix.rstrip(".") or "top level"
            raise InputError(f"{where}: expected an object, got {describe(values)}", source)
        self.values: dict[str, Any] = values

    @classmethod
    def read(cls, path: str | Path) -> Fields:
        """The top-level object of a JSON file (read_json's errors for a missing file or bad JSON)."""
        return cls(read_json(path), path)

    def __contains__(self, key: str) -> bool:
        return key in self.values

    def problem(self, key: str, message: str) -> NoReturn:
        """Raise the InputError `FILE: prefix.key: message`."""
        raise InputError(f"{self.prefix}{key}: {message}", self.source)

    def _missing(self, key: str, default: Any) -> Any:
        """`default` for a field the object lacks; an InputError when the field is required."""
        if default is MISSING:
            self.problem(key, "missing")
        return default

    def _expected(self, key: str, what: str, value: Any) -> NoReturn:
        self.problem(key, f"expected {what}, got {describe(value)}")

    def integer(self, key: str, default: Any = MISSING, minimum: int | None = None) -> int:
        """An integer field (not a bool), at least `minimum` when given."""
        if key not in self.values:
            return self._missing(key, default)
        value = self.values[key]
        if not _is_int(value):
            self._expected(key, "an integer", value)
        if minimum is not None and value < minimum:
            self.problem(key, f"must be at least {minimum}, got {value}")
        return value

    def number(self, key: str, default: Any = MISSING) -> float:
        """A number field (an integer is accepted)."""
        if key not in self.values:
            return self._missing(key, default)
        value = self.values[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self._expected(key, "a number", value)
        return value

    def string(self, key: str, default: Any = MISSING, choices: Sequence[str] | None = None) -> str:
        """A string field; with `choices`, one of them."""
        if key not in self.values:
            return self._missing(key, default)
        value = self.values[key]
        if not isinstance(value, str):
            self._expected(key, "a string", value)
        if choices is not None and value not in choices:
            self.problem(key, f"expected one of {', '.join(choices)}, got {value!r}")
        return value

    def strings(self, key: str, default: Any = MISSING, at_least: int = 0) -> list[str]:
        """A list of strings, with at least `at_least` of them."""
        if key not in self.values:
            return self._missing(key, default)
        value = self.values[key]
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self._expected(key, "a list of strings", value)
        if len(value) < at_least:
            self.problem(key, f"expected at least {at_least} entries, got {len(value)}")
        return value

    def integers(self, key: str, length: int) -> list[int]:
        """A list of exactly `length` integers."""
        value = self.values[key] if key in self.values else self._missing(key, MISSING)
        if not isinstance(value, list) or len(value) != length or not all(_is_int(item) for item in value):
            self._expected(key, f"a list of {length} integers", value)
        return value

    def object(self, key: str, default: Any = MISSING) -> Fields:
        """A nested object, as Fields (its problems named `key.field`)."""
        value = self.values[key] if key in self.values else self._missing(key, default)
        return Fields(value, self.source, f"{self.prefix}{key}.")

    def objects(self, key: str) -> list[Fields]:
        """A list of objects, each as Fields (named `key[i].field`)."""
        value = self.values[key] if key in self.values else self._missing(key, MISSING)
        if not isinstance(value, list):
            self._expected(key, "a list", value)
        return [Fields(item, self.source, f"{self.prefix}{key}[{i}].") for i, item in enumerate(value)]

    def format_version(self, newest: int) -> int:
        """The file's `format_version` (1 when absent); one newer than `newest` was made by a newer glm."""
        version = self.integer("format_version", 1, minimum=1)
        if version > newest:
            self.problem(
                "format_version", f"{version}: made by a newer glm (this one reads up to {newest}); upgrade glm"
            )
        return version


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
