"""Raw HTTP/1.1 clients for the benchmarks, on 127.0.0.1 only.

- :class:`SyncClient`: one blocking keep-alive connection, one request at a time; what
  the sequential (concurrency 1) latency rounds use, so the client adds the same small
  cost to the direct and the gateway figures.
- :class:`ClientConnection`: an ``asyncio.Protocol`` with a small response parser (sized
  and chunked bodies) that counts SSE events (blank lines) as they arrive; our load
  generator (rig/load.py) runs on it. On a 2-core machine the client shares the CPUs
  with the servers it measures, so it is kept lean: no h11, no httpx.

Requests are prebuilt bytes (:func:`raw_request`), sent as they are on every turn.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rig.procs import HOST

RECV = 256 * 1024


def raw_request(
    port: int, path: str, body: bytes, headers: dict[str, str] | None = None, method: str = "POST"
) -> bytes:
    """An HTTP/1.1 request as bytes, keep-alive, JSON body."""
    lines = [f"{method} {path} HTTP/1.1", f"host: {HOST}:{port}"]
    if body or method == "POST":
        lines += ["content-type: application/json", f"content-length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def parse_head(head: bytes) -> tuple[int, dict[bytes, bytes]]:
    """Status and lower-cased headers of a response head (without its blank line)."""
    lines = head.split(b"\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split(b" ", 2)[1]), headers


class SyncClient:
    """One keep-alive connection; :meth:`request` returns status, headers, body and seconds."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def _recv(self, buf: bytes) -> bytes:
        if not (got := self.sock.recv(RECV)):
            raise ConnectionError("the server closed the connection")
        return buf + got

    def request(self, data: bytes) -> tuple[int, dict[bytes, bytes], bytes, float]:
        started = time.perf_counter()
        self.sock.sendall(data)
        buf = self.buf
        while (end := buf.find(b"\r\n\r\n")) < 0:
            buf = self._recv(buf)
        status, headers = parse_head(buf[:end])
        if b"content-length" not in headers:
            raise ConnectionError("SyncClient reads sized responses only")
        total = end + 4 + int(headers[b"content-length"])
        while len(buf) < total:
            buf = self._recv(buf)
        elapsed = time.perf_counter() - started
        body, self.buf = buf[end + 4 : total], buf[total:]
        return status, headers, body, elapsed


@dataclass
class Response:
    status: int = 0
    headers: dict[bytes, bytes] = field(default_factory=dict)
    events: int = 0
    body_bytes: int = 0
    started: float = 0.0
    finished: float = 0.0


_HEAD, _SIZED, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_CRLF, _DONE = range(6)


class ClientConnection(asyncio.Protocol):
    """A keep-alive client connection; :meth:`send` one request, await its :class:`Response`.

    Events are counted in the decoded body as blank lines (``\\n\\n``; Gemini's
    ``\\r\\n\\r\\n`` too), across reads. ``on_event`` is called with the running count
    whenever it grows.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.state = _DONE
        self.remaining = 0
        self.resp = Response()
        self.future: asyncio.Future[Response] | None = None
        self.last = b""
        self.on_event: Callable[[int], None] | None = None
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @classmethod
    async def open(cls, port: int) -> ClientConnection:
        _transport, proto = await asyncio.get_running_loop().create_connection(cls, HOST, port)
        return proto

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if (sock := transport.get_extra_info("socket")) is not None:
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

    def send(self, data: bytes) -> asyncio.Future[Response]:
        if self.transport is None or self.transport.is_closing():
            raise ConnectionError("the connection is closed")
        if self.state != _DONE:
            raise RuntimeError("one request at a time")
        self.future = asyncio.get_running_loop().create_future()
        self.resp = Response(started=time.perf_counter())
        self.state, self.last = _HEAD, b""
        self.transport.write(data)
        if self.buf:
            self._parse()
        return self.future

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _data(self, piece: bytes) -> None:
        resp = self.resp
        resp.body_bytes += len(piece)
        # Blank lines, counted in the last two bytes of the previous piece plus this one,
        # less those the previous piece already counted (one split across two reads).
        both = self.last + piece
        found = both.count(b"\n\n") + both.count(b"\n\r\n") - self.last.count(b"\n\n")
        self.last = piece[-2:]
        if found:
            resp.events += found
            if self.on_event is not None:
                self.on_event(resp.events)

    def _parse(self) -> None:
        buf, pos, n = self.buf, 0, len(self.buf)
        while True:
            state = self.state
            if state == _HEAD:
                if (end := buf.find(b"\r\n\r\n", pos)) < 0:
                    break
                self.resp.status, self.resp.headers = parse_head(bytes(buf[pos:end]))
                pos = end + 4
                if 100 <= self.resp.status < 200:
                    continue
                if self.resp.headers.get(b"transfer-encoding", b"").lower() == b"chunked":
                    self.state = _CHUNK_SIZE
                else:
                    self.remaining = int(self.resp.headers.get(b"content-length", b"0"))
                    self.state = _SIZED
            elif state in (_SIZED, _CHUNK_DATA):
                if take := min(self.remaining, n - pos):
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
                if (nl := buf.find(b"\r\n", pos)) < 0:
                    break
                size = int(bytes(buf[pos:nl]).split(b";")[0], 16)
                if size == 0:
                    if n - (nl + 2) < 2:  # wait for the empty trailer line
                        break
                    pos = nl + 4
                    self._complete()
                    break
                pos, self.remaining, self.state = nl + 2, size, _CHUNK_DATA
            else:
                break
        del buf[:pos]

    def _complete(self) -> None:
        self.state = _DONE
        self.resp.finished = time.perf_counter()
        if self.future is not None and not self.future.done():
            self.future.set_result(self.resp)
