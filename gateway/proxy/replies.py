"""What the proxy itself writes for its client: the stream's head, counts it estimates,
the usage it learnt.

- :data:`SSE_HEADERS`: the headers of every event stream the proxy starts (relayed,
  emulated or the mock's): no caching, no buffering by a reverse proxy in front;
- :func:`answer_estimated_count`: a count-tokens call the provider cannot answer in
  the client's format (design.md, count_tokens), the mock included, gets the
  gateway's own estimate (prompt characters / 4), marked
  ``x-gateway-token-count: estimated``;
- :func:`note_usage`: the usage a provider reported goes on the request's record
  (the access line's tokens, ``gateway_tokens_total``): in and out, and of
  those the cached and reasoning tokens when the provider reported any;
- :func:`provider_header`: ``x-gateway-provider``, the provider that answered,
  on the head of every answer the proxy sends (whole, streamed, emulated, the
  mock's, an estimated count).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING
from urllib.parse import quote

from gateway.convert.tokens import estimate_input_tokens
from gateway.formats import FORMATS
from gateway.proxy.adapters import off_loop
from gateway.record import call_record
from gateway.usage import clamp_tokens

if TYPE_CHECKING:
    from gateway.call import Call
    from gateway.convert.model import Usage
    from gateway.server.exchange import Exchange

__all__ = [
    "SSE_HEADERS",
    "answer_estimated_count",
    "estimated_count",
    "note_usage",
    "provider_header",
    "stream_headers",
]

#: Headers of every event stream the proxy starts.
SSE_HEADERS = [(b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]
_ESTIMATED = [(b"x-gateway-token-count", b"estimated")]


def provider_header(provider: str) -> tuple[bytes, bytes]:
    """``x-gateway-provider: <name>``; a name that is not printable ASCII is percent-encoded."""
    if provider.isascii() and provider.isprintable():
        return (b"x-gateway-provider", provider.encode("ascii"))
    value = quote(provider.encode("utf-8", "backslashreplace"), safe="")
    return (b"x-gateway-provider", value.encode("ascii"))


def stream_headers(provider: str) -> list[tuple[bytes, bytes]]:
    """The head of an event stream the proxy starts for ``provider``'s answer."""
    return [*SSE_HEADERS, provider_header(provider)]


def note_usage(ex: Exchange, usage: Usage | None) -> None:
    """Put the provider's reported usage on the access-log line (and so in the metrics).

    Cached and reasoning tokens are parts of in and out (the canonical Usage's
    meaning); they go on the record only when the provider reported some.
    """
    if usage is not None:
        record = call_record(ex)
        record.tokens_in = clamp_tokens(usage.input_tokens)
        record.tokens_out = clamp_tokens(usage.output_tokens)
        record.tokens_cached = clamp_tokens(usage.cached_tokens) or None
        record.tokens_reasoning = clamp_tokens(usage.reasoning_tokens) or None


def estimated_count(call: Call) -> dict[str, int]:
    """The gateway's own token count for a count-tokens call, in the client's format."""
    fmt = FORMATS[call.fmt]
    body = fmt.wire.count_request(call.body)
    req, _notes = fmt.parse_request(body, model=call.model, stream=False)
    return fmt.wire.count_answer(estimate_input_tokens(req))


async def answer_estimated_count(ex: Exchange, call: Call, provider: str) -> None:
    """Answer a count-tokens ``call`` routed to ``provider`` with :func:`estimated_count`,
    marked as estimated."""
    count = await off_loop(call.size, functools.partial(estimated_count, call))
    await ex.respond_json(200, count, headers=[*_ESTIMATED, provider_header(provider)])
