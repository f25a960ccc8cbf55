"""CORS: which browser origins may read the gateway's answers, and what preflights get. Pure.

Theory of operation (Fetch standard, "CORS protocol"). A browser page on another
origin that calls the gateway sends ``Origin``; it lets the page read the answer
only when the response names that origin (or ``*``) in
``Access-Control-Allow-Origin``, and the page reads only the response headers
listed in ``Access-Control-Expose-Headers`` (beside a few safe ones). A request
with headers other than a few safe ones (``authorization``, ``x-api-key``, a JSON
``content-type``: every SDK call) is first *preflighted*: ``OPTIONS`` on the same
path with ``Access-Control-Request-Method`` and ``-Headers``, answered with what
may be sent.

Settings: ``[cors] allow_origins``, a list of origins (``https://app.example.com``,
scheme, host and port as the browser sends them), ``"*"``, or a wildcard over the
host's leading labels (``https://*.example.com``: ``https://a.example.com`` and
``https://a.b.example.com``, never ``https://example.com`` itself nor another
scheme or port). Empty (the default): no CORS at all, the server behaves as if
this module did not exist (one ``is None`` check per response).

What the gateway does with them:

- Every response (errors included: a page must read a 401 or a 429 to act on it)
  to an allowed origin gets ``Access-Control-Allow-Origin: <that origin>``,
  ``Vary: Origin`` (the answer depends on the request's ``Origin``: caches must
  key on it) and ``Access-Control-Expose-Headers``. Another origin gets only
  ``Vary: Origin``; the request is still served (CORS is the browser's check,
  not access control: client keys are).
- ``"*"`` with no client keys configured: ``Access-Control-Allow-Origin: *`` on
  every response. With client keys in use (``[auth] keys``) the origin is echoed
  instead, never ``*`` (design.md), and the ``"*"`` entry admits every origin.
- A preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``)
  on a path some route serves is answered by the server itself (preflight.py,
  the route the connection takes when its router refuses the OPTIONS), before any
  handler (so no client key is needed and nothing is forwarded): 204 with
  ``Access-Control-Allow-Methods`` (the path's methods), ``-Allow-Headers`` and
  ``-Max-Age``. From an origin not allowed: 403, in the path's dialect, saying
  which setting to change (a browser fails it either way; curl shows why). On a
  path nothing serves: 404 as always; an ``OPTIONS`` that is no preflight: 405.
- ``Access-Control-Allow-Headers``: CORS has no wildcard that covers
  ``authorization``, so the answer lists the request headers the SDKs send
  (:data:`ALLOWED_HEADERS`, read from the openai, anthropic and google-genai
  clients) and echoes those the preflight asks for that start with an allowed
  prefix (``x-stainless-*``, a family the Stainless SDKs grow). A header asked
  for and not allowed is left out: the browser then refuses the request, which
  is right for a header the gateway would not forward anyway.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from gateway.server.responses import Headers

__all__ = [
    "ALLOWED_HEADERS",
    "ALLOWED_HEADER_PREFIXES",
    "EXPOSED_HEADERS",
    "MAX_AGE_S",
    "CorsPolicy",
    "origin_problem",
    "preflight_headers",
]

#: Request headers the SDKs send (openai/_base_client.py, anthropic/_base_client.py and
#: _client.py, google/genai/_api_client.py; their JavaScript twins send the same names).
ALLOWED_HEADERS = (
    "authorization",
    "content-type",
    "x-api-key",
    "anthropic-version",
    "anthropic-beta",
    "anthropic-dangerous-direct-browser-access",
    "x-goog-api-key",
    "x-goog-api-client",
    "x-goog-user-project",
    "x-server-timeout",
    "x-request-id",
    "openai-beta",
    "openai-organization",
    "openai-project",
    "idempotency-key",
)
#: Families of headers allowed by prefix: the Stainless SDKs (openai, anthropic) add
#: ``x-stainless-*`` headers from release to release (os, arch, runtime, retry-count, ...).
ALLOWED_HEADER_PREFIXES = ("x-stainless-",)
#: Response headers a page may read: the request id, who answered, the overhead, and what
#: a client needs to back off (the rate-limit headers come with client keys and limits).
EXPOSED_HEADERS = (
    "x-request-id",
    "x-gateway-provider",
    "x-gateway-overhead-ms",
    "retry-after",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
)
#: How long a browser may cache a preflight's answer. Chromium caps it at 2 hours and
#: Firefox at 24; 10 minutes keeps a settings change from waiting long on a browser.
MAX_AGE_S = 600

_VARY = (b"vary", b"origin")
_EXPOSE = (b"access-control-expose-headers", ", ".join(EXPOSED_HEADERS).encode("ascii"))
_ALLOWED = frozenset(ALLOWED_HEADERS)
_LIST_SPLIT = re.compile(r"\s*,\s*")
_TOKEN = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]+")  # a header name (RFC 9110 section 5.6.2)

# An origin as browsers serialize it: scheme://host[:port], no path, no user info.
# The host: DNS labels or a bracketed IPv6 address. A wildcard is "*." before the host.
_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_ORIGIN = re.compile(
    rf"(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<wild>\*\.)?"
    rf"(?P<host>{_LABEL}(?:\.{_LABEL})*|\[[0-9a-f:.]+\])(?P<port>:[0-9]{{1,5}})?"
)
_LABELS = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")


def origin_problem(entry: str) -> str | None:
    """Why ``entry`` cannot be an ``allow_origins`` entry, or None when it can."""
    if entry == "*":
        return None
    if entry.strip().lower() == "null":
        return (
            "the 'null' origin cannot be allowed: sandboxed frames and local files send it, "
            "so any page could claim it"
        )
    lowered = entry.lower()
    scheme, sep, rest = lowered.partition("://")
    if sep and "/" in rest:
        host = rest.partition("/")[0]
        return (
            f"an origin has no path (not even a trailing '/'): write '{scheme}://{host}'"
            if host
            else "expected scheme://host[:port], e.g. 'https://app.example.com'"
        )
    match = _ORIGIN.fullmatch(lowered)
    if match is None:
        if "*" in lowered:
            return (
                "a wildcard is supported only as the leading labels of the host, "
                "as in 'https://*.example.com' (or '*' alone for every origin)"
            )
        return "expected scheme://host[:port], e.g. 'https://app.example.com'"
    if match["wild"] and "." not in match["host"]:
        return "a wildcard needs at least two labels after '*.' ('https://*.example.com')"
    return None


@attrs.frozen
class CorsPolicy:
    """The ``[cors]`` settings, compiled. Build with :meth:`from_settings`.

    Attributes:
        exact: allowed origins, lower case.
        wildcards: ``(scheme + "://", "." + host[:port])`` of the wildcard entries.
        any_origin: a ``"*"`` entry.
        echo: name the origin, never ``*`` (client keys are in use).
    """

    exact: frozenset[str] = frozenset()
    wildcards: tuple[tuple[str, str], ...] = ()
    any_origin: bool = False
    echo: bool = False

    @classmethod
    def from_settings(cls, allow_origins: Sequence[str], *, keys_in_use: bool) -> CorsPolicy | None:
        """The policy of ``allow_origins`` (checked by :func:`origin_problem`); None when empty.

        Args:
            allow_origins: ``[cors] allow_origins``.
            keys_in_use: client keys are configured: origins are echoed, never ``*``.
        """
        if not allow_origins:
            return None
        exact, wildcards = set(), []
        for entry in allow_origins:
            if entry == "*":
                continue
            lowered = entry.lower()
            if "://*." in lowered:
                scheme, _, rest = lowered.partition("*")
                wildcards.append((scheme, rest))
            else:
                exact.add(lowered)
        return cls(frozenset(exact), tuple(wildcards), "*" in allow_origins, keys_in_use)

    def allows(self, origin: str) -> bool:
        """True when a page of ``origin`` (the ``Origin`` header's value) may read answers."""
        if self.any_origin:
            return True
        lowered = origin.lower()
        if lowered in self.exact:
            return True
        for scheme, suffix in self.wildcards:
            if lowered.startswith(scheme) and lowered.endswith(suffix):
                labels = lowered[len(scheme) : len(lowered) - len(suffix)]
                if _LABELS.fullmatch(labels):
                    return True
        return False

    def response_headers(self, origin: bytes | None) -> Headers:
        """The CORS headers of any response to a request with this ``Origin`` (or none)."""
        if self.any_origin and not self.echo:
            return [(b"access-control-allow-origin", b"*"), _EXPOSE]
        if origin is None or not self.allows(origin.decode("latin-1")):
            return [_VARY]
        return [_VARY, (b"access-control-allow-origin", origin), _EXPOSE]


def preflight_headers(asked: bytes, methods: Sequence[str]) -> Headers:
    """The headers of a preflight's 204 (beside :meth:`CorsPolicy.response_headers`).

    Args:
        asked: the preflight's ``Access-Control-Request-Headers`` (b"" for none).
        methods: the methods the path serves.
    """
    names = list(ALLOWED_HEADERS)
    for name in _LIST_SPLIT.split(asked.decode("latin-1").strip().lower()):
        ok = name.startswith(ALLOWED_HEADER_PREFIXES) and _TOKEN.fullmatch(name)
        if ok and name not in names:
            names.append(name)
    return [
        (b"access-control-allow-methods", ", ".join(methods).encode("ascii")),
        (b"access-control-allow-headers", ", ".join(names).encode("latin-1")),
        (b"access-control-max-age", b"%d" % MAX_AGE_S),
    ]
