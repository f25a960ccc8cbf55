"""One TCP connection: the h11 read / dispatch / respond loop.

Theory of operation (modelled on h11's examples/trio-server.py and hypercorn's
trio/tcp_server.py; RFC 9112 for the protocol):

1. *Idle*: wait for the first byte of the next request. On a fresh connection
   the wait is bounded by ``header_timeout_s``, between requests by
   ``keep_alive_s``; either way, running out closes the connection quietly.
   While idle, a draining server may cancel the wait (see listen.py).
2. *Head*: from the first byte, the whole request head must arrive within
   ``header_timeout_s`` (slowloris), else 408 and close. h11's
   ``max_incomplete_event_size`` caps the head at ``max_header_bytes`` (431).
   A head with both ``content-length`` and ``transfer-encoding`` is a 400 and
   the connection closes (RFC 9112 section 6.1: a smuggling attempt).
3. *Body*: read whole (body.py: every gateway endpoint needs all of it),
   under ``max_body_bytes`` (413), ``body_timeout_s`` per pause and
   ``body_total_timeout_s`` in all (408 and close). The request reserves its
   memory in the server's admission counter (admission.py) as the body
   arrives, then its estimated decoded size; past ``max_inflight_bytes``: 503.
4. *Dispatch*: the router picks a handler (HEAD runs the GET route's and
   the :class:`~gateway.server.exchange.Exchange` sends the head only).
   Handlers that wait on providers run with a watchdog task, the only reader
   of the socket while the handler runs: a reset cancels the handler's scope
   (client gone), EOF is probed first (a half-closed client still reads; see
   watchdog.py), other bytes are pipelined requests and stay buffered in h11.
   A WebSocket upgrade goes to a ``websocket`` route's handler, which may
   take the connection over (websocket.py); a request of the wrong kind for
   its route (an upgrade where HTTP is spoken, or the reverse) is a 426.
5. *Respond*: the handler answers through its exchange, whole or as a
   chunked stream; ``send_all`` waiting on a slow reader is the backpressure.
   A failed send is :class:`~gateway.server.exchange.ClientGone`, also when a
   handler's nursery groups it with other errors of the same departure:
   never a traceback.
6. After the response: the request's record (exchange.py's ``HttpRecord``)
   goes to the access log and the server's observer; then close if h11 says
   ``MUST_CLOSE``, the server drains or the connection became a WebSocket
   (a 101), else ``start_next_cycle()`` and back to 1.

Errors map to responses in one place (refusals.py, through
:meth:`Connection._respond_error`): h11 protocol errors keep their status
hint and close; our ``GatewayError`` keeps its status (closing only for 408
and 413); anything else is a 500 with a generic body, and the traceback goes
to the log. The request's dialect (its route's, or the one the app picks for
an unmatched path) words the body: the server knows no LLM API (dialect.py).

What the connection reads of its server is a :class:`ServerContext`
(context.py): it never imports the listening side.
"""

from __future__ import annotations

import logging
import ssl
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import h11
import trio
import trio.lowlevel

from gateway.errors import GatewayError
from gateway.logs import accept_request_id, log_access
from gateway.server.body import read_body
from gateway.server.exchange import ClientGone, Exchange, HttpRecord, Request, only_client_gone
from gateway.server.jsonscan import estimate_memory
from gateway.server.refusals import check_head, error_reply, fault_reply
from gateway.server.sockets import READ_SIZE, peer_name
from gateway.server.watchdog import ClientWatch
from gateway.server.websocket import WebSocketUpgrade, upgrade_refusal

if sys.version_info < (3, 11):  # pragma: no cover - exercised on 3.10 only
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    from gateway.server.context import ServerContext
    from gateway.server.routes import Handler, Route

__all__ = ["Connection", "handle_connection"]

LOG = logging.getLogger("gateway.server")

#: How long a closing connection waits for the client to read our last bytes.
CLOSE_DRAIN_S = 0.5
#: Turns the watchdog's probe waits for a handler's send to end (see ``_send_probe``).
PROBE_TURNS = 3
_RESPONDABLE = (h11.IDLE, h11.SEND_RESPONSE)


class Connection:
    """The state of one client connection. See the module docstring."""

    def __init__(self, context: ServerContext, stream: trio.abc.Stream, client: str) -> None:
        self.context = context
        self.stream = stream
        self.client = client
        self.config = context.settings
        self.conn = h11.Connection(
            h11.SERVER, max_incomplete_event_size=self.config.max_header_bytes
        )
        self.idle_scope: trio.CancelScope | None = None
        self.served = 0  # requests answered: idle with served > 0 is an idle keep-alive
        self.exchange: Exchange | None = None
        self._sending = False  # a send_events is writing
        self._probing: trio.Event | None = None  # the watchdog's probe is writing
        self._watch = ClientWatch(self.conn, stream, self.config.max_header_bytes, self._send_probe)

    @property
    def draining(self) -> bool:
        """The server is shutting down: this response is the connection's last."""
        return self.context.draining

    # -- I/O helpers -----------------------------------------------------------------------

    async def send_events(self, *events: h11.Event) -> None:
        """h11-encode ``events`` and write them in one ``send_all``."""
        while self._probing is not None:  # the watchdog's probe is going out first
            await self._probing.wait()
        self._sending = True
        try:
            await self._send(*events)
        finally:
            self._sending = False

    async def _send(self, *events: h11.Event) -> None:
        if self.conn.our_state is h11.ERROR:  # an earlier send failed: the client is gone
            raise ClientGone
        try:
            data = b"".join([self.conn.send(event) or b"" for event in events])
            await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self.conn.send_failed()
            raise ClientGone from exc
        except BaseException:
            self.conn.send_failed()
            raise

    async def _send_probe(self, make_event: Callable[[], h11.Event | None]) -> None:
        """The watchdog's probe, unless the handler is writing (its send tells then).

        A send whose bytes are out (read by a client that then closed) ends within a turn
        or two; without waiting, its departure shows only at the next send. The probe is
        chosen after the wait: that send may have changed what may go out.
        """
        for _ in range(PROBE_TURNS):
            if not self._sending:
                break
            await trio.lowlevel.checkpoint()
        if self._sending or (event := make_event()) is None:
            return
        done = self._probing = trio.Event()
        try:
            await self._send(event)
        finally:
            self._probing = None
            done.set()

    async def _receive(self) -> None:
        try:
            data = bytes(await self.stream.receive_some(READ_SIZE))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
        self.conn.receive_data(data)

    async def _next_event(self) -> Any:
        while True:
            event = self.conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            if self.conn.they_are_waiting_for_100_continue:
                await self.send_events(h11.InformationalResponse(status_code=100, headers=[]))
            await self._receive()

    # -- the loop -------------------------------------------------------------------------

    async def run(self) -> None:
        first = True
        try:
            while True:
                if not await self._wait_for_request(first):
                    return
                first = False
                await self._one_request()
                self.served += 1
                if self.conn.our_state is h11.MUST_CLOSE or self.context.draining:
                    return
                if self.exchange is not None and self.exchange.status == 101:
                    return  # the connection was a WebSocket's: never back to HTTP
                try:
                    self.conn.start_next_cycle()
                except h11.ProtocolError:
                    return
        except (trio.BrokenResourceError, trio.ClosedResourceError, ClientGone):
            pass
        except BaseExceptionGroup as group:
            # Nurseries (a handler's, the watchdog's) group a departed client's errors;
            # a group of nothing else is the same quiet ending, never a traceback.
            if not only_client_gone(group):
                raise
            cancelled = group.subgroup(trio.Cancelled)
            if cancelled is not None:  # the client's errors end quietly; a cancellation goes on
                raise cancelled from None
        finally:
            await self._close()

    async def _wait_for_request(self, first: bool) -> bool:
        """Phase 1: wait for a byte of the next request; False means close quietly."""
        if self.conn.trailing_data[0] or self.conn.trailing_data[1]:
            return True  # pipelined bytes (or EOF) already buffered
        if self.context.draining:
            return False
        timeout = self.config.header_timeout_s if first else self.config.keep_alive_s
        slots = self.context.slots
        with trio.move_on_after(timeout) as scope:
            self.idle_scope = scope
            slots.idle(self)
            try:
                await self._receive()
            finally:
                slots.busy(self)
                self.idle_scope = None
        return not scope.cancelled_caught and bool(self.conn.trailing_data[0])

    async def _one_request(self) -> None:
        started = time.perf_counter()
        request: Request | None = None
        self.exchange = None
        try:
            event = self.conn.next_event()  # a pipelined head may be buffered already
            if event is h11.NEED_DATA:
                with trio.fail_after(self.config.header_timeout_s):
                    event = await self._next_event()
            if type(event) is not h11.Request:  # EOF or ConnectionClosed mid-head
                raise ClientGone
            request = self._make_request(event, started)
            await self._dispatch(request)
        except (GatewayError, h11.RemoteProtocolError, trio.TooSlowError) as exc:
            await self._respond_error(exc, request, self.exchange, started)
        finally:
            if request is not None:
                self._finish(request, self.exchange)

    def _make_request(self, event: h11.Request, started: float) -> Request:
        rid = check_head(event, self.config.max_header_bytes)
        request = Request(
            method=event.method.decode("ascii"),
            target=event.target.decode("latin-1"),
            headers=event.headers,
            body=b"",
            request_id=accept_request_id(rid),
            client=self.client,
            started=started,
        )
        request.max_json_depth = self.config.max_json_depth
        return request

    async def _dispatch(self, request: Request) -> None:
        context = self.context
        route: Route | None
        route_error: GatewayError | None = None
        try:
            route, request.params = context.router.match(request.method, request.path)
        except GatewayError as exc:
            # Read the body all the same, so that the connection stays usable after a 404.
            route, route_error = context.preflight_route(request, exc), exc  # a CORS preflight
        refusal = upgrade_refusal(request, route, route_error)
        if route is None:
            dialect = context.dialect_for_path(request.path)
        else:
            dialect = route.dialect or context.dialect
        exchange = self.exchange = Exchange(self, request, dialect, context.cors)
        reservation = context.admission.reservation()
        try:
            request.body = await read_body(
                self.conn, self._next_event, self.config, request, reservation
            )
            if refusal is not None:
                raise refusal
            if route is None:
                assert route_error is not None
                raise route_error
            if request.body:
                reservation.grow_to(estimate_memory(request.body), body_read=True)
            if route.websocket:  # the handler may take the connection over (websocket.py)
                trailing = self.conn.trailing_data[0]
                drain = context.drain_started
                exchange.upgrade = WebSocketUpgrade(self.stream, trailing, exchange, drain)
                await self._run_handler(route.handler, exchange)
            elif route.watch_disconnect:
                await self._run_watched(route.handler, exchange)
            else:
                await self._run_handler(route.handler, exchange)
        finally:
            reservation.release()

    async def _run_handler(self, handler: Handler, exchange: Exchange) -> None:
        try:
            await handler(exchange)
        except GatewayError as exc:
            await self._respond_error(exc, exchange.request, exchange, exchange.request.started)
        except ClientGone:
            exchange.client_gone = True
            raise
        except Exception as exc:
            if isinstance(exc, BaseExceptionGroup) and only_client_gone(exc):
                # The handler's own nursery grouped a departed client's send failures.
                exchange.client_gone = True
                raise ClientGone from None
            LOG.exception(
                "handler failed on %s %s",
                exchange.request.method,
                exchange.request.path,
                extra={"request_id": exchange.request.request_id},
            )
            await self._respond_500(exchange)
        if exchange.status is None:
            LOG.error("handler for %s returned without answering", exchange.request.path)
            await self._respond_500(exchange)
        elif self.conn.our_state is h11.SEND_BODY:
            await self.send_events(h11.EndOfMessage())
            exchange.finished = True

    async def _run_watched(self, handler: Handler, exchange: Exchange) -> None:
        """Run ``handler`` with a watchdog that cancels it when the client leaves."""
        gone = False
        handler_gone: ClientGone | None = None
        async with trio.open_nursery() as nursery:
            request_scope = trio.CancelScope()

            async def watchdog() -> None:
                nonlocal gone
                gone = await self._watch.wait_gone(exchange)
                request_scope.cancel()

            nursery.start_soon(watchdog)
            with request_scope:
                try:
                    await self._run_handler(handler, exchange)
                except ClientGone as exc:  # raised outside the nursery: never grouped
                    handler_gone = exc
            nursery.cancel_scope.cancel()
        if handler_gone is not None:
            raise handler_gone
        if gone:
            exchange.client_gone = True
            raise ClientGone

    # -- errors ----------------------------------------------------------------------------

    async def _respond_error(
        self,
        exc: GatewayError | h11.RemoteProtocolError | trio.TooSlowError,
        request: Request | None,
        exchange: Exchange | None,
        started: float,
    ) -> None:
        """Answer ``exc`` (refusals.py words it) if no response has begun."""
        if exchange is not None:
            dialect = exchange.dialect
        else:
            dialect = self.context.dialect_for_path(request.path if request else "/")
        status, headers, body = error_reply(exc, dialect, self.config.header_timeout_s)
        if self.conn.our_state not in _RESPONDABLE:
            return
        if exchange is None:
            placeholder = Request.placeholder(started, self.client, accept_request_id(None))
            exchange = Exchange(self, request or placeholder, dialect, self.context.cors)
        if exchange.status is not None:
            return  # a stream is under way: its handler reports in-stream
        await exchange.respond(status, body, headers=headers)
        if request is None:  # no head was read: _one_request has no request to finish
            self._finish(exchange.request, exchange)

    async def _respond_500(self, exchange: Exchange) -> None:
        if exchange.status is not None:
            # The head is out: nothing clean can follow. Cut the connection so the
            # client sees a truncated body rather than a silently complete one.
            raise ClientGone
        if self.conn.our_state not in _RESPONDABLE:
            return
        status, headers, body = fault_reply(exchange.request.request_id, exchange.dialect)
        await exchange.respond(status, body, headers=headers or None)

    def _finish(self, request: Request, exchange: Exchange | None) -> None:
        """The request is over: its access line, then the observer."""
        record = HttpRecord.of(request, exchange)
        self.exchange = None  # its bodies are not held while the connection idles
        log_access(record)
        observer = self.context.observer
        if exchange is not None and observer is not None:
            observer(record)

    async def _close(self) -> None:
        try:
            with trio.move_on_after(CLOSE_DRAIN_S, shield=True):
                done = self.conn.our_state is h11.MUST_CLOSE or self.conn.our_state is h11.DONE
                if done and isinstance(self.stream, trio.abc.HalfCloseableStream):
                    await self.stream.send_eof()
                    # Read what the client still sends so the kernel does not answer it
                    # with a reset that could discard our last response on its side.
                    while await self.stream.receive_some(READ_SIZE):
                        pass
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            await trio.aclose_forcefully(self.stream)


_TLS_HANDSHAKE_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError)


async def handle_connection(context: ServerContext, stream: trio.abc.Stream) -> None:
    """Serve one accepted connection until it closes."""
    client = peer_name(stream)
    if isinstance(stream, trio.SSLStream):
        try:
            with trio.fail_after(context.settings.header_timeout_s):
                await stream.do_handshake()
        except (*_TLS_HANDSHAKE_ERRORS, trio.TooSlowError) as exc:
            LOG.debug("TLS handshake with %s failed: %r", client, exc)
            await trio.aclose_forcefully(stream)
            return
    await Connection(context, stream, client).run()
