"""Item 11: hostile JSON on every endpoint never gives a 500, never hangs, and the server serves on.

One gateway runs for the whole module in a thread of its own (its own ``trio.run``), in front of
three fake providers (one per wire format, each answering its own format, streamed or not) and
the built-in mock. Hypothesis builds request bodies from a valid one per endpoint, then puts
hostile values where the gateway reads (model, messages, contents, tools, max_tokens, stream...)
or writes hostile JSON *text* (deep nesting, 5,000-digit integers, NaN and Infinity literals,
lone surrogates, invalid UTF-8, control characters). Every answer must be an HTTP status other
than 500 within a generous bound, with a JSON error body in the endpoint's format whenever it is
an error, and ``/health/live`` must still answer afterwards. Any ERROR record the gateway logs
(an unhandled exception is logged with its traceback) fails the example too.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.server.exchange import Exchange
from tests.proxy.fakes import (
    anthropic_events,
    anthropic_reply,
    gemini_events,
    gemini_reply,
    openai_chunks,
    openai_reply,
    start_gateway,
    write_transformer,
)

#: Generous bound for one answer (the machine is small and shared).
ANSWER_S = 20.0
MODELS = ["m-openai", "m-anthropic", "m-gemini", "mock-1"]


class FormatFake:
    """A provider that answers in its own format, streamed when the request asks for it."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self.port = 0

    async def handle(self, ex: Exchange) -> None:
        target = ex.request.target
        try:
            body = json.loads(ex.request.body or b"{}")
        except (ValueError, RecursionError):
            body = {}
        stream = (
            "streamGenerateContent" in target
            if self.fmt == "gemini"
            else isinstance(body, dict) and body.get("stream") is True
        )
        if target.endswith("count_tokens") or "countTokens" in target:
            payload = {"input_tokens": 7} if self.fmt == "anthropic" else {"totalTokens": 7}
            await ex.respond(200, json.dumps(payload).encode())
            return
        if not stream:
            reply = {
                "openai": openai_reply,
                "anthropic": anthropic_reply,
                "gemini": gemini_reply,
            }[self.fmt]("fine")
            await ex.respond(200, json.dumps(reply).encode())
            return
        events = {
            "openai": openai_chunks,
            "anthropic": anthropic_events,
            "gemini": gemini_events,
        }[self.fmt](["fi", "ne"])
        await ex.start(200, content_type=b"text/event-stream")
        for event in events:
            await ex.send(event)

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        from gateway.config import Config
        from gateway.dialects import DEFAULT, dialect_for_path
        from gateway.server.listen import Server, open_listeners
        from gateway.server.routes import Route, Router

        routes = [
            Route("POST", "/v1/chat/completions", self.handle, watch_disconnect=True),
            Route("POST", "/v1/messages", self.handle, watch_disconnect=True),
            Route("POST", "/v1/messages/count_tokens", self.handle, watch_disconnect=True),
            Route("POST", "/v1beta/models/{rest:path}", self.handle, watch_disconnect=True),
        ]
        listeners = await open_listeners("127.0.0.1", 0)
        self.port = listeners[0].socket.getsockname()[1]
        server = Server(
            Config(), Router(routes), dialect=DEFAULT, dialect_for_path=dialect_for_path
        )
        await server.serve(listeners, task_status=task_status)


class ErrorRecords(logging.Handler):
    """Collects every ERROR-or-worse record the gateway logs (tracebacks of unhandled errors)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(self.format(record))


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ErrorRecords]]:
    tdir: Path = tmp_path_factory.mktemp("transformers")
    started = threading.Event()
    url: list[str] = []
    stop: list[tuple[trio.lowlevel.TrioToken, trio.CancelScope]] = []
    failure: list[BaseException] = []

    async def main() -> None:
        with trio.CancelScope() as scope:
            stop.append((trio.lowlevel.current_trio_token(), scope))
            async with trio.open_nursery() as nursery:
                fakes = {fmt: FormatFake(fmt) for fmt in ("openai", "anthropic", "gemini")}
                for fake in fakes.values():
                    await nursery.start(fake.serve)
                for fmt, fake in fakes.items():
                    base = f"http://127.0.0.1:{fake.port}" + (
                        "/v1beta" if fmt == "gemini" else "/v1"
                    )
                    write_transformer(
                        tdir,
                        f"p{fmt}",
                        {
                            "format": fmt,
                            "base_url": base,
                            "keys": ["sk-test-key-0123456789abcdef"],
                            "models": {f"m-{fmt}": "up-model"},
                            "retry": {"retries": 0},
                            "timeouts": {"connect": 2, "first_byte": 10, "idle": 10},
                        },
                    )
                write_transformer(tdir, "mock", {"format": "mock", "models": {"mock-1": "mock-1"}})
                gw = await start_gateway(nursery, tdir)
                url.append(gw.url)
                started.set()

    def run() -> None:
        try:
            trio.run(main)
        except BaseException as exc:  # reported to the test thread
            failure.append(exc)
            started.set()

    handler = ErrorRecords()
    logging.getLogger("gateway").addHandler(handler)
    thread = threading.Thread(target=run, name="hostile-json-gateway", daemon=True)
    thread.start()
    assert started.wait(30), "the gateway did not start"
    if failure:
        raise failure[0]
    try:
        yield url[0], handler
    finally:
        logging.getLogger("gateway").removeHandler(handler)
        if stop:
            token, scope = stop[0]
            token.run_sync_soon(scope.cancel)
        thread.join(10)


# -- hostile values ---------------------------------------------------------------------------

SURROGATES = ["\ud800", "\udfff", "a\ud83d", "\ude00b", "\ud83d\ude00"]
NASTY_TEXT = st.one_of(
    st.text(max_size=20),
    st.sampled_from(SURROGATES),
    st.sampled_from(["\x00", "\r\n", "x\ny", "\u2028", "\ufeff", "../..", "a/b?c#d", "%2e%2e"]),
    st.text(alphabet=st.characters(max_codepoint=0x9F), max_size=10),
)
LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    NASTY_TEXT,
)
VALUE = st.recursive(
    LEAF,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.one_of(
                st.sampled_from(
                    ["type", "role", "content", "text", "parts", "name", "id", "input", "args"]
                ),
                NASTY_TEXT,
            ),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=12,
)

#: Raw JSON texts no value above produces; each replaces one value in the body.
RAW = st.one_of(
    st.sampled_from(["NaN", "Infinity", "-Infinity", '"\\ud800"', '"\\udc00x"', '"\\u0000"']),
    st.integers(65, 3000).map(lambda n: "[" * n + "]" * n),
    st.integers(65, 3000).map(lambda n: '{"a":' * n + "1" + "}" * n),
    st.integers(4301, 6000).map(lambda n: "9" * n),
    st.just("1" + "0" * 400 + "e99999"),
)


def base_body(endpoint: str, model: str) -> dict[str, Any]:
    if endpoint == "chat":
        return {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    if endpoint in ("messages", "count_tokens"):
        body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
        if endpoint == "messages":
            body["max_tokens"] = 20
        return body
    return {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from paths(v, (*prefix, i))


def replace(body: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    body[path[0]] = replace(body[path[0]], path[1:], new)
    return body


MARK = "@@RAW@@"


@st.composite
def hostile_requests(draw: st.DrawFn) -> tuple[str, str, bytes]:
    endpoint = draw(
        st.sampled_from(["chat", "messages", "count_tokens", "gemini", "gemini_stream"])
    )
    model = draw(st.sampled_from(MODELS))
    body = base_body(endpoint, model)
    if endpoint in ("chat", "messages") and draw(st.booleans()):
        body["stream"] = True
    extras = {
        "chat": ["tools", "tool_choice", "max_tokens", "response_format", "stop", "n"],
        "messages": ["system", "tools", "tool_choice", "thinking", "stop_sequences", "metadata"],
        "count_tokens": ["system", "tools"],
        "gemini": ["systemInstruction", "tools", "generationConfig", "toolConfig"],
        "gemini_stream": ["systemInstruction", "tools", "generationConfig"],
    }[endpoint]
    for key in draw(st.lists(st.sampled_from(extras), max_size=2, unique=True)):
        body[key] = draw(VALUE)
    raw: str | None = None
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(paths(body))))
        if draw(st.integers(0, 3)) == 0 and raw is None:
            raw = draw(RAW)
            body = replace(body, path, MARK)
        else:
            body = replace(body, path, draw(VALUE))
    text = json.dumps(body, ensure_ascii=draw(st.booleans()))
    if raw is not None:
        text = text.replace(json.dumps(MARK), raw, 1)
    data = text.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 9)) == 0:
        data = data.replace(b"hi", b"h\xff\xc0", 1)  # invalid UTF-8
    if endpoint.startswith("gemini"):
        verb = "streamGenerateContent?alt=sse" if endpoint == "gemini_stream" else "generateContent"
        name = draw(st.one_of(st.just(model), st.sampled_from(["..", "a%2Fb", "m%0A1", "x" * 300])))
        target = f"/v1beta/models/{name}:{verb}"
    else:
        target = {
            "chat": "/v1/chat/completions",
            "messages": "/v1/messages",
            "count_tokens": "/v1/messages/count_tokens",
        }[endpoint]
    return endpoint, target, data


def check_error_body(endpoint: str, status: int, content: bytes) -> None:
    """An error answer is JSON in the endpoint's own error format."""
    err = json.loads(content)
    if endpoint in ("messages", "count_tokens"):
        assert err["type"] == "error", err
        assert isinstance(err["error"]["message"], str), err
    elif endpoint.startswith("gemini"):
        assert err["error"]["code"] == status, err
        assert isinstance(err["error"]["message"], str), err
    else:
        assert isinstance(err["error"]["message"], str), err


@settings(
    max_examples=250,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(req=hostile_requests())
def test_hostile_json_never_500_never_hangs(
    gateway: tuple[str, ErrorRecords], req: tuple[str, str, bytes]
) -> None:
    gateway_url, errors = gateway
    endpoint, target, data = req
    with httpx.Client(base_url=gateway_url, timeout=ANSWER_S) as client:
        with client.stream(
            "POST", target, content=data, headers={"content-type": "application/json"}
        ) as resp:
            content = resp.read()  # a stream must also end within the bound
        assert resp.status_code != 500, (target, data[:300], content[:300])
        assert resp.status_code < 500 or resp.status_code in (502, 503, 504), resp.status_code
        if resp.status_code >= 400:
            check_error_body(endpoint, resp.status_code, content)
        assert client.get("/health/live").status_code == 200
    assert not errors.records, errors.records[:2]
