"""A provider on 127.0.0.1 that answers with exact bytes, for byte-level misbehaviour.

tests/proxy/fakes.py's FakeProvider speaks correct HTTP through our own server; the
faults of items 6, 10 and 12 of issue 8 (a bad Retry-After, gzip on a plain body, a
Content-Length longer than the body, broken chunked framing, a 3xx, a head that never
comes) need a server that writes whatever the test says. Each request gets the next
:class:`Answer` of the script (the last one repeats); the connection closes after it.
Helpers here also build the gateway's transformer file and check what a client got.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
import httpx
import trio

from tests.proxy.fakes import write_transformer

Answer = Callable[[trio.SocketStream], Awaitable[None]]


def raw(*parts: bytes | float) -> Answer:
    """Write ``parts`` in order (a float is a pause in seconds), then close."""

    async def answer(stream: trio.SocketStream) -> None:
        for part in parts:
            if isinstance(part, float):
                await trio.sleep(part)
            else:
                await stream.send_all(part)

    return answer


def head(status: int, headers: list[tuple[str, str]], *, reason: str = "X") -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}"] + [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def answer(
    status: int,
    body: bytes | Any,
    headers: list[tuple[str, str]] = (),  # type: ignore[assignment]
    content_type: str = "application/json",
) -> Answer:
    """A whole answer with a correct Content-Length (``body`` JSON-encoded unless bytes)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    hs = [("content-type", content_type), ("content-length", str(len(data))), *headers]
    return raw(head(status, hs) + data)


def sse(events: list[bytes], headers: list[tuple[str, str]] = ()) -> Answer:  # type: ignore[assignment]
    """A chunked event stream of ``events`` (each one chunk), then its proper end."""
    hs = [("content-type", "text/event-stream"), ("transfer-encoding", "chunked"), *headers]
    chunks = [b"%x\r\n%s\r\n" % (len(e), e) for e in events if e]
    return raw(head(200, hs), *chunks, b"0\r\n\r\n")


@attrs.define
class RawProvider:
    script: list[Answer] = attrs.Factory(list)
    requests: list[bytes] = attrs.Factory(list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def then(self, *answers: Answer) -> RawProvider:
        self.script.extend(answers)
        return self

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._handle, listeners)

    async def _handle(self, stream: trio.SocketStream) -> None:
        try:
            await self._read_request(stream)
            step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
            await step(stream)
        except trio.BrokenResourceError:
            pass
        finally:
            await stream.aclose()

    async def _read_request(self, stream: trio.SocketStream) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some(65536)
            if not chunk:
                raise trio.BrokenResourceError
            data += chunk
        top, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in top.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            chunk = await stream.receive_some(65536)
            if not chunk:
                raise trio.BrokenResourceError
            body += chunk
        self.requests.append(top + b"\r\n\r\n" + body)


# -- the gateway side ----------------------------------------------------------------------------

CLIENT_FORMATS = ("openai", "anthropic", "gemini")


def provider_file(tdir: Path, url: str, fmt: str = "openai", **extra: Any) -> None:
    """Transformer ``p`` in ``fmt`` at ``url`` serving model ``m`` (quick retries)."""
    spec = {
        "format": fmt,
        "base_url": url + ("/v1beta" if fmt == "gemini" else "/v1"),
        "models": {"m": "up-model"},
        "retry": {"retries": 1, "backoff_s": 0.01},
        "timeouts": {"connect": 5, "first_byte": 5, "idle": 5},
        **extra,
    }
    write_transformer(tdir, "p", spec)


def request_for(fmt: str, stream: bool) -> tuple[str, dict[str, Any]]:
    """(path, body) of a minimal call to model ``m`` in client format ``fmt``."""
    if fmt == "openai":
        body: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
        if stream:
            body["stream"] = True
        return "/v1/chat/completions", body
    if fmt == "anthropic":
        body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
        if stream:
            body["stream"] = True
        return "/v1/messages", body
    body = {"contents": [{"role": "user", "parts": [{"text": "x"}]}]}
    if stream:
        return "/v1beta/models/m:streamGenerateContent?alt=sse", body
    return "/v1beta/models/m:generateContent", body


async def call(base_url: str, fmt: str, stream: bool, timeout_s: float = 20) -> httpx.Response:
    """One call; the whole body is read (a cut connection raises httpx.RemoteProtocolError)."""
    path, body = request_for(fmt, stream)
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout_s, trust_env=False) as client:
        return await client.post(path, json=body)


def is_error_body(fmt: str, data: Any) -> bool:
    """Whether ``data`` is an error object in client format ``fmt``, with a message."""
    if not isinstance(data, dict) or not isinstance(data.get("error"), dict):
        return False
    err = data["error"]
    if fmt == "anthropic" and data.get("type") != "error":
        return False
    if fmt == "gemini" and not isinstance(err.get("code"), int):
        return False
    return isinstance(err.get("message"), str) and bool(err["message"])


def assert_error_answer(reply: httpx.Response, fmt: str, statuses: tuple[int, ...]) -> str:
    """A non-stream error in the caller's format with one of ``statuses``; its message."""
    assert reply.status_code in statuses, (reply.status_code, reply.text[:500])
    data = reply.json()
    assert is_error_body(fmt, data), data
    return str(data["error"]["message"])


def stream_events(reply: httpx.Response) -> list[dict[str, Any]]:
    """The JSON ``data:`` payloads of an SSE body (``[DONE]`` left out)."""
    out = []
    for block in reply.text.replace("\r\n", "\n").split("\n\n"):
        data = [ln[5:].strip() for ln in block.split("\n") if ln.startswith("data:")]
        if data and data != ["[DONE]"]:
            out.append(json.loads("\n".join(data)))
    return out


def assert_stream_error(reply: httpx.Response, fmt: str) -> str:
    """A 200 stream that ends in the caller's in-stream error event; its message."""
    assert reply.status_code == 200, (reply.status_code, reply.text[:500])
    assert reply.headers["content-type"].startswith("text/event-stream")
    events = stream_events(reply)
    assert events, reply.text[:500]
    assert is_error_body(fmt, events[-1]), reply.text[-1000:]
    assert "[DONE]" not in reply.text
    return str(events[-1]["error"]["message"])


def assert_failed(reply: httpx.Response, fmt: str, stream: bool, statuses: tuple[int, ...]) -> str:
    """Either form of failure: before the status (an error answer) or after it (in-stream)."""
    if reply.status_code == 200 and stream:
        return assert_stream_error(reply, fmt)
    return assert_error_answer(reply, fmt, statuses)
