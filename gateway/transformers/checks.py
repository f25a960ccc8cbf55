"""What types cannot say about a transformer file: ranges, names, URLs (stage 3 of parsing).

The converter (:mod:`gateway.transformers.schema`) has already made sure of
every type; the checks here read the :class:`TransformerFile` and add a
:class:`~gateway.strict.Problem` per rule broken (``weight`` > 0, ``cooldown_s``
non-decreasing, a model alias not empty, ...) to a :class:`Findings`, so that
every problem of a file is reported at once. A message names the key, never a
value: values may be keys or come from the environment.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import attrs

from gateway.strict import KeyPath, Problem
from gateway.transformers.model import Timeouts, expand_env, parse_key_header
from gateway.transformers.schema import TransformerFile

__all__ = [
    "Findings",
    "check_cooldown",
    "check_identity",
    "check_models",
    "check_numbers",
    "check_url",
]


@attrs.define
class Findings:
    """The problems found while one file is checked; local to one parse."""

    items: list[Problem] = attrs.field(factory=list)

    def add(self, path: KeyPath, message: str) -> None:
        self.items.append(Problem(path, message))

    def expand(self, text: str, path: KeyPath, env: Mapping[str, str]) -> str:
        """``text`` with ``${VAR}`` expanded; "" (and a problem) when a reference is malformed."""
        try:
            return expand_env(text, env)
        except ValueError as exc:
            self.add(path, str(exc))
            return ""


def check_url(value: str, schemes: tuple[str, ...], path: KeyPath, found: Findings) -> None:
    """An empty ``value`` or one starting with ``scheme://`` for one of ``schemes``."""
    if value and not value.startswith(tuple(f"{s}://" for s in schemes)):
        found.add(path, "must start with " + " or ".join(f"{s}://" for s in schemes))


def check_numbers(spec: TransformerFile, found: Findings) -> None:
    """``weight``, ``timeouts``, ``retry`` and ``cooldown_s``."""
    if not (spec.weight > 0 and math.isfinite(spec.weight)):
        found.add(("weight",), "must be a number greater than 0")
    for field in attrs.fields(Timeouts):
        if not getattr(spec.timeouts, field.name) > 0:
            found.add(("timeouts", field.name), "must be greater than 0 seconds")
    if spec.retry.retries < 0:
        found.add(("retry", "retries"), "must be 0 or more")
    if spec.retry.backoff_s < 0:
        found.add(("retry", "backoff_s"), "must be 0 or more seconds")
    check_cooldown(spec.cooldown_s, found)
    if spec.max_concurrency is not None and spec.max_concurrency <= 0:
        found.add(("max_concurrency",), "must be greater than 0 (or left out: no limit)")


def check_cooldown(steps: tuple[float, ...], found: Findings) -> None:
    """``cooldown_s``: a non-empty, non-decreasing list of positive, finite seconds."""
    if not steps:
        found.add(("cooldown_s",), "must list at least one number of seconds")
    for i, step in enumerate(steps):
        if not (step > 0 and math.isfinite(step)):
            found.add(("cooldown_s", i), "must be a number of seconds greater than 0")
        elif i and step < steps[i - 1]:
            found.add(("cooldown_s", i), "must not be shorter than the step before it")


def check_models(spec: TransformerFile, found: Findings) -> None:
    """Aliases, upstream names, ``max_tokens`` and fallbacks of the ``models`` map."""
    for alias, entry in spec.models.items():
        path: KeyPath = ("models", alias)
        if not alias.strip():
            found.add(path, "a model name must not be empty")
        if not entry.model.strip():
            found.add((*path, "model"), "the upstream model name must not be empty")
        elif entry.model == "*" and alias != "*":
            found.add((*path, "model"), '"*" is only allowed as the upstream of the "*" entry')
        if entry.max_tokens is not None and entry.max_tokens <= 0:
            found.add((*path, "max_tokens"), "must be greater than 0")
        for i, fallback in enumerate(entry.fallbacks):
            if not fallback.strip() or fallback == "*":
                found.add((*path, "fallbacks", i), "must be a model name")


def check_identity(spec: TransformerFile, name: str, found: Findings) -> None:
    """The provider ``name`` (the file's or its stem), ``key_header`` and ``tls_verify``."""
    if not name or "/" in name or any(c.isspace() for c in name):
        found.add(("name",), "must be a non-empty name without '/' or spaces")
    if spec.key_header is not None:
        try:
            parse_key_header(spec.key_header)
        except ValueError as exc:
            found.add(("key_header",), str(exc))
    if spec.tls_verify == "":
        found.add(("tls_verify",), "expected true, false or a CA bundle path")
