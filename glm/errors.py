"""The one exception type for bad user input, and the checks every layer shares: a choice (a Literal
type's values), keyword options forwarded to the function that declares them, the keywords of
a function with explicit options (`named_options`), and every argument of a Python entry point
against its type annotation (`typed_arguments`, `typed_methods`).

Every problem with something a user handed us (a FASTA, a config, an output directory) is
raised as an `InputError` whose message names the file, the line and the field. The CLI prints
that message on one line and exits with status 2; Python users can catch it.
"""

from __future__ import annotations

import collections.abc
import functools
import inspect
import numbers
import os
import reprlib
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class InputError(ValueError):
    """Bad user input, with a one-line message that says where: `file:line: field: problem`."""

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        message = " ".join(message.split())  # always one line, whatever a library's text held
        self.message = message
        self.path = None if path is None else str(path)
        self.line = line
        where = ""
        if self.path is not None:
            where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {message}" if where else message)


class InputTypeError(InputError, TypeError):
    """An argument of the wrong type (`typed_arguments`): an InputError, so it is caught and shown like
    any bad input, and a TypeError, as Python code expects of a wrong type."""


def choices(literal: Any) -> tuple[str, ...]:
    """The values of a Literal type: choices(Strands) == ("forward", "both")."""
    return typing.get_args(literal)


def check_choice(name: str, value: Any, literal: Any) -> None:
    """An InputError unless `value` is one of the Literal's values."""
    if value not in choices(literal):
        raise InputError(f"{name} must be one of {', '.join(choices(literal))}, got {value!r}")


def keyword_options(function: Callable[..., object]) -> list[str]:
    """The names of `function`'s keyword-only parameters: the options a caller may forward to it."""
    parameters = inspect.signature(function).parameters.values()
    return [parameter.name for parameter in parameters if parameter.kind is inspect.Parameter.KEYWORD_ONLY]


def check_options(what: str, options: Mapping[str, Any], function: Callable[..., object]) -> None:
    """An InputError naming any of `options` that is not a keyword-only parameter of `function`."""
    known = keyword_options(function)
    _refuse_unknown(what, set(options) - set(known), known)


def named_options(what: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A decorator: a keyword the function does not take is an InputError naming it and the known
    options (the parameters with a default), as `check_options` says it, rather than a TypeError.
    help() and editors still see the function's own signature."""

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        parameters = inspect.signature(function).parameters
        options = [name for name, parameter in parameters.items() if parameter.default is not parameter.empty]

        @functools.wraps(function)
        def checked(*args: P.args, **kwargs: P.kwargs) -> R:
            _refuse_unknown(what, set(kwargs) - set(parameters), options)
            return function(*args, **kwargs)

        return checked

    return decorate


def _refuse_unknown(what: str, unknown: Iterable[str], known: Iterable[str]) -> None:
    if unknown := sorted(unknown):
        raise InputError(f"unknown {what} option(s) {unknown}; known: {', '.join(sorted(known))}")


def typed_arguments(function: Callable[P, R]) -> Callable[P, R]:
    """A decorator: each argument a call passes is checked against the function's annotation before
    the function runs; one of the wrong type is an InputTypeError naming the function, the argument,
    what it expects and what it got ("GenomicLM.embed: layer: expected int, got str 'last'").

    Understood: str, bytes, bool, int (any integral number but bool), float (any real number but
    bool), None, classes (runtime-checkable Protocols too; others are not checked), `X | Y`,
    Literal (a value outside the choices is the InputError `check_choice` raises), os.PathLike,
    Sequence[X] (any sized collection but str, bytes and mappings: a list, tuple, numpy array or
    pandas Series, each item checked), Mapping[K, V] (keys and values checked), tuple[X, Y, ...],
    and Iterable (not consumed, so its items are not checked). A numpy number passed for an int or a
    float reaches the function as a Python int or float. Defaults are not checked; a missing or
    unknown argument is left to the function (and `named_options`). Value ranges are checked by the
    library functions that declare them, which now only ever see the declared types.
    """
    signature = inspect.signature(function)
    where = function.__qualname__

    @functools.cache
    def hints() -> dict[str, Any]:  # resolved at the first call, when the module's names all exist
        try:
            return typing.get_type_hints(inspect.unwrap(function))
        except NameError:  # a name imported only for type checkers: unchecked (the facade's sweep test fails)
            return {}

    @functools.wraps(function)
    def checked(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError:
            return function(*args, **kwargs)  # the function's own error for a missing or unknown argument
        for name, value in bound.arguments.items():
            parameter = signature.parameters[name]
            if name in hints() and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                check_type(f"{where}: {name}", value, hints()[name])
                bound.arguments[name] = _plain_number(value, hints()[name])
        return function(*bound.args, **bound.kwargs)

    return checked


def typed_methods(cls: type[R]) -> type[R]:
    """A class decorator: `typed_arguments` on every public method (class and static methods too), so a
    method added later is checked without being named here."""
    for name, attribute in list(vars(cls).items()):
        if name.startswith("_"):
            continue
        if isinstance(attribute, (classmethod, staticmethod)):
            setattr(cls, name, type(attribute)(typed_arguments(attribute.__func__)))
        elif inspect.isfunction(attribute):
            setattr(cls, name, typed_arguments(attribute))
    return cls


def check_type(name: str, value: Any, hint: Any) -> None:
    """An InputTypeError unless `value` is of the annotated type `hint` (see `typed_arguments`); an
    InputError for a value of the right type outside a Literal's choices."""
    if _matches(value, hint):
        return
    literals = _literal_values(hint)
    if any(type(value) is type(choice) for choice in literals):
        raise InputError(f"{name} must be one of {', '.join(map(str, literals))}, got {value!r}")
    raise InputTypeError(f"{name}: expected {_describe(hint)}, got {_shown(value)}")


def _matches(value: Any, hint: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or isinstance(hint, TypeVar):
        return True
    if hint is None or hint is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in args)
    if origin is Literal:
        return any(type(value) is type(choice) and value == choice for choice in args)
    if origin is typing.Annotated:
        return _matches(value, args[0])
    if hint is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if origin is None:
        return not isinstance(hint, type) or not _checkable(hint) or isinstance(value, hint)
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_matches(item, args[0]) for item in value)
        return len(value) == len(args) and all(_matches(item, arg) for item, arg in zip(value, args))
    if isinstance(origin, type) and issubclass(origin, collections.abc.Mapping):
        key, item = args or (Any, Any)
        return isinstance(value, Mapping) and all(_matches(k, key) and _matches(v, item) for k, v in value.items())
    if origin in (collections.abc.Sequence, list, collections.abc.Collection):
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, collections.abc.Collection):
            return False
        return all(_matches(item, args[0]) for item in value) if args else True
    return not isinstance(origin, type) or isinstance(value, origin)  # Iterable, os.PathLike, Callable, ...


def _plain_number(value: Any, hint: Any) -> Any:
    """A numpy integer as an int, a numpy float (or other real) as a float, where the annotation takes one,
    so the library (torch's seeds, JSON) only sees Python numbers; any other value as it is."""
    if isinstance(value, bool) or type(value) in (int, float) or not isinstance(value, numbers.Real):
        return value
    if isinstance(value, numbers.Integral) and _matches(value, int):
        return int(value) if _admits(hint, int) else value
    return float(value) if _admits(hint, float) else value


def _admits(hint: Any, kind: type) -> bool:
    """Whether the annotation `hint` is `kind` or a union holding it."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return kind in typing.get_args(hint)
    return hint is kind


def _checkable(cls: type) -> bool:
    """Whether isinstance can tell a class's instances: not a Protocol unless it is runtime-checkable."""
    return not getattr(cls, "_is_protocol", False) or getattr(cls, "_is_runtime_protocol", False)


def _literal_values(hint: Any) -> tuple[Any, ...]:
    if typing.get_origin(hint) is Literal:
        return typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return tuple(value for arg in typing.get_args(hint) for value in _literal_values(arg))
    return ()


def _describe(hint: Any) -> str:
    """An annotation in words: 'str or a sequence of str', 'a mapping of str to str', 'one of 'mean', ...'."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is None or hint is type(None):
        return "None"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in args)
    if origin is Literal:
        return "one of " + ", ".join(repr(choice) for choice in args)
    if origin is tuple:
        return f"a tuple ({', '.join(_describe(arg) for arg in args)})"
    if isinstance(origin, type) and issubclass(origin, collections.abc.Mapping):
        return f"a mapping of {_describe(args[0])} to {_describe(args[1])}" if args else "a mapping"
    if origin in (collections.abc.Sequence, list, collections.abc.Collection):
        return f"a sequence of {_describe(args[0]).removeprefix('a ')}" if args else "a sequence"
    if origin is os.PathLike or hint is os.PathLike:
        return "a path (os.PathLike)"
    if isinstance(origin, type):
        return f"an {origin.__name__.lower()}" if origin.__name__[0] in "AEIOU" else f"a {origin.__name__}"
    return getattr(hint, "__name__", str(hint))


def _shown(value: Any) -> str:
    """A value's type and a short repr of it, for a message: "int 12345", "bytes b'ACGT'", "None"."""
    short = reprlib.Repr()
    short.maxstring = short.maxother = 40
    return "None" if value is None else f"{type(value).__name__} {short.repr(value)}"
