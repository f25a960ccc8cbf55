"""A fast mock OpenAI-format provider for the benchmarks (a process of its own).

    PYTHONPATH=scripts python -m rig.mock_upstream --port P [--host 127.0.0.1]

It runs in a process of its own and speaks just enough HTTP/1.1 for the
gateway's upstream client, httpx and our benchmark clients: keep-alive,
``content-length`` request bodies, chunked or sized responses. It is written
on asyncio's ``Protocol`` callbacks with a hand-rolled request parser instead
of trio + h11 because it must cost as little CPU as possible: on a 2-core
machine it shares the cores with the gateway and the load generator, and
"straight to the upstream" figures measure it alone.

``POST .../chat/completions`` (any prefix) answers in the OpenAI wire format:

- ``"stream"`` false or absent: one fixed ~300-byte ``chat.completion`` JSON;
- ``"stream": true``: ``chat.completion.chunk`` SSE events, one write each,
  then ``data: [DONE]``, as a chunked body. By default 200 events (199 content
  deltas of one short word and a last one with ``finish_reason: "stop"``),
  written as fast as the reader takes them, yielding to the event loop after
  each event so that concurrent streams interleave the way token streams do.

The model name the request carries (the gateway passes it through with a
``"*": "*"`` model entry) tunes the stream: ``-e<N>`` sends N events and
``-i<MS>`` waits MS milliseconds before each event, so ``bench-e600-i100`` is
a slow stream of 600 events, one per 100 ms.

Cancellation is recorded: when the connection of a stream still being written
reads EOF, is reset, or a write fails, the time (``time.monotonic()``, the
system-wide CLOCK_MONOTONIC, comparable across processes) goes into a table
under the request's ``x-request-id``. ``GET /_bench/cancels`` returns that
table as JSON (``{id: {"eof_at": t, "events_sent": n}}``) and ``GET
/_bench/stats`` counts requests and streams; ``GET /health`` answers 200.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import sys
import time
from typing import Any

__all__ = ["REPLY", "chunk_events", "main"]

REPLY = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "bench-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello! How can I help you today?"},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 9, "total_tokens": 18},
    },
    separators=(",", ":"),
).encode()

DEFAULT_EVENTS = 200
#: Upper bounds, so a typo in a model name cannot make an endless stream.
MAX_EVENTS = 100_000
MAX_INTERVAL_MS = 10_000
MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024
WORDS = ("The", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog", ".")

_EVENTS_RE = re.compile(r"-e(\d+)")
_INTERVAL_RE = re.compile(r"-i(\d+)")


def chunk_events(count: int = DEFAULT_EVENTS, model: str = "bench-model") -> list[bytes]:
    """``count`` OpenAI stream events (SSE bytes), the last with finish_reason, then [DONE]."""
    out = []
    for i in range(count):
        delta: dict[str, Any] = {"content": WORDS[i % len(WORDS)]}
        if i == 0:
            delta["role"] = "assistant"
        last = i == count - 1
        chunk = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "delta": {} if last else delta,
                    "finish_reason": "stop" if last else None,
                }
            ],
        }
        out.append(b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n")
    out.append(b"data: [DONE]\n\n")
    return out


def _chunked(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


_STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)
_REPLY_RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
    % (len(REPLY), REPLY)
)
_END = b"0\r\n\r\n"


def _sized(status: int, body: bytes, content_type: bytes = b"application/json") -> bytes:
    reason = {200: b"OK", 400: b"Bad Request", 404: b"Not Found"}.get(status, b"")
    return b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n%s" % (
        status,
        reason,
        content_type,
        len(body),
        body,
    )


class State:
    """What the whole server counts and records."""

    def __init__(self) -> None:
        self.requests = 0
        self.streams = 0
        self.streams_done = 0
        self.open_streams = 0
        self.cancels: dict[str, dict[str, float | int]] = {}
        self._events: dict[tuple[int, str], list[bytes]] = {}

    def events(self, count: int, model: str) -> list[bytes]:
        key = (count, model)
        framed = self._events.get(key)
        if framed is None:
            framed = [_chunked(e) for e in chunk_events(count, model)]
            if len(self._events) < 64:
                self._events[key] = framed
        return framed


class UpstreamProtocol(asyncio.Protocol):
    """One connection: parse requests, answer them in order (a stream holds the line)."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.stream_task: asyncio.Task[None] | None = None
        self.stream_id = ""
        self.stream_sent = 0
        self.closed = False
        self.can_write = asyncio.Event()
        self.can_write.set()

    # -- asyncio callbacks -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.stream_task is None:
            self._process()

    def eof_received(self) -> bool:
        self._gone()
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._gone()
        self.can_write.set()

    def pause_writing(self) -> None:
        self.can_write.clear()

    def resume_writing(self) -> None:
        self.can_write.set()

    # -- requests ----------------------------------------------------------------------

    def _gone(self) -> None:
        """The peer left: record it if a stream was being written, and stop that stream."""
        if self.closed:
            return
        self.closed = True
        task = self.stream_task
        if task is not None and not task.done():
            self._record_cancel()
            task.cancel()

    def _record_cancel(self) -> None:
        cancels = self.state.cancels
        if self.stream_id and self.stream_id not in cancels and len(cancels) < 100_000:
            cancels[self.stream_id] = {"eof_at": time.monotonic(), "events_sent": self.stream_sent}

    def _process(self) -> None:
        transport = self.transport
        assert transport is not None
        while not self.closed:
            buf = self.buf
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD_BYTES:
                    self._fail(400, b"request head too large")
                return
            head = bytes(buf[:end]).split(b"\r\n")
            try:
                method, target, _version = head[0].split(b" ", 2)
            except ValueError:
                self._fail(400, b"bad request line")
                return
            length = 0
            request_id = ""
            close = False
            for line in head[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"x-request-id":
                    request_id = value.strip().decode("latin-1")
                elif name == b"connection":
                    close = value.strip().lower() == b"close"
                elif name == b"transfer-encoding":
                    self._fail(400, b"chunked request bodies are not supported by this mock")
                    return
            if length > MAX_BODY_BYTES:
                self._fail(400, b"body too large")
                return
            start = end + 4
            if len(buf) < start + length:
                return
            body = bytes(buf[start : start + length])
            del buf[: start + length]
            self.state.requests += 1
            self._handle(method, target, body, request_id)
            if close:
                transport.close()
                self.closed = True
                return
            if self.stream_task is not None:
                return  # the stream answers; requests behind it wait for it

    def _fail(self, status: int, message: bytes) -> None:
        assert self.transport is not None
        self.transport.write(_sized(status, json.dumps({"error": message.decode()}).encode()))
        self.transport.close()
        self.closed = True

    def _handle(self, method: bytes, target: bytes, body: bytes, request_id: str) -> None:
        transport = self.transport
        assert transport is not None
        if method == b"POST" and target.split(b"?")[0].endswith(b"/chat/completions"):
            try:
                doc = json.loads(body) if body else {}
            except ValueError:
                doc = {}
            if not isinstance(doc, dict) or not doc.get("stream"):
                transport.write(_REPLY_RESPONSE)
                return
            model = str(doc.get("model") or "bench-model")
            found = _EVENTS_RE.search(model)
            count = min(int(found.group(1)), MAX_EVENTS) if found else DEFAULT_EVENTS
            found = _INTERVAL_RE.search(model)
            interval = min(int(found.group(1)), MAX_INTERVAL_MS) / 1000 if found else 0.0
            self.stream_id = request_id
            self.stream_sent = 0
            self.state.streams += 1
            self.stream_task = asyncio.get_running_loop().create_task(
                self._stream(self.state.events(max(1, count), model), interval)
            )
            return
        if method == b"GET" and target == b"/health":
            transport.write(_sized(200, b'{"status":"ok"}'))
        elif method == b"GET" and target == b"/_bench/cancels":
            transport.write(_sized(200, json.dumps(self.state.cancels).encode()))
        elif method == b"GET" and target == b"/_bench/stats":
            stats = {
                "requests": self.state.requests,
                "streams": self.state.streams,
                "streams_done": self.state.streams_done,
                "open_streams": self.state.open_streams,
                "cancels": len(self.state.cancels),
            }
            transport.write(_sized(200, json.dumps(stats).encode()))
        else:
            transport.write(_sized(404, b'{"error":"not found"}'))

    async def _stream(self, events: list[bytes], interval: float) -> None:
        transport = self.transport
        assert transport is not None
        state = self.state
        state.open_streams += 1
        try:
            transport.write(_STREAM_HEAD)
            for event in events:
                if interval:
                    await asyncio.sleep(interval)
                elif not self.can_write.is_set():
                    await self.can_write.wait()
                if self.closed:
                    return
                transport.write(event)
                self.stream_sent += 1
                if not interval:
                    await asyncio.sleep(0)  # let other streams write theirs
            transport.write(_END)
            state.streams_done += 1
        except (ConnectionError, RuntimeError):  # a write on a dead transport
            self._record_cancel()
            self.closed = True
        except asyncio.CancelledError:
            pass
        finally:
            state.open_streams -= 1
            self.stream_task = None
            self.stream_id = ""
        if not self.closed and self.buf:
            self._process()  # a request sent behind the stream


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    state = State()
    server = await loop.create_server(
        lambda: UpstreamProtocol(state), host, port, backlog=4096, reuse_address=True
    )
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"bench upstream listening on http://{host}:{port}", file=sys.stderr, flush=True)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    if not args.host.startswith("127."):
        parser.error("the mock upstream listens on the loopback interface only")
    asyncio.run(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
