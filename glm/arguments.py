"""The command line, generated from typed functions and config dataclasses (argparse underneath).

Each subcommand is one function marked with `@command`. Its parameters become arguments:
the ones before `*` positional, the keyword-only ones options (`batch_size` -> `--batch-size`;
required when they have no default). Types give the parsing: int/float/str, `X | None` (optional),
`bool` (a flag), `list[X] | None` (a repeatable option), `Literal[...]` (choices). Help text sits
next to the parameter as `Annotated[type, Help("...")]`.

A parameter annotated `Annotated[dict[str, Any], ConfigOptions(SomeConfig)]` receives the
options generated from a config dataclass's fields (each field's help is in its metadata, see
glm.config.option): `{"model.n_layers": 8, ...}` for the options given on the command line, so
adding a config field adds its option. Options a command declares itself take precedence.

Why not jsonargparse or click: the whole mechanism is these hundred lines over argparse, with
no dependency and no configuration format of its own beside glm's YAML presets.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class Help:
    """Help of one argument; `flags` adds other names for an option, `metavar` names its value."""

    text: str
    flags: tuple[str, ...] = ()
    metavar: str | None = None


@dataclass(frozen=True)
class ConfigOptions:
    """Generate options from the fields of a config dataclass (and of its nested dataclasses)."""

    config: type
    title: str = ""
    show_defaults: bool = False  # show the dataclass's defaults (not when a preset decides them)


def command(name: str, help: str, description: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a function as the subcommand `name` (its help line, and the longer description of its --help)."""

    def register(function: Callable[..., Any]) -> Callable[..., Any]:
        function.command = (name, help, description or help[0].upper() + help[1:] + ".")  # type: ignore[attr-defined]
        return function

    return register


def build_parser(
    commands: list[Callable[..., Any]], prog: str = "glm", description: str = "", version: str | None = None
) -> argparse.ArgumentParser:
    """A parser with one subcommand per `@command` function; `args.run(args)` calls the chosen one.

    With `version`, `--version` prints it and exits.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    if version is not None:
        parser.add_argument("--version", action="version", version=version)
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for function in commands:
        name, help_text, description_text = function.command  # type: ignore[attr-defined]
        sub = subcommands.add_parser(name, help=help_text, description=description_text)
        sub.set_defaults(run=_caller(function, sub))
    return parser


def _caller(function: Callable[..., Any], parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], Any]:
    """Add `function`'s arguments to `parser`; return what calls it with a parsed Namespace."""
    hints = typing.get_type_hints(function, include_extras=True)
    plain: list[str] = []
    sections: dict[str, dict[str, str]] = {}  # parameter -> {dest: dotted config key}
    parameters = inspect.signature(function).parameters.values()
    own = {parameter.name for parameter in parameters}
    for parameter in parameters:
        kind, meta = _unwrap(hints[parameter.name])
        if isinstance(meta, ConfigOptions):
            sections[parameter.name] = _config_options(parser, meta.config(), "", meta, own)
            continue
        plain.append(parameter.name)
        positional = parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        default = None if parameter.default is inspect.Parameter.empty else parameter.default
        required = parameter.default is inspect.Parameter.empty
        _add(parser, parameter.name, kind, meta, default, positional, required, show_default=True)

    def call(namespace: argparse.Namespace) -> Any:
        values = {name: getattr(namespace, name) for name in plain}
        for name, keys in sections.items():
            given = {key: getattr(namespace, dest) for dest, key in keys.items()}
            values[name] = {key: value for key, value in given.items() if value is not None}
        return function(**values)

    return call


def _config_options(
    parser: argparse.ArgumentParser, defaults: Any, prefix: str, meta: ConfigOptions, taken: set[str]
) -> dict[str, str]:
    """Options for the fields of the config `defaults` is an instance of, one argument group per
    dataclass (nested ones too, titled by their field name); returns {dest: dotted config key}."""
    keys: dict[str, str] = {}
    hints = typing.get_type_hints(type(defaults))
    title = f"{meta.title}: {prefix.rstrip('.')}" if meta.title and prefix else meta.title or prefix.rstrip(".")
    group = None
    for item in dataclasses.fields(defaults):
        value = getattr(defaults, item.name)
        if dataclasses.is_dataclass(value):
            keys.update(_config_options(parser, value, f"{prefix}{item.name}.", meta, taken))
            continue
        flag = item.metadata.get("flag") or item.name
        if not item.metadata.get("cli", False) or flag in taken:
            continue  # not a command-line field, or one the command declares itself
        taken.add(flag)
        group = group or parser.add_argument_group(title, (type(defaults).__doc__ or "").strip())
        shown = f" (default: {value})" if meta.show_defaults and value is not None else ""
        _add(group, flag, hints[item.name], Help(item.metadata["help"] + shown), None, False, False, False, True)
        keys[flag] = f"{prefix}{item.name}"
    return keys


def _unwrap(hint: Any) -> tuple[Any, Any]:
    """(type, Help or ConfigOptions) of an `Annotated[...]` hint; (hint, None) otherwise."""
    if typing.get_origin(hint) is typing.Annotated:
        kind, *extras = typing.get_args(hint)
        return kind, extras[0]
    return hint, None


def _add(
    parser: Any,
    name: str,
    kind: Any,
    meta: Help | None,
    default: Any,
    positional: bool,
    required: bool,
    show_default: bool,
    boolean_pair: bool = False,
) -> None:
    """Add one argument: its action, type and choices from `kind`, its help from `meta`."""
    meta = meta or Help("")
    text = meta.text
    if show_default and default is not None and default is not False and default != []:
        text += f" (default: {default})"
    options: dict[str, Any] = {"help": text}
    if meta.metavar:
        options["metavar"] = meta.metavar
    kind, optional = _strip_none(kind)
    if typing.get_origin(kind) is list:
        options["action"] = "append"
        (kind,) = typing.get_args(kind)
    if kind is bool:
        options["action"] = argparse.BooleanOptionalAction if boolean_pair else "store_true"
    elif typing.get_origin(kind) is Literal:
        options["choices"] = list(typing.get_args(kind))
    else:
        options["type"] = kind
    if positional:
        if not required:
            options["nargs"] = "?"
        parser.add_argument(name, default=default, **options)
        return
    flags = [f"--{name.replace('_', '-')}", *meta.flags]
    parser.add_argument(*flags, dest=name, default=default, required=required and not optional, **options)


def _strip_none(kind: Any) -> tuple[Any, bool]:
    """(X, True) for `X | None`, (kind, False) otherwise."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        rest = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        if len(rest) == 1:
            return rest[0], True
    return kind, False
