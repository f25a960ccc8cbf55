"""The provider's side of a Realtime session: its URL, the connection, what a failed
handshake means.

Theory of operation: :func:`realtime_url` is the provider's ``realtime_url``
with the file's ``query`` and ``model=<upstream name>`` added, the model one
encoded query value (gateway.urls.query_value: ``a/../b?x=1&key=evil#f``
arrives as one ``model`` value). :meth:`Dialer.connected` opens TCP, TLS over it
for ``wss://`` (the file's ``tls_verify``: True, False or a CA file; one
context per setting, since loading CAs takes milliseconds) and the WebSocket
handshake, all within the file's ``timeouts.connect``. The TLS handshake is done
before trio-websocket gets the stream: done lazily by its first write, a bad
certificate would end its reader silently and look like a timeout. The stream
is ours, closed when the session ends (trio-websocket leaves a client's stream
open once the server closed first).

A handshake fails two ways. Before the provider answers (connect, TLS,
timeout): :class:`HandshakeFailed`, raised here. With an HTTP answer instead of
a 101: trio-websocket's reader raises ``ConnectionRejected`` into the nursery it
runs in. :func:`handshake_failure` gives either its meaning in the failure
table (gateway.failures), the answer read by the provider's own format, as for
an HTTP call: 401/403 a refused key, 429 a rate limit, 5xx a retry.
``HTTPS_PROXY`` is not used: WebSocket upstreams are reached directly.
"""

from __future__ import annotations

import ssl
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import attrs
import trio
import trio_websocket

from gateway.convert.provider_errors import unreadable_error
from gateway.errors import UpstreamError
from gateway.failures import Failure, classify_status, connect_failure, timeout_failure
from gateway.formats import FORMATS
from gateway.server.sockets import READ_SIZE
from gateway.server.websocket import MAX_MESSAGE_BYTES, MESSAGE_QUEUE_SIZE
from gateway.urls import query_value

if TYPE_CHECKING:
    from gateway.redact import Redactor
    from gateway.transformers.model import Transformer

__all__ = ["Dialer", "HandshakeFailed", "handshake_failure", "realtime_url"]

_Stream = trio.SocketStream | trio.SSLStream[trio.SocketStream]


def realtime_url(t: Transformer, upstream_model: str) -> str:
    """``t``'s ``realtime_url`` with the file's query and ``model=<upstream_model>``.

    The model is one encoded query value (gateway.urls): ``&``, ``#`` or ``/..``
    in it cannot add a parameter, cut the query or reach another path.
    """
    assert t.realtime_url is not None
    query = urllib.parse.urlencode(t.query)
    if query:
        query += "&"
    query += "model=" + query_value(upstream_model)
    base = t.realtime_url
    return base + ("&" if "?" in base else "?") + query


@attrs.frozen
class _Address:
    """Where a ``ws://`` or ``wss://`` URL points."""

    host: str
    port: int
    resource: str
    host_header: str
    tls: bool

    @classmethod
    def of(cls, url: str) -> _Address:
        parts = urllib.parse.urlsplit(url)
        tls = parts.scheme == "wss"
        host = parts.hostname or ""
        port = parts.port or (443 if tls else 80)
        shown = f"[{host}]" if ":" in host else host
        host_header = shown if port == (443 if tls else 80) else f"{shown}:{port}"
        resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls(host, port, resource, host_header, tls)


class HandshakeFailed(Exception):
    """A handshake failed before the provider answered it (connect, TLS, timeout)."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.error.message)
        self.failure = failure


class Dialer:
    """Opens providers' realtime WebSockets (owned by the Realtime endpoint)."""

    def __init__(self) -> None:
        self._contexts: dict[bool | str, ssl.SSLContext] = {}

    @asynccontextmanager
    async def connected(
        self,
        nursery: trio.Nursery,
        t: Transformer,
        url: str,
        headers: list[tuple[str, str]],
    ) -> AsyncIterator[trio_websocket.WebSocketConnection]:
        """The provider's WebSocket at ``url``, its reader in ``nursery``; closed at exit.

        Raises:
            HandshakeFailed: no answer to the handshake (connect, TLS, timeout). A refusal
                (``ConnectionRejected``) comes out of ``nursery``, from the reader.
        """
        address = _Address.of(url)
        stream: _Stream | None = None
        try:
            try:
                with trio.fail_after(t.timeouts.connect):
                    stream = await self._open_stream(address, t.tls_verify)
                    ws = await trio_websocket.wrap_client_stream(
                        nursery,
                        stream,
                        address.host_header,
                        address.resource,
                        extra_headers=[(k.encode(), v.encode()) for k, v in headers],
                        message_queue_size=MESSAGE_QUEUE_SIZE,
                        max_message_size=MAX_MESSAGE_BYTES,
                        receive_buffer_size=READ_SIZE,
                    )
            except trio.TooSlowError:
                failure = timeout_failure(t.name, "connect", t.timeouts.connect)
                raise HandshakeFailed(failure) from None
            except (OSError, trio.BrokenResourceError) as exc:
                raise HandshakeFailed(connect_failure(t.name, _describe(exc))) from None
            yield ws
        finally:
            if stream is not None:
                await trio.aclose_forcefully(stream)

    async def _open_stream(self, address: _Address, verify: bool | str) -> _Stream:
        """TCP to ``address``, and TLS over it for ``wss://``, its handshake done."""
        tcp = await trio.open_tcp_stream(address.host, address.port)
        if not address.tls:
            return tcp
        tls = trio.SSLStream(
            tcp, self._context(verify), server_hostname=address.host, https_compatible=True
        )
        try:
            await tls.do_handshake()
        except BaseException:
            await trio.aclose_forcefully(tcp)
            raise
        return tls

    def _context(self, verify: bool | str) -> ssl.SSLContext:
        """The TLS context of a ``tls_verify`` setting, made once."""
        context = self._contexts.get(verify)
        if context is None:
            if isinstance(verify, str):
                context = ssl.create_default_context(cafile=verify)
            else:
                context = ssl.create_default_context()
                if verify is False:
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
            self._contexts[verify] = context
        return context


def handshake_failure(exc: BaseException, t: Transformer, redactor: Redactor) -> Failure:
    """What a failed handshake (:class:`HandshakeFailed` or ``ConnectionRejected``) means."""
    if isinstance(exc, HandshakeFailed):
        return exc.failure
    assert isinstance(exc, trio_websocket.ConnectionRejected)
    status, body = exc.status_code, exc.body or b""
    if status < 400:
        return Failure(
            UpstreamError(
                f"Provider {t.name!r} answered the WebSocket handshake with HTTP {status} "
                "instead of 101; check its realtime_url.",
                status_hint=502,
            ),
            retry=False,
            fallback=True,
            kind=f"status_{status}",
        )
    fmt = FORMATS.get(t.format)
    said = fmt.read_error(status, body) if fmt is not None else unreadable_error(status, body)
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in exc.headers}
    return classify_status(t.name, status, said, headers, redactor)


def _describe(exc: BaseException) -> str:
    """A connect failure in a few words (the host and port at most; never the URL)."""
    if isinstance(exc, trio.BrokenResourceError):  # TLS: the SSL error is its cause
        exc = exc.__cause__ or exc.__context__ or exc
    return f"{type(exc).__name__}: {exc}"
