"""Raw HTTP/1.1 clients sending prebuilt requests to 127.0.0.1: lean, since they share the
2 cores with the servers they measure (no h11, no httpx).

- :class:`SyncClient`: one blocking keep-alive connection, one request at a time: the
  concurrency-1 rounds, adding the same small cost to the direct and gateway figures;
- :class:`ClientConnection`: an ``asyncio.Protocol`` reading sized and chunked responses
  and counting SSE events (blank lines) as they arrive: our load generator's.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rig.procs import HOST

_CHUNK = re.compile(rb"(?:\r\n)?([0-9a-fA-F]+)[^\r\n]*\r\n")  # the previous chunk's CRLF, a size


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
    status, *lines = head.split(b"\r\n")
    pairs = (line.partition(b":") for line in lines)
    return int(status.split(b" ", 2)[1]), {k.strip().lower(): v.strip() for k, _, v in pairs}


class SyncClient:
    """One keep-alive connection; :meth:`request` returns status, headers, body and seconds
    (sized responses only)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def _recv(self, buf: bytes) -> bytes:
        if not (got := self.sock.recv(256 * 1024)):
            raise ConnectionError("the server closed the connection")
        return buf + got

    def request(self, data: bytes) -> tuple[int, dict[bytes, bytes], bytes, float]:
        started = time.perf_counter()
        self.sock.sendall(data)
        buf = self.buf
        while (end := buf.find(b"\r\n\r\n")) < 0:
            buf = self._recv(buf)
        status, headers = parse_head(buf[:end])
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
    started: float = 0.0
    first_event: float = 0.0
    finished: float = 0.0


_HEAD, _BODY, _DONE = range(3)


class ClientConnection(asyncio.Protocol):
    """A keep-alive connection: :meth:`send` one request, await its :class:`Response`.

    Events are counted in the decoded body as blank lines (``\\n\\n``; Gemini's
    ``\\r\\n\\r\\n`` too), across reads; ``on_event`` is told how many more came.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.state, self.chunked, self.remaining, self.last = _DONE, False, 0, b""
        self.resp = Response()
        self.future: asyncio.Future[Response] | None = None
        self.on_event: Callable[[int], None] | None = None
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @classmethod
    async def open(cls, port: int) -> ClientConnection:
        return (await asyncio.get_running_loop().create_connection(cls, HOST, port))[1]

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
        assert self.state == _DONE, "one request at a time"
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
        # Blank lines in the last two bytes of the previous piece plus this one, less those
        # the previous piece already counted (a blank line may be split across two reads).
        both = self.last + piece
        found = both.count(b"\n\n") + both.count(b"\n\r\n") - self.last.count(b"\n\n")
        self.last = piece[-2:]
        if found:
            self.resp.events += found
            self.resp.first_event = self.resp.first_event or time.perf_counter()
            if self.on_event is not None:
                self.on_event(found)

    def _parse(self) -> None:
        buf, pos, resp = self.buf, 0, self.resp
        while self.state != _DONE:
            if self.state == _HEAD:
                if (end := buf.find(b"\r\n\r\n", pos)) < 0:
                    break
                resp.status, resp.headers = parse_head(bytes(buf[pos:end]))
                pos = end + 4
                if resp.status >= 200:  # else an interim 1xx: its head alone
                    self.chunked = resp.headers.get(b"transfer-encoding", b"").lower() == b"chunked"
                    self.remaining = (
                        0 if self.chunked else int(resp.headers.get(b"content-length", 0))
                    )
                    self.state = _BODY
            elif self.remaining:  # a sized body, or a chunk's data
                if not (take := min(self.remaining, len(buf) - pos)):
                    break
                self._data(bytes(buf[pos : pos + take]))
                pos, self.remaining = pos + take, self.remaining - take
            elif not self.chunked:
                self._complete()
            elif (m := _CHUNK.match(buf, pos)) is None:
                break
            elif size := int(m[1], 16):
                pos, self.remaining = m.end(), size
            elif len(buf) >= m.end() + 2:  # the last chunk and its empty trailer line
                pos = m.end() + 2
                self._complete()
            else:
                break
        del buf[:pos]

    def _complete(self) -> None:
        self.state, self.resp.finished = _DONE, time.perf_counter()
        if self.future is not None and not self.future.done():
            self.future.set_result(self.resp)
