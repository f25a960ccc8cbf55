"""Frozen specs for one provider transformer file (design.md, "Transformer files").

Theory of operation: a transformer file is parsed once per reload by
:mod:`gateway.transformers.parse` into the classes below, and from then on it
is read-only data shared by every request that routes to it. Everything a
request needs is already resolved here: ``${VAR}`` references are expanded,
empty keys and empty headers are gone, a string model entry has become a
:class:`ModelEntry`. The classes carry no validators: the parser checks a file
and reports every problem with its key path, which a validator raised from
inside ``__init__`` could not do.

Secrets: ``Transformer.keys`` never appears in a ``repr``; header and query
values are shown as ``***`` because they may carry credentials too (an
``Authorization`` header, a ``?key=``). Nothing in this module puts a value of
the environment into an exception message.

``${VAR}`` and ``${VAR:-default}`` follow the shell: an unset ``VAR`` is empty,
and ``:-`` takes the default when ``VAR`` is unset *or* empty. Expansion is one
pass (a value from the environment is never expanded again); a lone ``$`` or
``$VAR`` without braces stays as written; a ``${`` that is not a well-formed
reference is an error rather than a silent literal.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal, NewType

import attrs

from gateway.envvars import expand_env, referenced_vars
from gateway.formats import FORMAT_NAMES, FORMATS

__all__ = [
    "DEFAULT_COOLDOWN_S",
    "MOCK",
    "PROVIDER_FORMATS",
    "ModelEntry",
    "ProviderFormat",
    "RequestEdits",
    "Retry",
    "StreamMode",
    "Timeouts",
    "Transformer",
    "expand_env",
    "is_token",
    "parse_key_header",
    "referenced_vars",
]

#: The built-in offline provider (:mod:`gateway.proxy.mock`): a provider kind that
#: answers in the client's own format, not a wire format.
MOCK = "mock"
#: What a file's ``format`` may name: a wire format (:data:`gateway.formats.FORMAT_NAMES`,
#: in their order), or the mock.
PROVIDER_FORMATS: tuple[str, ...] = (*FORMAT_NAMES, MOCK)
#: A name in :data:`PROVIDER_FORMATS` (the transformer file's strict converter
#: refuses any other: :func:`gateway.transformers.schema.make_converter`).
ProviderFormat = NewType("ProviderFormat", str)
StreamMode = Literal["native", "emulate"]

#: How a key is sent to the mock when the file has no ``key_header`` (the mock sends
#: nothing anywhere; a wire format's default is its wire's ``KEY_HEADER``).
_MOCK_KEY_HEADER = ("authorization", "Bearer ")

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 §5.6.2 token


def is_token(text: str) -> bool:
    """True when ``text`` is an HTTP token (RFC 9110 §5.6.2), e.g. a header name."""
    return _TOKEN.fullmatch(text) is not None


def parse_key_header(spec: str) -> tuple[str, str]:
    """Split a ``key_header`` value into (lower-case header name, value prefix).

    ``"Authorization: Bearer"`` gives ``("authorization", "Bearer ")`` and
    ``"api-key"`` gives ``("api-key", "")``.

    Raises:
        ValueError: the header name is not an HTTP token.
    """
    name, _, prefix = spec.partition(":")
    name, prefix = name.strip(), prefix.strip()
    if not is_token(name):
        raise ValueError('expected "Header-Name" or "Header-Name: Prefix"')
    if any(c in prefix for c in "\r\n\0"):
        raise ValueError("the prefix must not contain line breaks")
    return name.lower(), f"{prefix} " if prefix else ""


def _redacted_pairs(pairs: tuple[tuple[str, str], ...]) -> str:
    return repr(tuple((name, "***") for name, _ in pairs))


def _readonly(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


@attrs.frozen
class ModelEntry:
    """What one name in a file's ``models`` map stands for.

    Attributes:
        model: the upstream model name; ``"*"`` (only in the ``"*"`` entry) means
            "the name the client asked for".
        fallbacks: model names tried, in order, after every provider of this
            alias failed; each is routed like a client's model string.
        max_tokens: clamps the client's max tokens, and fills it in when absent.
    """

    model: str
    fallbacks: tuple[str, ...] = ()
    max_tokens: int | None = None


@attrs.frozen
class RequestEdits:
    """JSON edits applied to every upstream request body of a provider.

    ``defaults`` fill in what the body lacks, ``override`` replaces what it has,
    ``drop`` removes top-level keys. Objects merge key by key at every depth.
    The dicts are shared by every request: treat them as read-only and use
    :meth:`apply`, which copies.
    """

    defaults: dict[str, Any] = attrs.field(factory=dict, hash=False)
    override: dict[str, Any] = attrs.field(factory=dict, hash=False)
    drop: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        """True when applying these edits changes nothing."""
        return not (self.defaults or self.override or self.drop)

    def apply(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """A new body: ``defaults`` merged under ``body``, ``override`` over it, ``drop`` removed.

        Args:
            body: the upstream request body; not modified.

        Returns:
            A new dict. The client's values are shared, not copied (bodies can
            be megabytes of images); every object on a merged path is new, so
            ``body`` itself is never modified; values from the edits are copies.
        """
        if self.is_empty():
            return dict(body)
        merged = _overlay(_fill(body, self.defaults), self.override)
        for key in self.drop:
            merged.pop(key, None)
        return merged


def _fill(body: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """``body`` with what it lacks taken from ``defaults``; objects filled at every depth."""
    out = dict(body)
    for key, value in defaults.items():
        below = out.get(key)
        if key not in out:
            out[key] = copy.deepcopy(value)
        elif isinstance(below, Mapping) and isinstance(value, Mapping):
            out[key] = _fill(below, value)
    return out


def _overlay(body: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``body`` with ``override`` written over it; objects merged at every depth."""
    out = dict(body)
    for key, value in override.items():
        below = out.get(key)
        if isinstance(below, Mapping) and isinstance(value, Mapping):
            out[key] = _overlay(below, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@attrs.frozen
class Timeouts:
    """Seconds; applied by the caller as Trio cancel scopes (design.md, Streaming)."""

    connect: float = 5.0
    first_byte: float = 120.0
    idle: float = 60.0


#: A key's rest after its 1st, 2nd and later failures in a row (transformer ``cooldown_s``).
DEFAULT_COOLDOWN_S = (10.0, 30.0, 120.0)


@attrs.frozen
class Retry:
    """``retries`` more tries on the same target (2 means at most 3), ``backoff_s`` apart."""

    retries: int = 2
    backoff_s: float = 0.5


@attrs.frozen
class Transformer:
    """One provider: where it lives, how to authenticate, which models it serves.

    Built by :func:`gateway.transformers.parse.parse_transformer`; every string
    here is already expanded from the environment.

    Attributes:
        name: routing prefix (``provider/model``); defaults to the file stem.
        format: the provider's wire format, or :data:`MOCK`.
        base_url: including the API version path, without a trailing ``/``;
            empty only for the ``mock`` format.
        keys: provider keys to rotate through; empty ones already skipped.
        key_vars: the environment variables ``keys`` refers to (for "set X").
        keys_listed: the file listed ``keys`` at all; listed but all empty is a
            configuration gap answered with 401, not "needs no key".
        headers: added to every upstream request; empty values dropped.
        key_header: the file's ``key_header``, or None for the format's default.
        query: added to every upstream URL.
        tls_verify: False, True, or the path of a CA bundle.
        cooldown_s: how long a refused or rate-limited key rests after its 1st,
            2nd, ... failure in a row (the last step repeats); see gateway.keys.
        models: alias -> entry, in file order; ``"*"`` is the wildcard entry.
        max_concurrency: requests at once this provider may get from the gateway (None: no
            limit); counted in the edge's state, so shared by every worker and replica.
        source: the file name the transformer came from.
    """

    name: str
    format: ProviderFormat
    base_url: str = ""
    keys: tuple[str, ...] = attrs.field(default=(), repr=False)
    key_vars: tuple[str, ...] = ()
    keys_listed: bool = False
    headers: tuple[tuple[str, str], ...] = attrs.field(default=(), repr=_redacted_pairs)
    key_header: str | None = None
    query: tuple[tuple[str, str], ...] = attrs.field(default=(), repr=_redacted_pairs)
    tls_verify: bool | str = True
    models: Mapping[str, ModelEntry] = attrs.field(factory=dict, converter=_readonly, hash=False)
    request: RequestEdits = RequestEdits()
    timeouts: Timeouts = Timeouts()
    retry: Retry = Retry()
    cooldown_s: tuple[float, ...] = DEFAULT_COOLDOWN_S
    stream: StreamMode = "native"
    realtime_url: str | None = None
    default: bool = False
    weight: float = 1.0
    forward_client_key: bool = False
    max_concurrency: int | None = None
    source: str = ""

    def key_header_parts(self) -> tuple[str, str]:
        """(lower-case header name, value prefix) a provider key is sent with.

        The format's default (its wire's ``KEY_HEADER``) when the file has no
        ``key_header``.
        """
        if self.key_header is None:
            known = FORMATS.get(self.format)
            return known.wire.KEY_HEADER if known is not None else _MOCK_KEY_HEADER
        return parse_key_header(self.key_header)

    @property
    def keys_missing(self) -> bool:
        """Keys were listed but none is set: requests get 401 naming ``key_vars``."""
        return self.keys_listed and not self.keys and not self.forward_client_key

    def missing_keys_message(self) -> str:
        """What to tell a client when :attr:`keys_missing` (names variables, never values)."""
        if not self.key_vars:
            return f"Provider {self.name!r} has no usable API key: every entry of 'keys' is empty."
        names = " or ".join(self.key_vars)
        return f"Provider {self.name!r} has no API key configured: set {names}."
