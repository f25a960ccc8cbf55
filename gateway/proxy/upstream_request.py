"""What goes upstream besides the body: the URL, the headers, the credential.

Design.md, "Routing" and "Headers towards a provider". Each format's wire
module (``FORMATS[t.format].wire``) says what is particular to it: the path
after ``base_url`` and its query (:meth:`Wire.upstream_target`), the client
headers it forwards (``FORWARDED_HEADERS``: ``anthropic-version``,
``anthropic-beta``, ``OpenAI-Beta``). The transformer file adds its own
headers (never hop-by-hop ones) and query, and says how the key is sent
(:meth:`Transformer.key_header_parts`).

Every value from the client that goes into a header (a forwarded header, the
client's own credential under ``forward_client_key``) must be visible ASCII:
anything else is a 400 naming it, raised before anything is sent. The model
goes into the URL as one percent-encoded path segment (:mod:`gateway.urls`, in
the format's wire): a client's model name can never reach another path or
change the query.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import attrs

from gateway.errors import BadRequest
from gateway.formats import FORMATS

if TYPE_CHECKING:
    from gateway.call import Call
    from gateway.routing import Target
    from gateway.server.exchange import Exchange
    from gateway.transformers.model import Transformer

__all__ = [
    "Destination",
    "client_credential",
    "client_credential_if_forwarded",
    "forwarded_headers",
    "upstream_headers",
    "upstream_url",
    "with_key",
]


Headers = list[tuple[str, str]]


@attrs.frozen
class Destination:
    """Where one call goes on one provider: the URL, and the headers every try sends
    (the credential, which a try may rotate, is added by :func:`with_key`)."""

    url: str
    headers: Headers


_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)

#: What a forwarded header value may hold: visible ASCII, spaces and tabs (RFC 9110 §5.5
#: without obs-text). Bytes >= 0x80 have no agreed encoding and httpx refuses them.
_HEADER_VALUE = re.compile(rb"[\t\x20-\x7e]*")


def _header_text(value: bytes, what: str) -> str:
    """A client value we forward in a header, as text; a 400 naming it when it cannot be."""
    if _HEADER_VALUE.fullmatch(value) is None:
        raise BadRequest(
            f"The {what} holds bytes other than visible ASCII characters "
            "(control characters or bytes >= 0x80); send it as plain ASCII."
        )
    return value.decode("ascii").strip()


def client_credential_if_forwarded(ex: Exchange, targets: tuple[Target, ...]) -> str | None:
    """The client's credential when one of ``targets`` forwards it upstream, else None."""
    if any(target.transformer.forward_client_key for target in targets):
        return client_credential(ex)
    return None


def client_credential(ex: Exchange) -> str | None:
    """The client's own credential, from whichever header or parameter its SDK uses.

    Raises BadRequest when the credential is not plain ASCII (it goes into a header).
    """
    auth = ex.request.header(b"authorization")
    if auth and auth[:7].lower() == b"bearer ":
        return _header_text(auth[7:], "Authorization header")
    for name in (b"x-api-key", b"x-goog-api-key"):
        value = ex.request.header(name)
        if value:
            return _header_text(value, f"{name.decode()} header")
    for part in ex.request.query.split("&"):
        if part.startswith("key="):
            return _header_text(part[4:].encode("latin-1"), "key query parameter")
    return None


def upstream_headers(ex: Exchange, t: Transformer, key: str | None) -> list[tuple[str, str]]:
    """Headers towards ``t`` (design.md, "Headers towards a provider").

    The client headers its format forwards (its wire's ``FORWARDED_HEADERS``:
    ``anthropic-version``, ``anthropic-beta``, ``OpenAI-Beta``) go only as plain
    ASCII: anything else is a 400 naming the header.
    """
    headers = [
        ("content-type", "application/json"),
        ("accept-encoding", "identity"),
        *forwarded_headers(ex, t),
    ]
    return with_key(headers, t, key)


def forwarded_headers(ex: Exchange, t: Transformer) -> list[tuple[str, str]]:
    """What every request towards ``t`` carries besides its body's headers and the key:
    ``x-request-id``, the client headers ``t``'s format forwards (as plain ASCII, else a
    400 naming the header), the file's headers (never hop-by-hop ones)."""
    headers = [("x-request-id", ex.request.request_id)]
    for forwarded in FORMATS[t.format].wire.FORWARDED_HEADERS if t.format in FORMATS else ():
        value = ex.request.header(forwarded.name.encode("ascii"))
        if value:
            headers.append((forwarded.name, _header_text(value, forwarded.label)))
        elif forwarded.default is not None:
            headers.append((forwarded.name, forwarded.default))
    headers.extend((k, v) for k, v in t.headers if k.lower() not in _HOP_BY_HOP)
    return headers


def with_key(
    headers: list[tuple[str, str]], t: Transformer, key: str | None
) -> list[tuple[str, str]]:
    """``headers`` (built once per request, without a key) plus one try's credential."""
    if not key:
        return headers
    name, prefix = t.key_header_parts()
    return [*headers, (name, prefix + key)]


def upstream_url(t: Transformer, call: Call, model: str) -> str:
    """``base_url`` plus the format's path (design.md, Routing) and the file's query.

    The model is one percent-encoded path segment (gateway.urls, in the format's
    wire): a client's model name can never reach another path or change the query.
    """
    path, extra = FORMATS[t.format].wire.upstream_target(
        model, stream=call.stream, count_tokens=call.op == "count_tokens"
    )
    query = [*t.query, *extra]
    url = t.base_url + path
    if query:
        url += ("&" if "?" in url else "?") + urlencode(query)
    return url
