"""``${VAR}`` expansion of a transformer file's ``base_url``, ``keys``, ``headers``, ``query``.

Part of stage 3 of parsing. Expansion follows the shell (see
:mod:`gateway.transformers.model`); what the environment gives is then checked
where it matters: a key or header value with a line break would split an
upstream request's head, a header name must be a token, ``base_url`` is
required (except for the mock) and http(s). An empty key or header value is
dropped (an unset optional variable); an empty query value is kept. Problems
name the key and the variables, never a value.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from gateway.transformers.checks import Findings, check_url
from gateway.transformers.model import MOCK, is_token, referenced_vars
from gateway.transformers.schema import TransformerFile

__all__ = ["Expanded", "expand_fields"]


@attrs.frozen
class Expanded:
    """The fields of a file that ``${VAR}`` references expand in, expanded."""

    base_url: str
    realtime_url: str | None
    keys: tuple[str, ...]
    key_vars: tuple[str, ...]
    headers: tuple[tuple[str, str], ...]
    query: tuple[tuple[str, str], ...]


def _expand_keys(
    spec: TransformerFile, env: Mapping[str, str], found: Findings
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    keys: list[str] = []
    names: list[str] = []
    for i, raw in enumerate(spec.keys or ()):
        names.extend(v for v in referenced_vars(raw) if v not in names)
        key = found.expand(raw, ("keys", i), env).strip()
        if any(c in key for c in "\r\n\0"):
            found.add(("keys", i), "the key contains a line break")
        elif key:
            keys.append(key)
    return tuple(keys), tuple(names)


def _expand_pairs(
    field: str, pairs: Mapping[str, str], env: Mapping[str, str], found: Findings
) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for name, raw in pairs.items():
        value = found.expand(raw, (field, name), env)
        if field == "headers" and not is_token(name):
            found.add((field, name), "not a valid header name")
        elif any(c in value for c in "\r\n\0"):
            found.add((field, name), "the value contains a line break")
        elif not name:
            found.add((field, name), "the name must not be empty")
        elif value or field == "query":
            out.append((name, value))
    return tuple(out)


def expand_fields(spec: TransformerFile, env: Mapping[str, str], found: Findings) -> Expanded:
    """Expand and check the expanding fields of ``spec``; problems go to ``found``."""
    base_url = found.expand(spec.base_url or "", ("base_url",), env).rstrip("/")
    if not base_url and spec.format != MOCK:
        found.add(("base_url",), f"required for format {spec.format!r} (empty or missing)")
    check_url(base_url, ("http", "https"), ("base_url",), found)
    realtime_url = found.expand(spec.realtime_url or "", ("realtime_url",), env) or None
    check_url(realtime_url or "", ("ws", "wss"), ("realtime_url",), found)
    keys, key_vars = _expand_keys(spec, env, found)
    return Expanded(
        base_url=base_url,
        realtime_url=realtime_url,
        keys=keys,
        key_vars=key_vars,
        headers=_expand_pairs("headers", spec.headers, env, found),
        query=_expand_pairs("query", spec.query, env, found),
    )
