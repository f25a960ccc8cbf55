"""Parse one transformer file (design.md, "Transformer files"): bytes in, a Transformer out.

Theory of operation, in three stages:

1. JSON (here): the bytes must be UTF-8 plain JSON (no comments, no NaN, no
   duplicate keys in an object) with an object at the top.
2. Shape (:mod:`~gateway.transformers.schema`): the strict converter shared with
   the settings (:mod:`gateway.strict`) structures the object into
   :class:`~gateway.transformers.schema.TransformerFile`, the file exactly as
   written; unknown keys (with "did you mean"), wrong JSON types and values
   outside an enumeration are errors, nothing is coerced.
3. Meaning (:mod:`~gateway.transformers.checks`, :mod:`~gateway.transformers.expand`):
   ``${VAR}`` references are expanded and what types cannot say is checked
   (``weight`` > 0, ``base_url`` present and http(s), header names are tokens,
   ...); then the frozen :class:`~gateway.transformers.model.Transformer` is built.

Every problem is a line ``file.json: key.path: message`` (a problem of the
file as a whole has no path), and the problems of a file are reported at
once (stage by stage: a file with shape errors is not checked for meaning).
A message names keys and variables; it never repeats a provider key, a
header or query value, or anything taken from the environment.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs
import cattrs

from gateway.strict import Invalid, problem_line, shape_problems
from gateway.transformers.checks import Findings, check_identity, check_models, check_numbers
from gateway.transformers.expand import expand_fields
from gateway.transformers.model import Transformer
from gateway.transformers.schema import TransformerFile, make_converter

__all__ = ["TransformerError", "parse_transformer"]


class TransformerError(Exception):
    """A transformer file could not be loaded.

    Attributes:
        problems: every problem found, each ``"file.json: key.path: message"``.
    """

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


# -- stage 1: JSON -------------------------------------------------------------------------


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _decode_json(raw: bytes, source: str) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        problem = f"{source}: not UTF-8 text (bad byte at offset {exc.start})"
        raise TransformerError([problem]) from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        why = exc.msg
        if text[exc.pos : exc.pos + 2] in ("//", "/*") or text[exc.pos : exc.pos + 1] == "#":
            why = "comments are not allowed (plain JSON only)"
        raise TransformerError(
            [f"{source}: line {exc.lineno} column {exc.colno}: invalid JSON: {why}"]
        ) from None
    except _DuplicateKey as exc:
        raise TransformerError([f"{source}: duplicate key {exc.args[0]!r} in an object"]) from None
    except ValueError as exc:  # NaN, Infinity
        raise TransformerError([f"{source}: invalid JSON: {exc}"]) from None
    except RecursionError:
        raise TransformerError([f"{source}: invalid JSON: nested too deeply"]) from None


# -- stage 3: meaning, then the Transformer ---------------------------------------------------


def _build(spec: TransformerFile, source: str, env: Mapping[str, str]) -> Transformer:
    found = Findings()
    name = spec.name if spec.name is not None else Path(source).stem
    check_identity(spec, name, found)
    check_numbers(spec, found)
    check_models(spec, found)
    expanded = expand_fields(spec, env, found)
    if found.items:
        raise TransformerError(problem_line(source, p.path, p.message) for p in found.items)
    return Transformer(
        name=name,
        format=spec.format,
        keys_listed=spec.keys is not None,
        key_header=spec.key_header,
        tls_verify=spec.tls_verify,
        models=spec.models,
        request=spec.request,
        timeouts=spec.timeouts,
        retry=spec.retry,
        cooldown_s=spec.cooldown_s,
        stream=spec.stream,
        default=spec.default,
        weight=spec.weight,
        forward_client_key=spec.forward_client_key,
        max_concurrency=spec.max_concurrency,
        source=source,
        **attrs.asdict(expanded, recurse=False),
    )


def parse_transformer(
    raw: bytes,
    source: str,
    env: Mapping[str, str],
    *,
    converter: cattrs.Converter | None = None,
) -> Transformer:
    """Parse one transformer file.

    Args:
        raw: the file's bytes.
        source: the file name, used as the default ``name`` (its stem) and in
            every problem line.
        env: where ``${VAR}`` references come from.
        converter: one from :func:`~gateway.transformers.schema.make_converter`, to
            share between the files of one load; a new one if None.

    Returns:
        The transformer, with every reference expanded.

    Raises:
        TransformerError: with every problem of the file.
    """
    data = _decode_json(raw, source)
    try:
        spec = (converter or make_converter()).structure(data, TransformerFile)
    except (cattrs.BaseValidationError, Invalid) as exc:
        # Values are never shown: a key written in the wrong place must not reach a log.
        problems = shape_problems(exc)
        raise TransformerError(problem_line(source, p.path, p.message) for p in problems) from None
    return _build(spec, source, env)
