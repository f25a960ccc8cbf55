"""A fast mock OpenAI-format provider (a process of its own: ``python -m rig.mock_upstream
--port P``), on asyncio ``Protocol`` callbacks and a hand-rolled HTTP/1.1 parser rather
than trio + h11: it shares 2 cores with the gateway and the load generator, and "direct"
figures measure it alone, so it costs as little CPU as it can.

``POST .../chat/completions`` answers one fixed ~300-byte ``chat.completion``, or with
``"stream": true`` chunked ``chat.completion.chunk`` events (200: 199 one-word deltas and
a finish), one write each, yielding after each so that concurrent streams interleave;
the model name tunes it: ``-e<N>`` N events, ``-i<MS>`` MS ms before each. When a stream's
client leaves, the time (``time.monotonic()``) is kept under its ``x-request-id`` for
``GET /_bench/cancels``; ``GET /_bench/stats`` counts requests and streams.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import re
import signal
import sys
import time
from typing import Any

DEFAULT_EVENTS = 200
#: Upper bounds, so a typo in a model name cannot make an endless stream.
MAX_EVENTS, MAX_INTERVAL_MS = 100_000, 10_000
MAX_HEAD_BYTES, MAX_BODY_BYTES = 64 * 1024, 64 * 1024 * 1024
WORDS = ("The", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog", ".")
COUNTS = dict.fromkeys(("requests", "streams", "streams_done", "open_streams"), 0)
CANCELS: dict[str, dict[str, float | int]] = {}


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


REPLY = dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 1700000000,
    "model": "bench-model",
    "choices": [{"index": 0,
                 "message": {"role": "assistant", "content": "Hello! How can I help you today?"},
                 "logprobs": None, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 9, "completion_tokens": 9, "total_tokens": 18},
})  # fmt: skip


def sse_chunk(
    delta: dict[str, Any], finish: str | None = None, model: str = "bench-model"
) -> bytes:
    """One ``chat.completion.chunk`` SSE event."""
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    chunk = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000,
             "model": model, "choices": [choice]}  # fmt: skip
    return b"data: " + dumps(chunk) + b"\n\n"


def chunk_events(count: int = DEFAULT_EVENTS, model: str = "bench-model") -> list[bytes]:
    """``count`` stream events (the last with finish_reason only), then ``[DONE]``."""
    deltas: list[dict[str, Any]] = [{"content": WORDS[i % len(WORDS)]} for i in range(count - 1)]
    if deltas:
        deltas[0]["role"] = "assistant"
    done = [sse_chunk({}, "stop", model), b"data: [DONE]\n\n"]
    return [sse_chunk(d, None, model) for d in deltas] + done


@functools.lru_cache(maxsize=64)
def _framed_events(count: int, model: str) -> list[bytes]:
    return [b"%x\r\n%s\r\n" % (len(e), e) for e in chunk_events(count, model)]


def _sized(status: int, body: bytes) -> bytes:
    reason = {200: b"OK", 400: b"Bad Request", 404: b"Not Found"}[status]
    head = b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
    return head % (status, reason, len(body)) + body


_STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)
_REPLY_RESPONSE = _sized(200, REPLY)


def _tuning(model: str, letter: str, default: int, cap: int) -> int:
    found = re.search(rf"-{letter}(\d+)", model)
    return min(int(found.group(1)), cap) if found else default


class UpstreamProtocol(asyncio.Protocol):
    """One connection: parse requests, answer them in order (a stream holds the line)."""

    def __init__(self) -> None:
        self.transport: Any = None
        self.buf = bytearray()
        self.stream_task: asyncio.Task[None] | None = None
        self.stream_id, self.stream_sent, self.closed = "", 0, False
        self.can_write = asyncio.Event()
        self.can_write.set()

    def connection_made(self, transport: Any) -> None:
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

    def _gone(self) -> None:
        """The peer left: record it if a stream was being written, and stop that stream."""
        if not self.closed:
            self.closed = True
            if (task := self.stream_task) is not None and not task.done():
                self._record_cancel()
                task.cancel()

    def _record_cancel(self) -> None:
        if self.stream_id and self.stream_id not in CANCELS and len(CANCELS) < 100_000:
            CANCELS[self.stream_id] = {"eof_at": time.monotonic(), "events_sent": self.stream_sent}

    def _fail(self, message: str) -> None:
        self.transport.write(_sized(400, dumps({"error": message})))
        self.transport.close()
        self.closed = True

    def _process(self) -> None:
        buf = self.buf
        while not self.closed and self.stream_task is None:  # requests behind a stream wait
            if (end := buf.find(b"\r\n\r\n")) < 0:
                if len(buf) > MAX_HEAD_BYTES:
                    self._fail("request head too large")
                return
            line, *lines = bytes(buf[:end]).split(b"\r\n")
            pairs = (x.partition(b":") for x in lines)
            headers = {k.strip().lower(): v.strip() for k, _, v in pairs}
            length = int(headers.get(b"content-length", 0))
            if len(parts := line.split(b" ", 2)) != 3:
                return self._fail("bad request line")
            if b"transfer-encoding" in headers:
                return self._fail("chunked request bodies are not supported by this mock")
            if length > MAX_BODY_BYTES:
                return self._fail("body too large")
            if len(buf) < end + 4 + length:
                return
            body = bytes(buf[end + 4 : end + 4 + length])
            del buf[: end + 4 + length]
            COUNTS["requests"] += 1
            self._handle(
                parts[0], parts[1], body, headers.get(b"x-request-id", b"").decode("latin-1")
            )
            if headers.get(b"connection", b"").lower() == b"close":
                self.transport.close()
                self.closed = True

    def _handle(self, method: bytes, target: bytes, body: bytes, request_id: str) -> None:
        write = self.transport.write
        if method == b"POST" and target.split(b"?")[0].endswith(b"/chat/completions"):
            try:
                doc = json.loads(body) if body else {}
            except ValueError:
                doc = {}
            if not isinstance(doc, dict) or not doc.get("stream"):
                return write(_REPLY_RESPONSE)
            model = str(doc.get("model") or "bench-model")
            events = _framed_events(max(1, _tuning(model, "e", DEFAULT_EVENTS, MAX_EVENTS)), model)
            interval = _tuning(model, "i", 0, MAX_INTERVAL_MS) / 1000
            self.stream_id, self.stream_sent = request_id, 0
            COUNTS["streams"] += 1
            self.stream_task = asyncio.get_running_loop().create_task(
                self._stream(events, interval)
            )
        elif method == b"GET" and target == b"/health":
            write(_sized(200, b'{"status":"ok"}'))
        elif method == b"GET" and target == b"/_bench/cancels":
            write(_sized(200, dumps(CANCELS)))
        elif method == b"GET" and target == b"/_bench/stats":
            write(_sized(200, dumps({**COUNTS, "cancels": len(CANCELS)})))
        else:
            write(_sized(404, b'{"error":"not found"}'))

    async def _stream(self, events: list[bytes], interval: float) -> None:
        COUNTS["open_streams"] += 1
        try:
            self.transport.write(_STREAM_HEAD)
            for event in events:
                if interval:
                    await asyncio.sleep(interval)
                elif not self.can_write.is_set():
                    await self.can_write.wait()
                if self.closed:
                    return
                self.transport.write(event)
                self.stream_sent += 1
                if not interval:
                    await asyncio.sleep(0)  # let other streams write theirs
            self.transport.write(b"0\r\n\r\n")
            COUNTS["streams_done"] += 1
        except (ConnectionError, RuntimeError):  # a write on a dead transport
            self._record_cancel()
            self.closed = True
        except asyncio.CancelledError:
            pass
        finally:
            COUNTS["open_streams"] -= 1
            self.stream_task, self.stream_id = None, ""
        if not self.closed and self.buf:
            self._process()  # a request sent behind the stream


async def serve(host: str, port: int) -> None:
    loop, stop = asyncio.get_running_loop(), asyncio.Event()
    server = await loop.create_server(
        UpstreamProtocol, host, port, backlog=4096, reuse_address=True
    )
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
