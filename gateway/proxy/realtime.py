"""The Realtime relay: ``GET /v1/realtime?model=...`` upgraded to a WebSocket.

Theory of operation (design.md, "Client keys, limits, CORS, secrets": Realtime):

1. The ``model`` query parameter is checked like every model name
   (gateway.catalog) and routes like any model (gateway.routing, on the
   snapshot the session takes at its start, with the alias's round-robin
   turn). Its targets whose provider has a ``realtime_url`` are tried in
   order, fallbacks included. A model that routes nowhere is a 404; one whose
   providers have no ``realtime_url`` a 400 naming the first. These refusals,
   like every failure below, come before the client's WebSocket is accepted:
   an HTTP error in the client's format, never a 101.
2. The edge's admission (``admit``: client key, allow-list, limits), when the
   app gives one, comes next, before any provider is contacted; what it
   returns is awaited when the session ends, with the session's record.
3. Each target gets up to ``retry.retries + 1`` handshakes, each with the key
   the proxy chooses (the proxy's KeyPool: a key that HTTP calls rested rests
   here too, and the other way round; the client's own credential under
   ``forward_client_key``). The URL is ``realtime_url`` with the file's
   ``query`` and ``model=<upstream name>`` added (gateway.urls.query_value: one
   encoded value whatever the client named); the headers are ``x-request-id``,
   the client headers the provider's format forwards (``OpenAI-Beta:
   realtime=v1``), the file's headers and the key in the header its format
   uses (gateway.proxy.upstream_request). TCP, TLS (``tls_verify``) and the
   WebSocket handshake together get ``timeouts.connect`` (realtime_upstream.py:
   the URL, the connection, what a failed handshake means). A refused handshake
   is read by the provider's format and judged by the failure table
   (gateway.failures) like an HTTP answer: 401/403 rest the key and the next
   try takes another, 429 rests it, 5xx, connect errors and timeouts retry and
   fall back, 400/404 end the session with the provider's status. The message
   the client finally gets is cleaned of secrets.
4. Then the client's upgrade is accepted (a 101 carrying ``x-gateway-provider``)
   and the two WebSockets are relayed (ws_relay.py) until a side closes or the
   server drains.

The session is one request in the access line and the metrics: status 101,
its duration the session's, its bytes the message bytes sent to the client,
its CallRecord the model, provider, upstream model and retries. Token usage is
not read from realtime events. Not supported: ``HTTPS_PROXY`` for the
WebSocket upstream (it is reached directly), subprotocols (none are offered
upstream or selected), compression extensions.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import trio
import trio_websocket

from gateway.catalog import check_model_name
from gateway.errors import BadRequest, GatewayError, Unauthorized
from gateway.failures import Failure
from gateway.frontends import query_params
from gateway.keys import AllResting, UseKey
from gateway.proxy.realtime_upstream import (
    Dialer,
    HandshakeFailed,
    handshake_failure,
    realtime_url,
)
from gateway.proxy.replies import provider_header
from gateway.proxy.service import cleaned
from gateway.proxy.upstream_request import (
    client_credential,
    forwarded_headers,
    with_key,
)
from gateway.proxy.ws_relay import BROKEN, GOING_AWAY, Relay
from gateway.record import CallRecord
from gateway.routing import Target, route

if sys.version_info < (3, 11):  # pragma: no cover - exercised on 3.10 only
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    from gateway.proxy.service import Proxy
    from gateway.redact import Redactor
    from gateway.server.exchange import Exchange, Upgrade
    from gateway.transformers.model import Transformer

__all__ = ["REALTIME_PATH", "Admit", "Realtime", "Settle"]

LOG = logging.getLogger("gateway.proxy")

#: The endpoint (design.md, "Front-end endpoints").
REALTIME_PATH = "/v1/realtime"
#: The longest wait for the edge's settlement when a session ends (shielded).
SETTLE_TIMEOUT_S = 5.0

#: Called when a session ends, with its record (shielded, bounded by SETTLE_TIMEOUT_S).
Settle = Callable[[CallRecord], Awaitable[None]]
#: The edge's admission of a session: ``(exchange, model)`` before any provider is
#: contacted; raises a GatewayError to refuse (answered in the client's format, no 101).
Admit = Callable[["Exchange", str], Awaitable[Settle]]


class _Exhausted(Exception):
    """A target has no tries left; ``failure`` says why and whether to fall back."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.error.message)
        self.failure = failure


class Realtime:
    """The ``/v1/realtime`` endpoint. Owned by the app, beside the proxy it shares keys with.

    Args:
        proxy: the HTTP proxy: the registry, key pool, round-robin turns,
            redactors and metrics the sessions share with it.
        admit: the edge's admission (client keys, limits), or None (open).
    """

    def __init__(self, proxy: Proxy, *, admit: Admit | None = None) -> None:
        self.proxy = proxy
        self.admit = admit
        self.dialer = Dialer()

    async def handle(self, ex: Exchange) -> None:
        """Serve one session: refuse it (a GatewayError), or relay it until it ends."""
        upgrade = ex.upgrade
        if upgrade is None:
            raise RuntimeError("the realtime endpoint must be a websocket route")
        record = ex.facts = CallRecord(client_format=ex.dialect.name)
        model = query_params(ex.request).get("model", "")
        if not model:
            raise BadRequest(f"Name the model: {REALTIME_PATH}?model=MODEL.")
        record.model = check_model_name(model)
        # The key first: a stranger learns nothing, not even which models route.
        settle = await self.admit(ex, model) if self.admit is not None else None
        metrics = self.proxy.metrics
        try:
            snapshot = self.proxy.registry.current
            redactor = self.proxy.redactor(snapshot)
            targets = route(model, snapshot, turn=self.proxy.turn(model))
            served = [t for t in targets if t.transformer.realtime_url]
            if not served:
                name = targets[0].transformer.name
                raise BadRequest(
                    f"Provider {name!r}, which serves {model!r}, has no realtime_url: "
                    "it offers no Realtime WebSocket through this gateway."
                )
            if metrics is not None:
                metrics.inflight.inc()
            try:
                await self._targets(ex, upgrade, tuple(served), redactor)
            finally:
                if metrics is not None:
                    metrics.inflight.dec()
        finally:
            if settle is not None:
                with trio.move_on_after(SETTLE_TIMEOUT_S, shield=True):
                    await settle(record)

    async def _targets(
        self, ex: Exchange, upgrade: Upgrade, targets: tuple[Target, ...], redactor: Redactor
    ) -> None:
        error: GatewayError | None = None
        for target in targets:
            try:
                await self._target(ex, upgrade, target, redactor)
                return
            except _Exhausted as exc:
                error = exc.failure.error
                if not exc.failure.fallback:
                    break
        assert error is not None
        raise cleaned(error, ex, targets, redactor)

    async def _target(
        self, ex: Exchange, upgrade: Upgrade, target: Target, redactor: Redactor
    ) -> None:
        """Up to ``retry.retries + 1`` handshakes with ``target``; the session on success.

        Raises:
            _Exhausted: no handshake succeeded.
        """
        t = target.transformer
        record = ex.facts
        assert isinstance(record, CallRecord)
        record.provider, record.upstream_model = t.name, target.upstream_model
        if t.keys_missing:
            unset = Unauthorized(t.missing_keys_message())
            raise _Exhausted(Failure(unset, retry=False, fallback=True))
        if t.forward_client_key:
            credential = client_credential(ex)
            if credential:
                redactor = redactor.with_secrets([credential])
        url = realtime_url(t, target.upstream_model)
        headers = forwarded_headers(ex, t)  # a client value unfit for a header: 400, now
        last: Failure | None = None
        for n in range(t.retry.retries + 1):
            choice = self.proxy.choose_key(ex, t)
            if isinstance(choice, AllResting):
                raise _Exhausted(last or self.proxy.resting_failure(t, choice))
            key = choice.key if isinstance(choice, UseKey) else None
            failure = await self._try(ex, upgrade, t, url, with_key(headers, t, key), redactor)
            pooled = key if isinstance(choice, UseKey) and choice.pooled else None
            if failure is None:
                if pooled:
                    self.proxy.keys.succeeded(t, pooled)
                return
            record.retries = n
            self.proxy.note_failure(ex, t, failure, n, pooled, what="realtime handshake")
            if not failure.retry:
                raise _Exhausted(failure)
            last = failure
            if n < t.retry.retries:
                await trio.sleep(self.proxy.retry_delay(t, failure, n))
        assert last is not None
        raise _Exhausted(last)

    async def _try(
        self,
        ex: Exchange,
        upgrade: Upgrade,
        t: Transformer,
        url: str,
        headers: list[tuple[str, str]],
        redactor: Redactor,
    ) -> Failure | None:
        """One handshake with ``t``, then the whole session: None, or why the handshake failed."""
        try:
            async with (
                trio.open_nursery() as nursery,
                self.dialer.connected(nursery, t, url, headers) as upstream,
            ):
                await self._session(ex, upgrade, t, upstream, nursery, redactor)
        except (HandshakeFailed, trio_websocket.ConnectionRejected) as exc:  # non-strict groups
            return handshake_failure(exc, t, redactor)
        except BaseExceptionGroup as group:
            # A handshake that failed, alone: the reader's ConnectionRejected, or ours.
            # Anything beside it (a cancellation from outside included) goes on.
            failed, rest = group.split((HandshakeFailed, trio_websocket.ConnectionRejected))
            if failed is None or rest is not None:
                raise
            return handshake_failure(_leaves(failed)[0], t, redactor)
        return None

    async def _session(
        self,
        ex: Exchange,
        upgrade: Upgrade,
        t: Transformer,
        upstream: trio_websocket.WebSocketConnection,
        nursery: trio.Nursery,
        redactor: Redactor,
    ) -> None:
        """Accept the client and relay it to ``upstream`` until one ends."""
        client = await upgrade.accept(nursery, headers=[provider_header(t.name)])
        relay = Relay(client, upstream, redact=redactor.text)
        try:
            await relay.run(upgrade.wait_going_away)
        finally:
            ending = relay.ending or GOING_AWAY
            ex.bytes_sent = relay.to_client.nbytes
            ex.client_gone = ending.by == "client" and ending.code in BROKEN
            ex.finished = not ex.client_gone
            nursery.cancel_scope.cancel()  # the readers: a provider may keep its TCP open
            LOG.info(
                "realtime session ended by the %s (%d); %d messages to the client, %d to %s",
                ending.by,
                ending.code,
                relay.to_client.messages,
                relay.to_upstream.messages,
                t.name,
                extra={"request_id": ex.request.request_id},
            )


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out
