"""Benchmark clients for scripts/bench.py ``proxy`` and ``convert`` (loopback only).

- :class:`SyncClient`: one blocking keep-alive connection, one request at a
  time; what the sequential (concurrency 1) latency rounds use, so the client
  adds the same small cost to the direct and the gateway figures.
- :func:`run_requests`: N keep-alive connections sending back to back for a
  fixed time (the fallback when wrk is missing; it also reads response
  headers such as ``x-gateway-overhead-ms``).
- :func:`run_streams`: N connections each running streamed requests back to
  back; counts SSE events (blank-line terminated) as they arrive.
- :func:`hold_streams`: opens N streams at once, waits until every one has
  its first event, keeps reading them while ``during()`` runs, then closes them.
- :func:`cancel_trials`: opens a stream, reads a few events, closes the
  connection and notes when (``time.monotonic()``, comparable with the mock
  upstream's record of when its socket saw EOF).

The asyncio clients share :class:`ClientConnection`, an ``asyncio.Protocol``
with a small HTTP/1.1 response parser (sized and chunked bodies): on this
2-core machine the client shares the CPUs with the servers it measures, so it
is kept lean.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ClientConnection",
    "StreamLoad",
    "SyncClient",
    "cancel_trials",
    "hold_streams",
    "percentile",
    "raw_request",
    "run_requests",
    "run_streams",
]

HOST = "127.0.0.1"
RECV = 256 * 1024
#: Bounds on what one run may do, whatever the options say.
MAX_CONNECTIONS = 2000
MAX_REQUESTS = 5_000_000


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile of ``values`` (need not be sorted); NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered)) - 1))
    return ordered[rank]


def raw_request(
    port: int, path: str, body: bytes, headers: dict[str, str] | None = None, method: str = "POST"
) -> bytes:
    """An HTTP/1.1 request as bytes, keep-alive, JSON body."""
    lines = [f"{method} {path} HTTP/1.1", f"host: {HOST}:{port}"]
    if body or method == "POST":
        lines += ["content-type: application/json", f"content-length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# -- blocking, one request at a time --------------------------------------------------------


class SyncClient:
    """One keep-alive connection; :meth:`request` returns status, headers, body and seconds."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.create_connection((HOST, port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def request(self, data: bytes) -> tuple[int, dict[bytes, bytes], bytes, float]:
        started = time.perf_counter()
        self.sock.sendall(data)
        buf = self.buf
        while (end := buf.find(b"\r\n\r\n")) < 0:
            got = self.sock.recv(RECV)
            if not got:
                raise ConnectionError("the server closed the connection")
            buf += got
        head = buf[:end].split(b"\r\n")
        status = int(head[0].split(b" ", 2)[1])
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if b"content-length" not in headers:
            raise ConnectionError("SyncClient reads sized responses only")
        total = end + 4 + int(headers[b"content-length"])
        while len(buf) < total:
            got = self.sock.recv(RECV)
            if not got:
                raise ConnectionError("the server closed the connection mid-body")
            buf += got
        elapsed = time.perf_counter() - started
        body, self.buf = buf[end + 4 : total], buf[total:]
        return status, headers, body, elapsed


# -- asyncio: the response parser ----------------------------------------------------------


@dataclass
class Response:
    status: int = 0
    headers: dict[bytes, bytes] = field(default_factory=dict)
    events: int = 0
    body_bytes: int = 0
    body: bytes = b""
    started: float = 0.0
    finished: float = 0.0


_HEAD, _SIZED, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_CRLF, _DONE = range(6)


class ClientConnection(asyncio.Protocol):
    """A keep-alive client connection; :meth:`send` one request, await its :class:`Response`.

    Events are counted in the decoded body as blank lines (``\\n\\n``; Gemini's
    ``\\r\\n\\r\\n`` too), across reads. ``on_event`` is called with the running
    count whenever it grows.
    """

    def __init__(self, keep_body: bool = False) -> None:
        self.keep_body = keep_body
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.state = _DONE
        self.remaining = 0
        self.resp = Response()
        self.future: asyncio.Future[Response] | None = None
        self.last = b""
        self.body_parts: list[bytes] = []
        self.on_event: Callable[[int], None] | None = None
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @classmethod
    async def open(cls, port: int, keep_body: bool = False) -> ClientConnection:
        loop = asyncio.get_running_loop()
        _transport, proto = await loop.create_connection(lambda: cls(keep_body), HOST, port)
        return proto

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.state != _DONE:
            self._parse()

    def eof_received(self) -> bool:
        self._fail(ConnectionError("the server closed the connection"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionError(f"connection lost: {exc}"))
        if not self.lost.done():
            self.lost.set_result(None)

    def _fail(self, exc: Exception) -> None:
        if self.future is not None and not self.future.done():
            self.future.set_exception(exc)

    # requests

    def send(self, data: bytes) -> asyncio.Future[Response]:
        if self.transport is None or self.transport.is_closing():
            raise ConnectionError("the connection is closed")
        if self.state != _DONE:
            raise RuntimeError("one request at a time")
        self.future = asyncio.get_running_loop().create_future()
        self.resp = Response(started=time.perf_counter())
        self.state = _HEAD
        self.last = b""
        self.body_parts = []
        self.transport.write(data)
        if self.buf:
            self._parse()
        return self.future

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    # parsing

    def _data(self, piece: bytes) -> None:
        resp = self.resp
        resp.body_bytes += len(piece)
        if self.keep_body:
            self.body_parts.append(piece)
        # Blank lines, counted in the last two bytes of the previous piece plus this one,
        # less those the previous piece already counted (one split across two reads).
        both = self.last + piece
        found = both.count(b"\n\n") + both.count(b"\n\r\n")
        if self.last:
            found -= self.last.count(b"\n\n")
        self.last = piece[-2:]
        if found:
            resp.events += found
            if self.on_event is not None:
                self.on_event(resp.events)

    def _parse(self) -> None:
        buf = self.buf
        pos = 0
        n = len(buf)
        while True:
            state = self.state
            if state == _HEAD:
                end = buf.find(b"\r\n\r\n", pos)
                if end < 0:
                    break
                head = bytes(buf[pos:end]).split(b"\r\n")
                pos = end + 4
                resp = self.resp
                resp.status = int(head[0].split(b" ", 2)[1])
                for line in head[1:]:
                    name, _, value = line.partition(b":")
                    resp.headers[name.strip().lower()] = value.strip()
                if 100 <= resp.status < 200:
                    resp.headers = {}
                    continue
                if resp.headers.get(b"transfer-encoding", b"").lower() == b"chunked":
                    self.state = _CHUNK_SIZE
                else:
                    self.remaining = int(resp.headers.get(b"content-length", b"0"))
                    self.state = _SIZED
            elif state in (_SIZED, _CHUNK_DATA):
                take = min(self.remaining, n - pos)
                if take:
                    self._data(bytes(buf[pos : pos + take]))
                    pos += take
                    self.remaining -= take
                if self.remaining:
                    break
                if state == _SIZED:
                    self._complete()
                    break
                self.state = _CHUNK_CRLF
            elif state == _CHUNK_CRLF:
                if n - pos < 2:
                    break
                pos += 2
                self.state = _CHUNK_SIZE
            elif state == _CHUNK_SIZE:
                nl = buf.find(b"\r\n", pos)
                if nl < 0:
                    break
                size = int(bytes(buf[pos:nl]).split(b";")[0], 16)
                if size == 0:
                    if n - (nl + 2) < 2:  # wait for the empty trailer line
                        break
                    pos = nl + 4
                    self._complete()
                    break
                pos = nl + 2
                self.remaining = size
                self.state = _CHUNK_DATA
            else:
                break
        del buf[:pos]

    def _complete(self) -> None:
        self.state = _DONE
        resp = self.resp
        resp.finished = time.perf_counter()
        if self.keep_body:
            resp.body = b"".join(self.body_parts)
        if self.future is not None and not self.future.done():
            self.future.set_result(resp)


# -- asyncio: load --------------------------------------------------------------------------


@dataclass
class RequestLoad:
    requests: int = 0
    errors: int = 0
    non_2xx: int = 0
    duration_s: float = 0.0
    latencies: list[float] = field(default_factory=list)
    header_values: list[float] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0


async def _requests(
    port: int, data: bytes | list[bytes], connections: int, duration_s: float, header: bytes | None
) -> RequestLoad:
    result = RequestLoad()
    deadline = time.perf_counter() + duration_s
    many = data if isinstance(data, list) else [data]

    async def worker() -> None:
        conn: ClientConnection | None = None
        while time.perf_counter() < deadline and result.requests < MAX_REQUESTS:
            try:
                if conn is None:
                    conn = await ClientConnection.open(port)
                resp = await conn.send(many[result.requests % len(many)])
            except (OSError, ConnectionError):
                result.errors += 1
                conn = None
                await asyncio.sleep(0.01)
                continue
            if time.perf_counter() > deadline:
                break
            result.requests += 1
            result.latencies.append(resp.finished - resp.started)
            if not 200 <= resp.status < 300:
                result.non_2xx += 1
            if header is not None and header in resp.headers:
                result.header_values.append(float(resp.headers[header]))
        if conn is not None:
            conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(connections, MAX_CONNECTIONS))))
    result.duration_s = min(time.perf_counter(), deadline) - started
    return result


def run_requests(
    port: int,
    data: bytes | list[bytes],
    connections: int,
    duration_s: float,
    header: bytes | None = None,
) -> RequestLoad:
    """``connections`` workers sending ``data`` back to back for ``duration_s``.

    ``data`` may be a list of requests: they are sent in turn.
    """
    return asyncio.run(_requests(port, data, connections, duration_s, header))


@dataclass
class StreamLoad:
    streams: int = 0
    events: int = 0
    errors: int = 0
    non_2xx: int = 0
    duration_s: float = 0.0
    first_event_ms: list[float] = field(default_factory=list)
    events_per_stream: list[int] = field(default_factory=list)

    @property
    def events_per_s(self) -> float:
        return self.events / self.duration_s if self.duration_s else 0.0

    @property
    def streams_per_s(self) -> float:
        return self.streams / self.duration_s if self.duration_s else 0.0


async def _streams(
    port: int, data: bytes, connections: int, duration_s: float, expect_events: int
) -> StreamLoad:
    result = StreamLoad()
    counted = [0]  # events received before the deadline, partial streams included
    loop = asyncio.get_running_loop()
    deadline = loop.time() + duration_s
    open_conns: list[ClientConnection] = []

    async def worker() -> None:
        while loop.time() < deadline:
            try:
                conn = await ClientConnection.open(port)
            except OSError:
                result.errors += 1
                await asyncio.sleep(0.01)
                continue
            open_conns.append(conn)
            seen = [0]
            first: list[float] = []

            def on_event(total: int, seen: list[int] = seen, first: list[float] = first) -> None:
                if not first:
                    first.append(time.perf_counter())
                counted[0] += total - seen[0]
                seen[0] = total

            conn.on_event = on_event
            try:
                while loop.time() < deadline:
                    seen[0] = 0
                    first.clear()
                    resp = await conn.send(data)
                    if not 200 <= resp.status < 300:
                        result.non_2xx += 1
                        continue
                    result.streams += 1
                    result.events_per_stream.append(resp.events)
                    if first:
                        result.first_event_ms.append((first[0] - resp.started) * 1000)
                    if expect_events and resp.events < expect_events:
                        result.errors += 1  # a stream cut short
            except (OSError, ConnectionError):
                result.errors += 1
            finally:
                conn.close()
                open_conns.remove(conn)

    started = loop.time()
    tasks = [loop.create_task(worker()) for _ in range(min(connections, MAX_CONNECTIONS))]
    await asyncio.sleep(duration_s)
    result.events = counted[0]
    result.duration_s = loop.time() - started
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for conn in list(open_conns):
        conn.close()
    await asyncio.sleep(0.05)
    return result


def run_streams(
    port: int, data: bytes, connections: int, duration_s: float, expect_events: int = 0
) -> StreamLoad:
    """``connections`` workers running streams of ``data`` back to back; events counted."""
    return asyncio.run(_streams(port, data, connections, duration_s, expect_events))


# -- asyncio: many open streams -------------------------------------------------------------


@dataclass
class HoldResult:
    opened: int = 0
    failed: int = 0
    events: int = 0
    open_s: float = 0.0
    samples: list[Any] = field(default_factory=list)


async def _hold(
    port: int,
    make_request: Callable[[int], bytes],
    count: int,
    open_timeout_s: float,
    sample: Callable[[], Any],
    hold_s: float,
    sample_every_s: float,
    batch: int,
) -> HoldResult:
    result = HoldResult()
    conns: list[ClientConnection] = []
    firsts: list[asyncio.Future[None]] = []
    loop = asyncio.get_running_loop()
    events = [0]
    started = loop.time()

    def watcher(fut: asyncio.Future[None], last: list[int]) -> Callable[[int], None]:
        def on_event(total: int) -> None:
            events[0] += total - last[0]
            last[0] = total
            if not fut.done():
                fut.set_result(None)

        return on_event

    try:
        for i in range(min(count, MAX_CONNECTIONS)):
            try:
                conn = await ClientConnection.open(port)
            except OSError:
                result.failed += 1
                continue
            fut: asyncio.Future[None] = loop.create_future()
            conn.on_event = watcher(fut, [0])
            conn.send(make_request(i)).add_done_callback(lambda f: f.exception())
            conns.append(conn)
            firsts.append(fut)
            if (i + 1) % batch == 0:
                await asyncio.sleep(0.01)  # let the servers accept a batch at a time
        done, pending = await asyncio.wait(firsts, timeout=open_timeout_s) if firsts else ((), ())
        result.opened = len(done)
        result.failed += len(pending)
        result.open_s = loop.time() - started
        until = loop.time() + hold_s
        while True:
            result.samples.append(sample())
            if loop.time() >= until:
                break
            await asyncio.sleep(min(sample_every_s, max(0.0, until - loop.time())))
        result.events = events[0]
    finally:
        for conn in conns:
            conn.close()
        await asyncio.sleep(0.05)
    return result


def hold_streams(
    port: int,
    make_request: Callable[[int], bytes],
    count: int,
    *,
    sample: Callable[[], Any],
    hold_s: float,
    open_timeout_s: float = 30.0,
    sample_every_s: float = 0.25,
    batch: int = 50,
) -> HoldResult:
    """Open ``count`` streams, wait for each one's first event, sample while holding, close."""
    return asyncio.run(
        _hold(port, make_request, count, open_timeout_s, sample, hold_s, sample_every_s, batch)
    )


# -- asyncio: cancellation ------------------------------------------------------------------


async def _cancel(
    port: int,
    make_request: Callable[[str], bytes],
    ids: list[str],
    after_events: int,
    gap_s: float,
    timeout_s: float,
) -> dict[str, float]:
    closed: dict[str, float] = {}
    loop = asyncio.get_running_loop()
    for rid in ids:
        conn = await ClientConnection.open(port)
        reached: asyncio.Future[None] = loop.create_future()

        def on_event(total: int, reached: asyncio.Future[None] = reached) -> None:
            if total >= after_events and not reached.done():
                reached.set_result(None)

        conn.on_event = on_event
        conn.send(make_request(rid)).add_done_callback(lambda f: f.exception())
        try:
            await asyncio.wait_for(reached, timeout_s)
        except asyncio.TimeoutError:
            conn.close()
            continue
        closed[rid] = time.monotonic()
        conn.close()  # FIN (or RST: unread bytes may be waiting)
        await asyncio.wait_for(conn.lost, timeout_s)
        await asyncio.sleep(gap_s)
    return closed


def cancel_trials(
    port: int,
    make_request: Callable[[str], bytes],
    ids: list[str],
    *,
    after_events: int = 3,
    gap_s: float = 0.02,
    timeout_s: float = 10.0,
) -> dict[str, float]:
    """Per id: stream, read ``after_events`` events, close; ``{id: monotonic close time}``."""
    return asyncio.run(_cancel(port, make_request, ids, after_events, gap_s, timeout_s))
