"""One try of one call on one provider: send, wait within bounds, answer or fail.

Theory of operation (design.md, "Response status and keep-alives", "Streaming
and cancellation"):

1. The upstream request is built (:mod:`gateway.proxy.upstream_request`: URL,
   headers, the key chosen for this try) around the adapter's body and sent
   through :class:`gateway.upstream.UpstreamClient`, the one httpx boundary.
2. A try is bounded by ``timeouts.first_byte``, a Trio deadline from its start
   to the first streamed bytes (or the whole non-streamed answer); then each
   gap between chunks by ``timeouts.idle``. httpx only gets the connect timeout.
3. A non-2xx answer is read (at most :data:`ERROR_BODY_CAP` bytes) by the
   provider format's error reader and classified by the failure table
   (:mod:`gateway.failures`): the try ends with a :class:`Failure` and the
   caller (:mod:`gateway.proxy.service`) decides what comes next. The status
   is held until then.
4. A 2xx whole answer (at most :data:`RESPONSE_BODY_CAP` bytes) goes through
   the adapter to the client, or is handed back whole when the caller emulates
   a stream; a 2xx stream starts the client's response and is relayed
   (:func:`gateway.proxy.relay.relay_stream`, with keep-alives until its first
   bytes). From then on nothing is retried: failures are in-stream errors.
5. Whatever a provider sends (status, headers, body, events) can only end a
   try as a Failure before the status or an in-stream error after it: every
   exception but ``ClientGone`` and cancellation becomes one, so a broken
   provider is never a 500 or a cut connection.

Everything runs inside the handler's cancel scope: a client that leaves (the
server's watchdog) cancels whatever phase the try is in, and the upstream
response is closed on the way out (the ``async with`` and the loop over the
body live in this one call, never across a task boundary).
"""

from __future__ import annotations

import functools
import logging
import math
from typing import TYPE_CHECKING

import trio

from gateway.errors import ErrorKind, GatewayError, UpstreamError
from gateway.failures import Failure, classify_status, connect_failure, timeout_failure
from gateway.formats import FORMATS
from gateway.proxy.adapters import off_loop
from gateway.proxy.relay import relay_stream
from gateway.proxy.replies import note_usage, provider_header, stream_headers
from gateway.proxy.upstream_request import Destination, with_key
from gateway.server.exchange import ClientGone
from gateway.server.responses import JSON, SSE
from gateway.sse import SSEError
from gateway.upstream import ConnectFailure, ProtocolFailure, UpstreamRequest

if TYPE_CHECKING:
    import httpx

    from gateway.call import Call
    from gateway.proxy.adapters import Adapter
    from gateway.proxy.relay import Relay
    from gateway.server.exchange import Exchange
    from gateway.transformers.model import Transformer
    from gateway.upstream import UpstreamClient

__all__ = ["ERROR_BODY_CAP", "RESPONSE_BODY_CAP", "attempt", "unreadable"]

#: The proxy's one logger name (log filters and JSON lines name it).
LOG = logging.getLogger("gateway.proxy")

#: Most bytes of a provider's error body read (the rest is not needed for the message).
ERROR_BODY_CAP = 256 * 1024
#: Most bytes of a non-streamed provider answer.
RESPONSE_BODY_CAP = 64 * 1024 * 1024


async def attempt(
    upstream: UpstreamClient,
    ex: Exchange,
    call: Call,
    t: Transformer,
    dest: Destination,
    adapter: Adapter,
    key: str | None,
    *,
    keepalive_s: float,
    collect: list[bytes] | None = None,
) -> Failure | None:
    """One upstream exchange. None when the client got its answer (or an in-stream error).

    Args:
        upstream: the HTTP client to send with.
        ex: the client's exchange.
        call: the call as it goes upstream (not streamed when the caller emulates).
        t: the provider.
        dest: the upstream URL and the headers of every try (:class:`Destination`).
        adapter: the call's adapter for ``t``: its body, its answer and stream.
        key: the credential for this try (None: none is sent).
        keepalive_s: the keep-alive period while a started stream waits.
        collect: when given, a whole (non-streamed) answer is appended there
            instead of sent.

    Returns:
        The try's :class:`Failure` before the client got a status, else None.
    """
    request = UpstreamRequest(
        "POST",
        dest.url,
        with_key(dest.headers, t, key),
        adapter.body,
        connect_timeout_s=t.timeouts.connect,
        tls_verify=t.tls_verify,
    )
    started = trio.current_time()
    committed = False
    relay: Relay | None = None  # made once a stream starts
    with trio.CancelScope(deadline=started + t.timeouts.first_byte) as first_byte:
        try:
            async with upstream.stream(request) as resp:
                if not 200 <= resp.status_code < 300:
                    data = await read_capped(resp, ERROR_BODY_CAP)
                    said = FORMATS[t.format].read_error(resp.status_code, data)
                    return classify_status(
                        t.name, resp.status_code, said, resp.headers, adapter.redactor
                    )
                if not call.stream:
                    data = await read_body(resp, t.timeouts.idle)
                    first_byte.deadline = math.inf
                    ex.upstream_wait_s += trio.current_time() - started
                    if collect is not None:
                        collect.append(data)
                        return None
                    answer = await off_loop(len(data), functools.partial(adapter.response, data))
                    note_usage(ex, adapter.usage)
                    head = [provider_header(t.name)]
                    await ex.respond(resp.status_code, answer, content_type=JSON, headers=head)
                    return None
                not_sse = _not_event_stream(resp.headers.get("content-type"))
                if not_sse:
                    return _not_a_stream(t.name, not_sse)
                ex.upstream_wait_s += trio.current_time() - started
                relay = adapter.relay()
                await ex.start(200, content_type=SSE, headers=stream_headers(t.name))
                committed = True
                try:
                    await relay_stream(ex, t, resp, relay, first_byte, keepalive_s=keepalive_s)
                finally:  # what the provider reported counts, however the stream ended
                    note_usage(ex, relay.usage)
                return None
        except ClientGone:
            raise
        except ConnectFailure as exc:
            return connect_failure(t.name, str(exc))
        except trio.TooSlowError:  # a non-streamed body stalled before the status went out
            return timeout_failure(t.name, "idle", t.timeouts.idle)
        except (ProtocolFailure, SSEError) as exc:
            if relay is None or not committed:
                return Failure(
                    _broken(t.name, str(exc)), retry=True, fallback=True, kind="protocol"
                )
            await ex.send(relay.error(_API, 502, _broken_message(t.name, str(exc))))
            return None
        except Exception as exc:
            # Whatever a provider sends is its fault, never a 500 or a cut stream:
            # before the status, the caller's error; after it, an in-stream error.
            error = unreadable(t.name, exc)
            if relay is None or not committed:
                return Failure(error, retry=False, fallback=True, kind="bad_answer")
            await ex.send(relay.error(error.kind, error.status_hint, error.message))
            return None
    # Only the first-byte deadline gets here.
    if relay is not None and committed:
        message = (
            f"Provider {t.name!r} sent no first token within its first_byte "
            f"timeout ({t.timeouts.first_byte:g} s)."
        )
        await ex.send(relay.error(_API, 504, message))
        return None
    return timeout_failure(t.name, "first_byte", t.timeouts.first_byte)


# -- reading bodies ----------------------------------------------------------------------------


async def read_capped(resp: httpx.Response, cap: int) -> bytes:
    """At most ``cap`` bytes of ``resp``'s body (an error body: its start is enough)."""
    data = bytearray()
    async for chunk in resp.aiter_bytes():
        data += chunk
        if len(data) >= cap:
            break
    return bytes(data[:cap])


async def read_body(resp: httpx.Response, idle_s: float) -> bytes:
    """``resp``'s whole body, each read within ``idle_s``.

    Raises:
        trio.TooSlowError: a read took longer than ``idle_s``.
        ProtocolFailure: the body is longer than :data:`RESPONSE_BODY_CAP`.
    """
    data = bytearray()
    chunks = resp.aiter_bytes().__aiter__()
    while True:
        with trio.fail_after(idle_s):
            try:
                chunk = await chunks.__anext__()
            except StopAsyncIteration:
                return bytes(data)
        data += chunk
        if len(data) > RESPONSE_BODY_CAP:
            raise ProtocolFailure(f"the answer exceeded {RESPONSE_BODY_CAP} bytes")


# -- what a broken provider ends a try with ----------------------------------------------------

_API = ErrorKind.API_ERROR


def _broken_message(provider: str, detail: str) -> str:
    return f"The connection to provider {provider!r} broke: {detail}."


def _broken(provider: str, detail: str) -> UpstreamError:
    return UpstreamError(_broken_message(provider, detail))


def unreadable(provider: str, exc: Exception) -> GatewayError:
    """The client's error for a provider answer our code could not handle (logged)."""
    if isinstance(exc, GatewayError):
        return UpstreamError(f"Provider {provider!r}: {exc.message}")
    LOG.warning("provider %r sent an answer that broke its reader", provider, exc_info=exc)
    return UpstreamError(
        f"Provider {provider!r} sent an answer the gateway could not read ({type(exc).__name__})."
    )


#: Media types a provider may label an event stream with (absent is accepted too).
_SSE_TYPES = frozenset({"text/event-stream", "text/plain", "application/octet-stream"})


def _not_event_stream(content_type: str | None) -> str:
    """The media type of a streamed 2xx answer that is not an event stream, else ""."""
    if not content_type:
        return ""
    media = content_type.split(";", 1)[0].strip().lower()
    return "" if media in _SSE_TYPES else media[:100]


def _not_a_stream(provider: str, media: str) -> Failure:
    return Failure(
        UpstreamError(
            f"Provider {provider!r} answered a streaming request with {media!r} "
            "instead of an event stream."
        ),
        retry=False,
        fallback=True,
        kind="not_a_stream",
    )
