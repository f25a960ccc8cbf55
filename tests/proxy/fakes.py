"""A scriptable fake provider on 127.0.0.1 speaking the three wire formats, and a gateway
running in the test's nursery."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import trio

from gateway.app import App
from gateway.config import Config
from gateway.dialects import DEFAULT, dialect_for_path
from gateway.server.exchange import Exchange
from gateway.server.listen import Server, open_listeners
from gateway.server.routes import Route, Router
from gateway.transformers.registry import RegistryHolder


@attrs.define
class Seen:
    path: str
    headers: dict[str, str]
    body: Any


@attrs.define
class Step:
    """One scripted answer. ``kind``: json | status | sse | hang | silent_after | abort."""

    kind: str
    status: int = 200
    body: Any = None
    headers: list[tuple[bytes, bytes]] = attrs.Factory(list)
    events: list[bytes] = attrs.Factory(list)
    delay_s: float = 0.0


class FakeProvider:
    """Answers with its script (one step per request; the last step repeats)."""

    def __init__(self, tls: Any = None) -> None:
        self.tls = tls  # an ssl.SSLContext: serve HTTPS
        self.seen: list[Seen] = []
        self.script: list[Step] = []
        self.handler_gone = trio.Event()  # a handler was cancelled: the gateway hung up
        self.in_handler = trio.Event()
        self.port = 0

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def then(self, *steps: Step) -> FakeProvider:
        self.script.extend(steps)
        return self

    def _next(self) -> Step:
        if len(self.script) > 1:
            return self.script.pop(0)
        return self.script[0] if self.script else Step("json", body=openai_reply("ok"))

    async def handle(self, ex: Exchange) -> None:
        headers = {k.decode(): v.decode("latin-1") for k, v in ex.request.headers}
        body = json.loads(ex.request.body) if ex.request.body else None
        self.seen.append(Seen(ex.request.target, headers, body))
        step = self._next()
        self.in_handler.set()
        try:
            await self._play(ex, step)
        except trio.Cancelled:
            self.handler_gone.set()
            raise

    async def _play(self, ex: Exchange, step: Step) -> None:
        if step.delay_s:
            await trio.sleep(step.delay_s)
        if step.kind == "hang":
            await trio.sleep_forever()
        if step.kind in ("json", "status"):
            await ex.respond(
                step.status, json.dumps(step.body).encode(), headers=step.headers or None
            )
            return
        await ex.start(step.status, content_type=b"text/event-stream", headers=step.headers)
        for event in step.events:
            if event == b"<pause>":
                await trio.sleep(step.delay_s or 0.2)
                continue
            await ex.send(event)
        if step.kind == "silent_after":
            await trio.sleep_forever()
        if step.kind == "abort":  # cut the connection mid-body (the server cannot finish it)
            raise RuntimeError("fake provider aborts the stream")

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        routes = [
            Route("POST", "/v1/chat/completions", self.handle, watch_disconnect=True),
            Route("POST", "/v1/messages", self.handle, watch_disconnect=True),
            Route("POST", "/v1/messages/count_tokens", self.handle, watch_disconnect=True),
            Route("POST", "/v1beta/models/{rest:path}", self.handle, watch_disconnect=True),
            # absolute-form targets: this fake also serves as an HTTP forward proxy
            Route("POST", "http://{rest:path}", self.handle, watch_disconnect=True),
        ]
        server = Server(
            Config(),
            Router(routes),
            tls=self.tls,
            dialect=DEFAULT,
            dialect_for_path=dialect_for_path,
        )
        listeners = await open_listeners("127.0.0.1", 0)
        self.port = listeners[0].socket.getsockname()[1]
        await server.serve(listeners, task_status=task_status)


def openai_reply(text: str, model: str = "up-model") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }


def openai_chunks(words: list[str], model: str = "up-model") -> list[bytes]:
    out = []
    for i, word in enumerate(words):
        delta: dict[str, Any] = {"content": word}
        if i == 0:
            delta["role"] = "assistant"
        chunk = {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
        }
        out.append(b"data: " + json.dumps(chunk).encode() + b"\n\n")
    final = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": model,
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
    }
    out.append(b"data: " + json.dumps(final).encode() + b"\n\n")
    out.append(b"data: [DONE]\n\n")
    return out


def anthropic_reply(text: str, model: str = "up-model") -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 2},
    }


def anthropic_events(text_parts: list[str], model: str = "up-model") -> list[bytes]:
    def ev(name: str, data: dict[str, Any]) -> bytes:
        return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()

    msg = anthropic_reply("", model)
    msg["content"] = []
    msg["stop_reason"] = None
    out = [
        ev("message_start", {"type": "message_start", "message": msg}),
        ev(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
    ]
    for part in text_parts:
        out.append(
            ev(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": part},
                },
            )
        )
    out += [
        ev("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ev(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": len(text_parts)},
            },
        ),
        ev("message_stop", {"type": "message_stop"}),
    ]
    return out


def gemini_reply(text: str) -> dict[str, Any]:
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": text}]},
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5},
        "modelVersion": "up-model",
    }


def gemini_events(parts: list[str]) -> list[bytes]:
    out = []
    for i, part in enumerate(parts):
        chunk: dict[str, Any] = {
            "candidates": [{"content": {"role": "model", "parts": [{"text": part}]}, "index": 0}],
            "modelVersion": "up-model",
        }
        if i == len(parts) - 1:
            chunk["candidates"][0]["finishReason"] = "STOP"
            chunk["usageMetadata"] = {
                "promptTokenCount": 3,
                "candidatesTokenCount": 2,
                "totalTokenCount": 5,
            }
        out.append(b"data: " + json.dumps(chunk).encode() + b"\r\n\r\n")
    return out


async def eventually(predicate: Callable[[], bool], timeout_s: float = 1.0) -> None:
    """Wait (bounded) until ``predicate()`` holds; fail the test if it never does."""
    steps = max(1, int(timeout_s / 0.01))
    for _ in range(steps):
        if predicate():
            return
        await trio.sleep(0.01)
    raise AssertionError(f"condition not met within {timeout_s} s")


def write_transformer(directory: Path, name: str, spec: dict[str, Any]) -> None:
    (directory / f"{name}.json").write_text(json.dumps(spec))


@attrs.define
class Gateway:
    app: App
    registry: RegistryHolder
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


async def start_gateway(
    nursery: trio.Nursery,
    directory: Path,
    env: dict[str, str] | None = None,
    *,
    tweak: Callable[[App], None] | None = None,
    config: Config | None = None,
    state: Any = None,
) -> Gateway:
    registry = RegistryHolder(directory, env=env or {})
    await registry.reload()
    registry.initial_load_done.set()
    config = config or Config()
    config = attrs.evolve(config, server=attrs.evolve(config.server, host="127.0.0.1", port=0))
    app = App(config, registry=registry, state=state)
    if tweak is not None:
        tweak(app)
    listeners = await open_listeners("127.0.0.1", 0)
    await nursery.start(app.server.serve, listeners)

    async def close_upstream_at_the_end() -> None:
        try:
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await app.upstream.aclose()
                if app.audit is not None:
                    await trio.to_thread.run_sync(app.audit.close)

    nursery.start_soon(close_upstream_at_the_end)
    return Gateway(app, registry, listeners[0].socket.getsockname()[1])
