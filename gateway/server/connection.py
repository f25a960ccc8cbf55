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
3. *Body*: a declared ``content-length`` over ``max_body_bytes`` is a 413
   before a byte of it is read (no ``100 Continue`` is sent); a chunked body
   is counted as it arrives. Each pause is bounded by ``body_timeout_s`` and
   the whole body by ``body_total_timeout_s`` (408 and close: a byte dripped
   every 29 s would otherwise hold the slot forever). The body is read whole:
   every gateway endpoint needs all of it. The request reserves its memory in
   the server's admission counter (admission.py) as the body arrives, then
   its estimated decoded size; past ``max_inflight_bytes``: 503.
4. *Dispatch*: the router picks a handler (HEAD runs the GET route's and
   the :class:`Exchange` sends the head only). Handlers that wait on
   providers run with a watchdog task, the only reader of the socket while
   the handler runs: a reset cancels the handler's scope (client gone), EOF
   is probed first (a half-closed client still reads; see
   :meth:`Connection._watch_client`), other bytes are pipelined requests and
   stay buffered in h11.
5. *Respond*: the handler answers through its :class:`Exchange`, whole or as a
   chunked stream; ``send_all`` waiting on a slow reader is the backpressure.
   A failed send is :class:`ClientGone`, also when a handler's nursery
   groups it with other errors of the same departure: never a traceback.
6. After the response: close if h11 says ``MUST_CLOSE`` or the server drains,
   else ``start_next_cycle()`` and back to 1.

Errors map to responses in one place (:meth:`Connection._respond_error`):
h11 protocol errors keep their status hint and close; our ``GatewayError``
keeps its status (closing only for 408 and 413); anything else is a 500
with a generic body, and the traceback goes to the log.
"""

from __future__ import annotations

import logging
import socket as stdlib_socket
import ssl
import sys
import time
from typing import TYPE_CHECKING, Any

import h11
import trio

from gateway.errors import (
    ErrorKind,
    GatewayError,
    MethodNotAllowed,
    PayloadTooLarge,
    RequestTimeout,
    error_body,
    error_response,
)
from gateway.logs import accept_request_id, log_access
from gateway.relay import KEEPALIVE
from gateway.server.jsonscan import DEFAULT_MAX_JSON_DEPTH, estimate_memory
from gateway.server.responses import JSON, REASONS, Headers, dump_json, standard_headers
from gateway.server.routes import format_for_path

if sys.version_info < (3, 11):  # pragma: no cover - exercised on 3.10 only
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    from gateway.server.admission import Reservation
    from gateway.server.listen import Server

__all__ = ["Exchange", "Request", "handle_connection"]

LOG = logging.getLogger("gateway.server")

#: Bytes asked of the socket per read.
READ_SIZE = 64 * 1024
#: How long a closing connection waits for the client to read our last bytes.
CLOSE_DRAIN_S = 0.5
#: After a client's EOF, how often the watchdog looks for a reset (doubling to the max).
#: The reset comes one round trip after the probe: starting at 1 ms keeps cancellation
#: prompt on a LAN or loopback (a client that left is seen within a few ms, as it was
#: when EOF alone meant gone) and costs a half-closed client ~10 wake-ups in all.
HALF_CLOSE_POLL_S = 0.001
HALF_CLOSE_POLL_MAX_S = 1.0
SSE = b"text/event-stream"
_FRAMING_HEADERS = frozenset({b"content-length", b"transfer-encoding"})
_RESPONDABLE = (h11.IDLE, h11.SEND_RESPONSE)


class ClientGone(Exception):
    """The client closed its side while we were still answering."""


_GONE_ERRORS = (ClientGone, trio.BrokenResourceError, trio.ClosedResourceError, trio.Cancelled)


def _only_client_gone(group: BaseExceptionGroup[BaseException]) -> bool:
    """True when every leaf of ``group`` is a departed client (or a cancellation it caused)."""
    rest = group.split(_GONE_ERRORS)[1]
    return rest is None and group.subgroup(ClientGone) is not None


class Request:
    """What a handler sees of one request. The body is read whole before dispatch."""

    __slots__ = (
        "body",
        "client",
        "headers",
        "max_json_depth",
        "method",
        "params",
        "path",
        "query",
        "request_id",
        "started",
        "target",
    )

    def __init__(
        self,
        *,
        method: str,
        target: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        request_id: str,
        client: str,
        started: float,
    ) -> None:
        self.method = method
        self.target = target
        path, _, query = target.partition("?")
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.request_id = request_id
        self.client = client
        self.started = started
        self.params: dict[str, Any] = {}
        self.max_json_depth = DEFAULT_MAX_JSON_DEPTH

    def header(self, name: bytes) -> bytes | None:
        """The first value of header ``name`` (lower case), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


class Exchange:
    """One request and its response, as a handler drives it.

    A handler calls :meth:`respond` once, or :meth:`start` then :meth:`send`
    any number of times (the connection ends the chunked body after the
    handler returns). ``upstream_wait_s`` is time spent waiting on providers;
    it is left out of ``x-gateway-overhead-ms``. ``log`` collects fields for
    the access-log line.
    """

    __slots__ = (
        "_conn",
        "bytes_sent",
        "content_type",
        "finished",
        "fmt",
        "head_only",
        "head_s",
        "log",
        "overhead_at_head_s",
        "request",
        "status",
        "upstream_wait_s",
    )

    def __init__(self, conn: Connection, request: Request, fmt: str) -> None:
        self._conn = conn
        self.request = request
        self.fmt = fmt
        self.status: int | None = None
        self.bytes_sent = 0
        self.upstream_wait_s = 0.0
        self.head_s = 0.0  # seconds from the request's start to our response head
        self.overhead_at_head_s = 0.0  # what x-gateway-overhead-ms said
        self.log: dict[str, Any] = {}
        self.head_only = request.method == "HEAD"  # answer with the GET's head, no body
        self.content_type = b""
        self.finished = False  # the whole response went out

    @property
    def started(self) -> bool:
        """True once the status line went out."""
        return self.status is not None

    def _head(
        self, status: int, headers: Headers | None, content_type: bytes, length: int | None
    ) -> h11.Response:
        if self.status is not None:
            raise RuntimeError("this exchange already sent its response head")
        now = time.perf_counter()
        self.head_s = now - self.request.started
        self.overhead_at_head_s = max(self.head_s - self.upstream_wait_s, 0.0)
        all_headers = standard_headers(self.request.request_id, self.overhead_at_head_s)
        all_headers.append((b"content-type", content_type))
        self.content_type = content_type
        if length is not None:
            all_headers.append((b"content-length", b"%d" % length))
        if headers:
            all_headers.extend(headers)
        if self._conn.server.draining:
            all_headers.append((b"connection", b"close"))
        response = h11.Response(
            status_code=status, headers=all_headers, reason=REASONS.get(status, b"")
        )
        self.status = status
        return response

    async def respond(
        self,
        status: int,
        body: bytes,
        *,
        content_type: bytes = JSON,
        headers: Headers | None = None,
    ) -> None:
        """Send a whole response with a ``content-length``."""
        head = self._head(status, headers, content_type, len(body))
        if self.head_only:
            await self._conn.send_events(head, h11.EndOfMessage())
        else:
            self.bytes_sent += len(body)
            await self._conn.send_events(head, h11.Data(data=body), h11.EndOfMessage())
        self.finished = True

    async def respond_json(self, status: int, obj: Any, *, headers: Headers | None = None) -> None:
        await self.respond(status, dump_json(obj), headers=headers)

    async def start(
        self, status: int, *, content_type: bytes, headers: Headers | None = None
    ) -> None:
        """Send the head of a streamed (chunked) response."""
        await self._conn.send_events(self._head(status, headers, content_type, None))

    async def send(self, data: bytes) -> None:
        """Send one piece of a streamed body; waits while the client reads slowly."""
        if data and not self.head_only:
            self.bytes_sent += len(data)
            await self._conn.send_events(h11.Data(data=data))


class Connection:
    """The state of one client connection. See the module docstring."""

    def __init__(self, server: Server, stream: trio.abc.Stream, client: str) -> None:
        self.server = server
        self.stream = stream
        self.client = client
        self.config = server.config.server
        self.conn = h11.Connection(
            h11.SERVER, max_incomplete_event_size=self.config.max_header_bytes
        )
        self.idle_scope: trio.CancelScope | None = None
        self.served = 0  # requests answered: idle with served > 0 is an idle keep-alive
        self.exchange: Exchange | None = None
        self._sending = False  # a send_events is writing
        self._probing: trio.Event | None = None  # the watchdog's probe is writing

    # -- I/O helpers -----------------------------------------------------------------------

    async def send_events(self, *events: Any) -> None:
        """h11-encode ``events`` and write them in one ``send_all``."""
        while self._probing is not None:  # the watchdog's probe is going out first
            await self._probing.wait()
        self._sending = True
        try:
            await self._send(*events)
        finally:
            self._sending = False

    async def _send(self, *events: Any) -> None:
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

    async def _receive(self) -> None:
        try:
            data = await self.stream.receive_some(READ_SIZE)
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
                if self.conn.our_state is h11.MUST_CLOSE or self.server.draining:
                    return
                try:
                    self.conn.start_next_cycle()
                except h11.ProtocolError:
                    return
        except (trio.BrokenResourceError, trio.ClosedResourceError, ClientGone):
            pass
        except BaseExceptionGroup as group:
            # Nurseries (a handler's, the watchdog's) group a departed client's errors;
            # a group of nothing else is the same quiet ending, never a traceback.
            if not _only_client_gone(group):
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
        if self.server.draining:
            return False
        timeout = self.config.header_timeout_s if first else self.config.keep_alive_s
        with trio.move_on_after(timeout) as scope:
            self.idle_scope = scope
            self.server.idle[self] = None
            if self.served and self.server.at_cap:
                self.server.notify_room()  # reclaimable now
            try:
                await self._receive()
            finally:
                self.server.idle.pop(self, None)
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
                self._log(request, self.exchange, started)

    def _make_request(self, event: h11.Request, started: float) -> Request:
        # h11 caps only a head that is still incomplete; one that arrived whole in a
        # single read is measured here (request line + header lines, as on the wire).
        size = len(event.method) + len(event.target) + 12
        rid = None
        for key, value in event.headers:
            size += len(key) + len(value) + 4
            if key == b"x-request-id":
                rid = value
        if size > self.config.max_header_bytes:
            raise h11.RemoteProtocolError("request head too large", error_status_hint=431)
        framing = {key for key, _ in event.headers if key in _FRAMING_HEADERS}
        if len(framing) > 1:
            # RFC 9112 section 6.1: a request with both is a smuggling attempt or a
            # broken proxy; which length is right cannot be known. 400 and close.
            raise h11.RemoteProtocolError(
                "the request has both Content-Length and Transfer-Encoding; send one",
                error_status_hint=400,
            )
        if event.http_version not in (b"1.1", b"1.0"):
            raise h11.RemoteProtocolError(
                f"HTTP/{event.http_version.decode()} is not supported; use HTTP/1.1",
                error_status_hint=505,
            )
        request = Request(
            method=event.method.decode("ascii"),
            target=event.target.decode("latin-1"),
            headers=event.headers,  # type: ignore[arg-type]
            body=b"",
            request_id=accept_request_id(rid),
            client=self.client,
            started=started,
        )
        request.max_json_depth = self.config.max_json_depth
        return request

    async def _read_body(self, request: Request, reservation: Reservation) -> bytes:
        """Phase 3: the whole body, under the size cap, the pause and total timeouts.

        ``reservation`` grows with the body (the declared length up front), so a
        body that would take the in-flight total past its limit is refused early.
        """
        limit = self.config.max_body_bytes
        length = request.header(b"content-length")
        if length is not None and int(length) > limit:
            raise PayloadTooLarge(
                f"The request body is {int(length)} bytes; this gateway accepts at most {limit}."
            )
        if length is not None:
            reservation.grow_to(int(length), body_read=False)
        chunks: list[bytes] = []
        total = 0
        deadline = trio.current_time() + self.config.body_total_timeout_s
        while True:
            # The timeout scope costs microseconds; enter it only when we must wait.
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                pause_end = trio.current_time() + self.config.body_timeout_s
                try:
                    with trio.fail_at(min(pause_end, deadline)):
                        event = await self._next_event()
                except trio.TooSlowError:
                    if pause_end < deadline:
                        message = (
                            f"The request body paused for more than "
                            f"{self.config.body_timeout_s:g} s."
                        )
                    else:
                        message = (
                            f"The request body took more than "
                            f"{self.config.body_total_timeout_s:g} s to arrive."
                        )
                    raise RequestTimeout(message) from None
            if type(event) is h11.Data:
                total += len(event.data)
                if total > limit:
                    raise PayloadTooLarge(
                        f"The request body is over {limit} bytes, the most this gateway accepts."
                    )
                reservation.grow_to(total, body_read=False)
                chunks.append(event.data)
            elif type(event) is h11.EndOfMessage:
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
            else:  # ConnectionClosed: the client left mid-body
                raise ClientGone

    async def _dispatch(self, request: Request) -> None:
        route_error: GatewayError | None = None
        try:
            route, request.params = self.server.router.match(request.method, request.path)
        except GatewayError as exc:
            # Read the body all the same, so that the connection stays usable after a 404.
            route, route_error = None, exc
        fmt = route.fmt if route else format_for_path(request.path)
        exchange = self.exchange = Exchange(self, request, fmt)
        reservation = self.server.admission.reservation()
        try:
            request.body = await self._read_body(request, reservation)
            if route is None:
                assert route_error is not None
                raise route_error
            if request.body:
                reservation.grow_to(estimate_memory(request.body), body_read=True)
            if route.watch_disconnect:
                await self._run_watched(route.handler, exchange)
            else:
                await self._run_handler(route.handler, exchange)
        finally:
            reservation.release()

    async def _run_handler(self, handler: Any, exchange: Exchange) -> None:
        try:
            await handler(exchange)
        except GatewayError as exc:
            await self._respond_error(exc, exchange.request, exchange, exchange.request.started)
        except ClientGone:
            exchange.log["client_gone"] = True
            raise
        except Exception as exc:
            if isinstance(exc, BaseExceptionGroup) and _only_client_gone(exc):
                # The handler's own nursery grouped a departed client's send failures.
                exchange.log["client_gone"] = True
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

    async def _run_watched(self, handler: Any, exchange: Exchange) -> None:
        """Run ``handler`` with a watchdog that cancels it when the client leaves."""
        gone = False
        handler_gone: ClientGone | None = None
        async with trio.open_nursery() as nursery:
            request_scope = trio.CancelScope()

            async def watchdog() -> None:
                nonlocal gone
                gone = await self._watch_client(exchange)
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
            exchange.log["client_gone"] = True
            raise ClientGone

    async def _watch_client(self, exchange: Exchange) -> bool:
        """The only reader while a handler runs. True when the client went away.

        End of file is not departure by itself: a client may half-close
        (``shutdown(SHUT_WR)``) after its request and still read the answer.
        A client that closed for good answers anything we send with a reset, so
        at EOF the watchdog sends one probe the client skips: an interim
        ``100 Continue`` before the response head (HTTP/1.1 clients must accept
        and skip a 1xx, RFC 9110 section 15.2; httpx, curl, urllib3, Node and
        Go do), the format's SSE keep-alive inside a stream. Then it polls the
        socket: a reset or a failed send means gone, EOF again means
        half-closed and still reading. HTTP/1.0 clients may not get a 1xx: for
        them EOF means gone. Real clients (curl, the SDKs) close for good when
        they give up, so cancellation stays prompt: one round trip.
        """
        while True:
            if len(self.conn.trailing_data[0]) > self.config.max_header_bytes:
                await trio.sleep_forever()  # enough pipelined bytes held; stop reading
            try:
                data = await self.stream.receive_some(READ_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return True
            if not data:
                if await self._half_closed_or_gone(exchange):
                    return True
                await trio.sleep_forever()  # half-closed: the handler's sends will tell
            self.conn.receive_data(data)

    async def _half_closed_or_gone(self, exchange: Exchange) -> bool:
        self.conn.receive_data(b"")  # h11 learns of the EOF: no request can follow
        if self.conn.their_http_version == b"1.0":
            return True
        probe = self._probe_event(exchange)
        if probe is not None:
            try:
                await self._send_probe(probe)
            except ClientGone:
                return True
        sock = _socket_of(self.stream)
        if sock is None:
            return probe is None  # no socket to watch: only the probe could tell
        poll_s = HALF_CLOSE_POLL_S
        while True:
            await trio.sleep(poll_s)
            poll_s = min(poll_s * 2, HALF_CLOSE_POLL_MAX_S)
            # After EOF, recv() reports EOF again even once a reset came; the reset
            # shows as the socket's pending error (EPIPE or ECONNRESET).
            try:
                if sock.getsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_ERROR):
                    return True
            except OSError:
                return True

    def _probe_event(self, exchange: Exchange) -> Any:
        """Bytes the client will skip: a 1xx before the head, an SSE keep-alive in a stream."""
        state = self.conn.our_state
        if not exchange.started and state is h11.SEND_RESPONSE:
            return h11.InformationalResponse(status_code=100, headers=[])
        keepalive = KEEPALIVE.get(exchange.fmt)
        sse = exchange.content_type == SSE and not exchange.head_only
        if sse and keepalive and state is h11.SEND_BODY:
            return h11.Data(data=keepalive)
        return None  # a whole response is going out: its own send tells

    async def _send_probe(self, event: Any) -> None:
        if self._sending:
            return  # the handler is writing: its send tells whether the client is there
        done = self._probing = trio.Event()
        try:
            await self._send(event)
        finally:
            self._probing = None
            done.set()

    # -- errors ----------------------------------------------------------------------------

    async def _respond_error(
        self,
        exc: BaseException,
        request: Request | None,
        exchange: Exchange | None,
        started: float,
    ) -> None:
        """The one mapping from an exception to an error response."""
        close = True
        headers: Headers = []
        fmt = exchange.fmt if exchange else format_for_path(request.path if request else "/")
        if isinstance(exc, h11.RemoteProtocolError):
            status = exc.error_status_hint
            body = error_body(fmt, _kind_for(status), status, _protocol_message(exc, status))
        elif isinstance(exc, trio.TooSlowError):
            status, body = error_response(
                fmt,
                RequestTimeout(
                    f"The request head took longer than {self.config.header_timeout_s:g} s."
                ),
            )
        else:
            assert isinstance(exc, GatewayError)
            status, body = error_response(fmt, exc)
            close = exc.closes_connection
            if isinstance(exc, MethodNotAllowed):
                headers.append((b"allow", ", ".join(exc.allowed).encode()))
            if exc.retry_after_s is not None:
                headers.append((b"retry-after", b"%d" % exc.retry_after_s))
        if close:
            headers.append((b"connection", b"close"))
        if self.conn.our_state not in _RESPONDABLE:
            return
        if exchange is None:
            exchange = Exchange(self, request or _placeholder(started, self.client), fmt)
        if exchange.status is not None:
            return  # a stream is under way: its handler reports in-stream
        await exchange.respond(status, dump_json(body), headers=headers)
        if request is None:
            self._log(None, exchange, started)

    async def _respond_500(self, exchange: Exchange) -> None:
        if exchange.status is not None:
            # The head is out: nothing clean can follow. Cut the connection so the
            # client sees a truncated body rather than a silently complete one.
            raise ClientGone
        if self.conn.our_state not in _RESPONDABLE:
            return
        message = (
            "The gateway failed while handling this request; "
            f"the log has the details under request id {exchange.request.request_id}."
        )
        body = error_body(exchange.fmt, _kind_for(500), 500, message)
        await exchange.respond(500, dump_json(body))

    def _log(self, request: Request | None, exchange: Exchange | None, started: float) -> None:
        req = request or (exchange.request if exchange else None)
        log_access(
            request_id=req.request_id if req else "-",
            method=req.method if req else "-",
            target=req.target if req else "-",
            status=(exchange.status if exchange and exchange.status else 499),
            bytes_sent=exchange.bytes_sent if exchange else 0,
            started=started,
            client=self.client,
            **(exchange.log if exchange else {}),
            **(
                {"ttfb_ms": round(exchange.head_s * 1000, 3)}
                if exchange and exchange.status
                else {}
            ),
        )
        if exchange is not None and self.server.observer is not None:
            self.server.observer(exchange)

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


def _placeholder(started: float, client: str) -> Request:
    return Request(
        method="-",
        target="-",
        headers=[],
        body=b"",
        request_id=accept_request_id(None),
        client=client,
        started=started,
    )


def _kind_for(status: int) -> ErrorKind:
    if status == 413:
        return ErrorKind.REQUEST_TOO_LARGE
    if status >= 500:
        return ErrorKind.API_ERROR
    return ErrorKind.INVALID_REQUEST


def _protocol_message(exc: h11.RemoteProtocolError, status: int) -> str:
    if status == 431:
        return "The request head is larger than this gateway accepts; send smaller headers."
    return f"Malformed HTTP request: {exc}."


async def handle_connection(server: Server, stream: trio.abc.Stream) -> None:
    """Serve one accepted connection until it closes."""
    client = _peer(stream)
    if isinstance(stream, trio.SSLStream):
        try:
            with trio.fail_after(server.config.server.header_timeout_s):
                await stream.do_handshake()
        except (*_TLS_HANDSHAKE_ERRORS, trio.TooSlowError) as exc:
            LOG.debug("TLS handshake with %s failed: %r", client, exc)
            await trio.aclose_forcefully(stream)
            return
    await Connection(server, stream, client).run()


def _socket_of(stream: Any) -> Any:
    """The socket under ``stream`` (a trio socket, TLS over one, or None)."""
    return getattr(stream, "socket", None) or getattr(
        getattr(stream, "transport_stream", None), "socket", None
    )


def _peer(stream: Any) -> str:
    sock = _socket_of(stream)
    if sock is None:
        return "-"
    try:
        addr = sock.getpeername()
    except OSError:
        return "-"
    return f"{addr[0]}:{addr[1]}" if isinstance(addr, tuple) else str(addr)
