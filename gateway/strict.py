"""Strict settings: the one converter and the one problem wording of every settings front door.

Two front doors configure the gateway: the settings (TOML, ``GATEWAY_*`` variables
and flags; :mod:`gateway.config`) and the transformer files (JSON;
:mod:`gateway.transformers`). Both structure plain data (dicts, lists, strings,
numbers, booleans) into frozen attrs classes here, and both report problems
here, so a typo reads the same wherever it was made.

Theory of operation:

* :func:`make_converter` builds a new strict cattrs converter (a factory: the
  converter is never a global). ``forbid_extra_keys`` makes unknown keys errors,
  detailed validation gives every error its path, and the hooks below refuse
  every coercion cattrs would otherwise make (``"5"`` to 5, ``1.5`` to 1, ``1``
  to True, ``"abc"`` to a tuple of letters, a list to a table); an integer is a
  fine number. A hook that refuses raises :class:`Invalid`.
* :func:`shape_problems` walks the exception tree cattrs raises (as
  ``cattrs.transform_error`` does, keeping each path as a tuple) and gives one
  :class:`Problem` per leaf; an unknown key is one problem per key, with a
  "did you mean" from :func:`unknown_key`.
* :func:`problem_line` renders ``source: key.path: message``, the source being a
  file name, an environment variable or ``command line``; a problem of the
  whole source has no path.

The wording, for every source: ``expected an integer, got string``, ``expected
one of 'text', 'json', got string``, ``unknown key (did you mean 'port'?)`` or
``unknown key (known: connect, first_byte, idle)``, ``required key missing``.

Values: a problem carries the offending value's ``repr`` apart from its message,
and the front door decides whether to show it. Settings show it unless the key
is a secret; transformer files never do (a provider key written in the wrong
place must not reach a log).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal, get_args, get_origin

import attrs
import cattrs
from cattrs.cols import homogenous_tuple_structure_factory
from cattrs.dispatch import StructureHook
from cattrs.errors import (
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
)
from cattrs.gen import make_dict_structure_fn, mapping_structure_factory

__all__ = [
    "Invalid",
    "KeyPath",
    "Problem",
    "format_path",
    "make_converter",
    "one_of",
    "problem_line",
    "shape_problems",
    "unknown_key",
]

#: A key path inside a document: object keys and array indices.
KeyPath = tuple[str | int, ...]

_KIND_NAMES: Mapping[type, str] = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "boolean",
    int: "number",
    float: "number",
    type(None): "null",
}


def _kind(value: object) -> str:
    """The JSON name of ``value``'s type (``"string"``, ``"array"``, ...)."""
    return _KIND_NAMES.get(type(value), type(value).__name__)


class Invalid(ValueError):
    """A value of the wrong type or outside an enumeration.

    Attributes:
        expected: what the key takes (``"an integer"``, ``"one of 'a', 'b'"``).
        got: the JSON kind of the value that came.
        value_repr: ``repr`` of that value, shown only where the front door allows.
    """

    def __init__(self, expected: str, value: object) -> None:
        self.expected = expected
        self.got = _kind(value)
        self.value_repr = repr(value)
        super().__init__(f"expected {expected}, got {self.got}")


@attrs.frozen
class Problem:
    """One problem of a settings source.

    Attributes:
        path: where, as keys and indices (empty: the source as a whole).
        message: what is wrong, without the value.
        value_repr: ``repr`` of the offending value, when there is one; shown
            only where the front door allows (never in a ``repr`` of this class).
    """

    path: KeyPath
    message: str
    value_repr: str | None = attrs.field(default=None, repr=False)

    def text(self, *, show_value: bool = False) -> str:
        """The message, followed by the value when ``show_value`` and there is one."""
        if show_value and self.value_repr is not None:
            return f"{self.message} {self.value_repr}"
        return self.message


_PLAIN_KEY = re.compile(r"[\w\-/:@*]+")


def format_path(path: KeyPath) -> str:
    """``("models", "fast", "fallbacks", 0)`` -> ``models.fast.fallbacks[0]``.

    A mapping key that would read ambiguously (a ``.``, a space) is quoted:
    ``models["gpt-4.1"].max_tokens``.
    """
    out = ""
    for segment in path:
        if isinstance(segment, int):
            out += f"[{segment}]"
        elif _PLAIN_KEY.fullmatch(segment):
            out += f".{segment}" if out else segment
        else:
            out += f"[{json.dumps(segment)}]"
    return out


def problem_line(source: str, path: KeyPath, message: str) -> str:
    """``source: key.path: message``, or ``source: message`` for an empty path."""
    where = format_path(path)
    return f"{source}: {where}: {message}" if where else f"{source}: {message}"


def unknown_key(path: KeyPath, key: str, known: list[str]) -> Problem:
    """The problem of ``key`` (under ``path``), which is none of ``known``."""
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(known)}"
    return Problem((*path, key), f"unknown key ({hint})")


# -- the converter -----------------------------------------------------------------------------


def _structure_str(value: object, _: type) -> str:
    if not isinstance(value, str):
        raise Invalid("a string", value)
    return value


def _structure_bool(value: object, _: type) -> bool:
    if not isinstance(value, bool):
        raise Invalid("true or false", value)
    return value


def _structure_int(value: object, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid("an integer", value)
    return value


def _structure_float(value: object, _: type) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Invalid("a number", value)
    return float(value)


def _structure_bool_or_str(value: object, _: type) -> bool | str:
    if not isinstance(value, (bool, str)):
        raise Invalid("true, false or a file path", value)
    return value


def _is_bool_or_str(tp: Any) -> bool:
    return bool(tp == (bool | str))


def _is_literal(tp: Any) -> bool:
    return get_origin(tp) is Literal


def _is_tuple(tp: Any) -> bool:
    return get_origin(tp) is tuple


def _is_dict(tp: Any) -> bool:
    return get_origin(tp) is dict


def one_of(choices: Sequence[str]) -> StructureHook:
    """A hook taking only one of the strings ``choices`` (the refusal lists them in order).

    For an enumeration known only at run time (register it for a ``NewType``); a
    ``Literal`` type gets the same hook by itself.
    """
    allowed = tuple(choices)
    expected = "one of " + ", ".join(repr(c) for c in allowed)

    def structure_literal(value: object, _: type) -> object:
        if not isinstance(value, str) or value not in allowed:
            raise Invalid(expected, value)
        return value

    return structure_literal


def _literal_hook(tp: Any) -> StructureHook:
    return one_of(get_args(tp))


def _requiring(kind_: type, expected: str, base: StructureHook) -> StructureHook:
    """Wrap a cattrs hook so that only values of type ``kind_`` reach it."""

    def structure_checked(value: object, tp: Any) -> Any:
        if not isinstance(value, kind_):
            raise Invalid(expected, value)
        return base(value, tp)

    return structure_checked


def _tuple_hook(tp: Any, conv: cattrs.Converter) -> StructureHook:
    return _requiring(list, "an array", homogenous_tuple_structure_factory(tp, conv))


def _dict_hook(tp: Any, conv: cattrs.Converter) -> StructureHook:
    return _requiring(dict, "an object", mapping_structure_factory(tp, conv))


def _attrs_hook(shorthands: Mapping[type, str]) -> Callable[[Any, cattrs.Converter], StructureHook]:
    """attrs classes come from objects; a class in ``shorthands`` also from one string."""

    def factory(tp: Any, conv: cattrs.Converter) -> StructureHook:
        field = shorthands.get(tp)
        if field is None:
            return _requiring(dict, "an object", make_dict_structure_fn(tp, conv))
        from_dict = make_dict_structure_fn(tp, conv)
        expected = f'a string or an object {{"{field}": ...}}'

        def structure_shorthand(value: object, tp_: Any) -> Any:
            if isinstance(value, str):
                return tp(**{field: value})
            if not isinstance(value, dict):
                raise Invalid(expected, value)
            return from_dict(value, tp_)

        return structure_shorthand

    return factory


def make_converter(*, shorthands: Mapping[type, str] | None = None) -> cattrs.Converter:
    """A new strict converter.

    Args:
        shorthands: attrs class -> the field a lone string fills: with
            ``{ModelEntry: "model"}``, ``"gpt-4o"`` stands for ``{"model": "gpt-4o"}``.

    Returns:
        A converter that forbids unknown keys, validates in detail (every error
        has its path) and coerces nothing; its refusals raise :class:`Invalid`.
    """
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(float, _structure_float)
    conv.register_structure_hook_func(_is_bool_or_str, _structure_bool_or_str)
    conv.register_structure_hook_factory(_is_literal, _literal_hook)
    conv.register_structure_hook_factory(_is_tuple, _tuple_hook)
    conv.register_structure_hook_factory(_is_dict, _dict_hook)
    conv.register_structure_hook_factory(attrs.has, _attrs_hook(dict(shorthands or {})))
    return conv


# -- problems out of cattrs' exceptions --------------------------------------------------------


def _leaves(exc: BaseException, path: KeyPath) -> Iterator[tuple[KeyPath, BaseException]]:
    """(path, error) for every error in the tree cattrs raised, in cattrs' order."""
    if isinstance(exc, IterableValidationError):
        with_notes, without = exc.group_exceptions()
        for sub, note in with_notes:
            yield from _leaves(sub, (*path, note.index))
        for sub in without:
            yield path, sub
    elif isinstance(exc, ClassValidationError):
        with_notes_, without_ = exc.group_exceptions()
        for sub, attr_note in with_notes_:
            yield from _leaves(sub, (*path, attr_note.name))
        for sub in without_:
            yield path, sub
    else:
        yield path, exc


def shape_problems(exc: BaseException) -> list[Problem]:
    """Every problem inside an error raised by a converter from :func:`make_converter`."""
    out: list[Problem] = []
    for path, leaf in _leaves(exc, ()):
        if isinstance(leaf, Invalid):
            out.append(Problem(path, str(leaf), leaf.value_repr))
        elif isinstance(leaf, KeyError):
            out.append(Problem(path, "required key missing"))
        elif isinstance(leaf, ForbiddenExtraKeysError):
            known = [f.name for f in attrs.fields(leaf.cl)] if leaf.cl is not None else []
            out.extend(unknown_key(path, key, known) for key in sorted(leaf.extra_fields))
        else:
            out.append(Problem(path, "invalid value"))
    return out
