"""The upstream HTTP client: the single place where httpx exceptions become ours.

Theory of operation: one ``httpx.AsyncClient`` per distinct ``tls_verify``
setting (True, False, or a CA bundle path), created lazily, shared by every
request and closed by :meth:`UpstreamClient.aclose`. Keep-alive pools are
reused across requests. ``HTTPS_PROXY``/``NO_PROXY`` are honoured
(``trust_env``). The transport is a seam: ``transport_factory`` builds the
``httpx.AsyncBaseTransport`` for a given SSL context (tests pass
``httpx.MockTransport``; production uses :class:`PooledTransport`, our lean h11
keep-alive pool, while httpx still mounts its own transports for proxied hosts).

Timeouts: httpx gets only the connect timeout. The waits for the first byte
and between chunks are Trio cancel scopes owned by the proxy (httpx's read
timeout measures gaps and would also cover the head, see style-by-example §2.3).

Exceptions raised out of :meth:`UpstreamClient.stream` are :class:`TransportFailure`
subclasses (or ``trio.Cancelled``), never httpx's.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import httpx

from gateway.upstream_transport import PooledTransport, environment_proxy_mounts

__all__ = [
    "ConnectFailure",
    "ProtocolFailure",
    "TransportFailure",
    "UpstreamClient",
    "UpstreamRequest",
]


class TransportFailure(Exception):
    """The provider could not be reached or the exchange broke (no usable status)."""

    phase = "transport"


class ConnectFailure(TransportFailure):
    """Connect, DNS or TLS failure, or the connect timeout."""

    phase = "connect"


class ProtocolFailure(TransportFailure):
    """The connection broke or the provider spoke broken HTTP."""

    phase = "protocol"


@attrs.frozen
class UpstreamRequest:
    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes
    connect_timeout_s: float
    tls_verify: bool | str = True


TransportFactory = Callable[[ssl.SSLContext | bool], httpx.AsyncBaseTransport]


def _context(verify: ssl.SSLContext | bool) -> ssl.SSLContext:
    if isinstance(verify, ssl.SSLContext):
        return verify
    context = ssl.create_default_context()
    if verify is False:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _default_transport(verify: ssl.SSLContext | bool) -> httpx.AsyncBaseTransport:
    """Our pooled h11 transport (httpx's own pool polls every idle connection per request)."""
    return PooledTransport(ssl_context=_context(verify))


class UpstreamClient:
    """Shared HTTP clients towards providers.

    Args:
        transport_factory: builds the transport for an SSL setting; None for the default.
    """

    def __init__(self, transport_factory: TransportFactory | None = None) -> None:
        self._factory = transport_factory or _default_transport
        self._clients: dict[bool | str, httpx.AsyncClient] = {}

    def _client(self, verify: bool | str) -> httpx.AsyncClient:
        client = self._clients.get(verify)
        if client is None:
            ssl_setting: ssl.SSLContext | bool
            if isinstance(verify, str):
                ssl_setting = ssl.create_default_context(cafile=verify)
            else:
                ssl_setting = verify
            # With transport= httpx ignores HTTP(S)_PROXY/NO_PROXY; the mounts bring them back.
            client = httpx.AsyncClient(
                transport=self._factory(ssl_setting),
                mounts=environment_proxy_mounts(ssl_context=_context(ssl_setting)),
                verify=ssl_setting,
                trust_env=True,
                timeout=httpx.Timeout(None),
                follow_redirects=False,
            )
            self._clients[verify] = client
        return client

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()

    @asynccontextmanager
    async def stream(self, req: UpstreamRequest) -> AsyncIterator[httpx.Response]:
        """Send ``req``; yield the response once its head arrived; close it on exit.

        Raises:
            ConnectFailure, ProtocolFailure: the exchange failed (message names no secret).
        """
        client = self._client(req.tls_verify)
        request = client.build_request(
            req.method,
            req.url,
            headers=req.headers,
            content=req.body,
            timeout=httpx.Timeout(None, connect=req.connect_timeout_s),
        )
        try:
            response = await client.send(request, stream=True)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.ProxyError) as exc:
            raise ConnectFailure(_describe(exc)) from exc
        except _BROKEN as exc:
            raise ProtocolFailure(_describe(exc)) from exc
        try:
            yield response
        except _BROKEN as exc:
            raise ProtocolFailure(_describe(exc)) from exc
        finally:
            await response.aclose()


#: Everything httpx raises for a broken exchange: transport errors, but also
#: DecodingError (``Content-Encoding: gzip`` on a body that is not gzip), which is
#: an ``httpx.RequestError`` and not a ``TransportError``, and a body read twice
#: or after close (``StreamError``, a RuntimeError).
_BROKEN = (httpx.HTTPError, httpx.StreamError, httpx.InvalidURL)


def _describe(exc: Exception) -> str:
    """A short description without URLs (they may hold a ``?key=``)."""
    text = str(exc) or type(exc).__name__
    cause: Any = exc.__cause__ or exc.__context__
    if cause is not None and str(cause) and str(cause) != text:
        text = f"{text} ({cause})"
    return text.split("https://")[0].split("http://")[0].strip() or type(exc).__name__
