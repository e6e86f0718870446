"""The command line, generated from typed functions and config dataclasses (argparse underneath).

Each subcommand is one function marked with `@command`. Its parameters become arguments:
the ones before `*` positional, the keyword-only ones options (`batch_size` -> `--batch-size`;
required when they have no default). Types give the parsing: int/float/str, `X | None` (optional),
`bool` (a flag), `list[X] | None` (a repeatable option), `Literal[...]` (choices). Help text sits
next to the parameter as `Annotated[type, Help("...")]`.

A parameter annotated `Annotated[dict[str, Any], ConfigOptions(SomeConfig)]` receives the
options generated from a config dataclass's fields (each field's help is in its metadata, see
glm.fields.option): `{"model.n_layers": 8, ...}` for the options given on the command line, so
adding a config field adds its option. Options a command declares itself take precedence. A field
without a default (`option(dataclasses.MISSING, ...)`) is a required option. A field declared with
`setting(SomeArgument, default)` shares the help and bounds of an argument type other commands take
as a plain parameter.

Before a command runs, its outputs (OutputFile / OutputDirectory values, with the sidecars each
lists in `written()`) are compared with every path it was given: one that would overwrite an
input is refused, for every command (glm.io.paths.check_outputs_apart).

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

from glm.fields import Bounds, option
from glm.errors import InputError
from glm.io.paths import OutputDirectory, OutputFile, check_outputs_apart


@dataclass(frozen=True)
class Help:
    """Help of one argument; `flags` adds other names for an option, `metavar` names its value."""

    text: str
    flags: tuple[str, ...] = ()
    metavar: str | None = None
    bounds: str | None = None  # allowed range as an interval, "[1, inf)": checked when parsed, shown in the help


@dataclass(frozen=True)
class ConfigOptions:
    """Generate options from the fields of a config dataclass (and of its nested dataclasses)."""

    config: type
    title: str = ""
    show_defaults: bool = False  # show the dataclass's defaults (not when a preset decides them)


def setting(argument: Any, default: Any) -> Any:
    """A settings field for an argument type `Annotated[type, Help(...)]` that plain parameters share:
    annotated with that type, the field's option gets the same help and bounds (declared once)."""
    _, meta = annotation_parts(argument)
    assert isinstance(meta, Help) and not (meta.flags or meta.metavar), argument
    return option(default, meta.text, bounds=meta.bounds)


def command(name: str, help: str, description: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:  # noqa: A002
    """Mark a function as the subcommand `name` (its help line, and the longer description of its --help)."""

    def register(function: Callable[..., Any]) -> Callable[..., Any]:
        function.command = (name, help, description or help[0].upper() + help[1:] + ".")  # type: ignore[attr-defined]
        return function

    return register


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (as glm's own errors are) instead of the whole usage."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def build_parser(
    commands: list[Callable[..., Any]],
    prog: str = "glm",
    description: str = "",
    version: str | None = None,
    shared: dict[str, Any] | None = None,
) -> argparse.ArgumentParser:
    """A parser with one subcommand per `@command` function; `args.run(args)` calls the chosen one.

    With `version`, `--version` prints it and exits. `shared` ({name: Annotated type}) are options of
    every command, read by the caller (`args.NAME`, None when not given), not passed to the functions:
    accepted before the command (`glm --threads 2 eval ...`) and after it (`glm eval ... --threads 2`).
    """
    parser = _Parser(prog=prog, description=description)
    if version is not None:
        parser.add_argument("--version", action="version", version=version)
    for name, hint in (shared or {}).items():
        _add(parser, name, *annotation_parts(hint), None, False, False, shown=None)
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for function in commands:
        name, help_text, description_text = function.command  # type: ignore[attr-defined]
        sub = subcommands.add_parser(name, help=help_text, description=description_text)
        for option_name, hint in (shared or {}).items():
            # SUPPRESS: an option not repeated after the command keeps the value given before it.
            _add(sub, option_name, *annotation_parts(hint), argparse.SUPPRESS, False, False, shown=None)
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
        kind, meta = annotation_parts(hints[parameter.name])
        if isinstance(meta, ConfigOptions):
            sections[parameter.name] = _config_options(parser, meta.config, "", meta, own)
            continue
        plain.append(parameter.name)
        positional = parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        default = None if parameter.default is inspect.Parameter.empty else parameter.default
        required = parameter.default is inspect.Parameter.empty
        _add(parser, parameter.name, kind, meta, default, positional, required, shown=default)

    def call(namespace: argparse.Namespace) -> Any:
        values = {name: getattr(namespace, name) for name in plain}
        for name, keys in sections.items():
            given = {key: getattr(namespace, dest) for dest, key in keys.items()}
            values[name] = {key: value for key, value in given.items() if value is not None}
        _check_outputs_apart(values)
        return function(**values)

    return call


def _check_outputs_apart(values: dict[str, Any]) -> None:
    """Refuse (an InputError) any output that would overwrite an input, for every command: the outputs
    are the values of OutputFile / OutputDirectory options, the inputs every other path given (a
    LABEL=FILE value names FILE); see glm.io.paths.check_outputs_apart."""
    given = list(_leaves(values))
    kinds = (OutputFile, OutputDirectory)
    outputs = [value for value in given if isinstance(value, kinds)]
    texts = [value for value in given if isinstance(value, str) and not isinstance(value, kinds)]
    check_outputs_apart(outputs, [path for text in texts for path in (text, text.partition("=")[2]) if path])


def _leaves(value: Any) -> Any:
    """The plain values inside parsed arguments (lists and sections opened)."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


def _config_options(
    parser: argparse.ArgumentParser, defaults: Any, prefix: str, meta: ConfigOptions, taken: set[str]
) -> dict[str, str]:
    """Options for the fields of a config dataclass (`defaults`: the class, or a nested instance holding the
    defaults), one argument group per dataclass (nested ones too, titled by their field name); returns
    {dest: dotted config key}."""
    keys: dict[str, str] = {}
    config = defaults if isinstance(defaults, type) else type(defaults)
    hints = typing.get_type_hints(config)
    title = f"{meta.title}: {prefix.rstrip('.')}" if meta.title and prefix else meta.title or prefix.rstrip(".")
    group = None
    for item in dataclasses.fields(config):
        value = _default_of(defaults, item)
        if dataclasses.is_dataclass(value):
            keys.update(_config_options(parser, value, f"{prefix}{item.name}.", meta, taken))
            continue
        flag = item.metadata.get("flag") or item.name
        if not item.metadata.get("cli", False) or flag in taken:
            continue  # not a command-line field, or one the command declares itself
        taken.add(flag)
        group = group or parser.add_argument_group(title, (config.__doc__ or "").strip())
        required = value is dataclasses.MISSING
        shown = value if meta.show_defaults and not required else None
        bounds = item.metadata.get("bounds")
        help_text = Help(item.metadata["help"], bounds=bounds)
        pair = item.metadata.get("negatable", True)
        _add(group, flag, hints[item.name], help_text, None, False, required, shown=shown, boolean_pair=pair)
        keys[flag] = f"{prefix}{item.name}"
    return keys


def _default_of(defaults: Any, item: dataclasses.Field[Any]) -> Any:
    """A field's value in the instance `defaults`, or its declared default when `defaults` is the class
    (dataclasses.MISSING for a field without one)."""
    if not isinstance(defaults, type):
        return getattr(defaults, item.name)
    if item.default_factory is not dataclasses.MISSING:
        return item.default_factory()
    return item.default


def annotation_parts(hint: Any) -> tuple[Any, Any]:
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
    shown: Any,
    boolean_pair: bool = False,
) -> None:
    """Add one argument: its action, type and choices from `kind`, its help from `meta` (with the
    range and the default `shown`, unless that is None, False or empty)."""
    meta = meta or Help("")
    notes = [str(Bounds.parse(meta.bounds))] if meta.bounds else []
    if shown is not None and shown is not False and shown != []:
        notes.append(f"default: {shown}")
    options: dict[str, Any] = {"help": meta.text + (f" ({'; '.join(notes)})" if notes else "")}
    if meta.metavar:
        options["metavar"] = meta.metavar
    kind, optional = _strip_none(kind)
    if typing.get_origin(kind) is list:
        # A positional list takes one or more values; a repeatable option one per use.
        options.update(nargs="*" if not required else "+") if positional else options.update(action="append")
        (kind,) = typing.get_args(kind)
    if kind is bool:
        options["action"] = argparse.BooleanOptionalAction if boolean_pair else "store_true"
    elif typing.get_origin(kind) is Literal:
        options["choices"] = list(typing.get_args(kind))
    else:
        options["type"] = _parser(kind, Bounds.parse(meta.bounds) if meta.bounds else None)
    if positional:
        if not required:
            options.setdefault("nargs", "?")
        parser.add_argument(name, default=default, **options)
        return
    flags = [f"--{name.replace('_', '-')}", *meta.flags]
    parser.add_argument(*flags, dest=name, default=default, required=required and not optional, **options)


def _parser(kind: type, bounds: Bounds | None) -> Callable[[str], Any]:
    """An argparse type: `kind(text)`, refused (status 2, with the reason) when the type raises an
    InputError (e.g. an output path that cannot be written) or the value lies outside `bounds`."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except InputError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
        if bounds is not None and value not in bounds:
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {value}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its "invalid int value" message
    return parse


def _strip_none(kind: Any) -> tuple[Any, bool]:
    """(X, True) for `X | None`, (kind, False) otherwise."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        rest = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        if len(rest) == 1:
            return rest[0], True
    return kind, False
