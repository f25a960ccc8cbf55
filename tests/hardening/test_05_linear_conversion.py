"""Issue 8 item 5: every conversion is linear in the size of what it converts.

Runs of consecutive same-role messages used to cost O(n^2) (a tuple grown message by
message when merging them; Gemini's parser searching back for the model turn before every
content), and so did the renderers' pairing of tool calls with their results (turns
deleted and inserted in place, ids looked up in lists), text parts joined part by part,
and more. For every client format x provider format (and the mock provider), each hostile
shape below is converted at a size N and at 2N; the time must stay well under quadratic
growth (at most ``MAX_RATIO`` times, where a quadratic cost gives about 4).

N is chosen per case so that the smaller conversion takes tens of milliseconds (timer
noise is then small); each size is timed a few times and the best run counts, because the
machine is shared. Everything is bounded: N at most ``MAX_N``, at most ``ROUNDS`` rounds.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from gateway.convert.emulate import accumulate
from gateway.convert.encoded import dumps_body
from gateway.convert.memo import Memo
from gateway.convert.model import (
    MessageStart,
    Stop,
    StopReason,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageUpdate,
)
from gateway.formats import FORMAT_NAMES, FORMATS, convert_response
from gateway.proxy.mock import mock_response, mock_stream
from gateway.proxy.relay import ConvertingRelay
from gateway.sse import SSEDecoder

MAX_RATIO = 3.2
MIN_SECONDS = 0.03
MAX_N = 1 << 17
ROUNDS = 5
PAIRS = [(c, p) for c in FORMAT_NAMES for p in FORMAT_NAMES]


def _timed(run: Callable[[Any], Any], arg: Any) -> float:
    gc.collect()
    gc.disable()  # the collector's pauses are noise here, not the conversion's cost
    try:
        start = time.perf_counter()
        run(arg)
        return time.perf_counter() - start
    finally:
        gc.enable()


def _ratio(make: Callable[[int], Any], run: Callable[[Any], Any], n: int) -> float:
    small, big = make(n), make(2 * n)
    best_small = best_big = float("inf")
    for i in range(ROUNDS):
        best_small = min(best_small, _timed(run, small))
        best_big = min(best_big, _timed(run, big))
        if i >= 1 and best_big / best_small < MAX_RATIO * 0.8:
            break
    return best_big / best_small


def assert_linear(make: Callable[[int], Any], run: Callable[[Any], Any]) -> None:
    """``run(make(2n))`` costs at most MAX_RATIO times ``run(make(n))``.

    A ratio over the bound is measured once more at twice the size before it fails: a
    quadratic cost shows again (and more clearly), a burst of load on the machine rarely
    does.
    """
    n = 500
    while n < MAX_N and _timed(run, make(n)) < MIN_SECONDS:
        n *= 2
    ratios = [_ratio(make, run, n)]
    if ratios[0] >= MAX_RATIO:
        ratios.append(_ratio(make, run, 2 * n))
    assert min(ratios) < MAX_RATIO, f"n={n}: time ratios for doubling the input: {ratios}"


# == hostile request shapes, per client format ================================================


def _body(fmt: str, messages: list[Any], tools: list[Any] | None = None) -> dict[str, Any]:
    if fmt == "gemini":
        body: dict[str, Any] = {"contents": messages}
        if tools:
            body["tools"] = [{"functionDeclarations": tools}]
        return body
    body = {"model": "m", "max_tokens": 64, "messages": messages}
    if tools:
        body["tools"] = tools
    return body


def _user(fmt: str, text: str) -> dict[str, Any]:
    if fmt == "gemini":
        return {"role": "user", "parts": [{"text": text}]}
    return {"role": "user", "content": text}


def _assistant(fmt: str, text: str) -> dict[str, Any]:
    if fmt == "gemini":
        return {"role": "model", "parts": [{"text": text}]}
    return {"role": "assistant", "content": text}


def same_role(fmt: str, n: int) -> dict[str, Any]:
    """n consecutive user messages (merged into one turn by every renderer)."""
    return _body(fmt, [_user(fmt, f"message {i}") for i in range(n)])


def many_blocks(fmt: str, n: int) -> dict[str, Any]:
    """One user message of n text blocks, then one assistant message of n blocks."""
    if fmt == "gemini":
        return _body(
            fmt,
            [
                {"role": "user", "parts": [{"text": f"b{i}"} for i in range(n)]},
                {"role": "model", "parts": [{"text": f"b{i}"} for i in range(n)]},
                _user(fmt, "go on"),
            ],
        )
    blocks = [{"type": "text", "text": f"b{i}"} for i in range(n)]
    if fmt == "openai":
        return _body(
            fmt,
            [
                {"role": "user", "content": blocks},
                {"role": "assistant", "content": blocks},
                _user(fmt, "go on"),
            ],
        )
    return _body(
        fmt,
        [
            {"role": "user", "content": blocks},
            {"role": "assistant", "content": blocks},
            _user(fmt, "go on"),
        ],
    )


def many_calls(fmt: str, n: int) -> dict[str, Any]:
    """One assistant turn with n tool calls of one name, then their n results (Gemini:
    without ids, so they are matched by name), then a user question."""
    if fmt == "gemini":
        calls = [{"functionCall": {"name": "f", "args": {"i": i}}} for i in range(n)]
        results = [{"functionResponse": {"name": "f", "response": {"r": i}}} for i in range(n)]
        msgs = [_user(fmt, "go"), {"role": "model", "parts": calls}]
        return _body(fmt, [*msgs, {"role": "user", "parts": results}, _user(fmt, "and?")])
    if fmt == "openai":
        calls = [
            {"id": f"c{i}", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            for i in range(n)
        ]
        results = [{"role": "tool", "tool_call_id": f"c{i}", "content": "ok"} for i in range(n)]
        msgs = [_user(fmt, "go"), {"role": "assistant", "content": None, "tool_calls": calls}]
        return _body(fmt, [*msgs, *results, _user(fmt, "and?")])
    uses = [{"type": "tool_use", "id": f"c{i}", "name": "f", "input": {}} for i in range(n)]
    results = [{"type": "tool_result", "tool_use_id": f"c{i}", "content": "ok"} for i in range(n)]
    return _body(
        fmt,
        [
            _user(fmt, "go"),
            {"role": "assistant", "content": uses},
            {"role": "user", "content": [*results, {"type": "text", "text": "and?"}]},
        ],
    )


def results_apart(fmt: str, n: int) -> dict[str, Any]:
    """One tool turn with n calls, its results each in a message of its own (Gemini: n user
    contents after the model turn, each with an id-less response), system notes between
    calls and results (OpenAI, Anthropic)."""
    if fmt == "gemini":
        calls = [{"functionCall": {"name": "f", "args": {}}} for _ in range(n)]
        results = [
            {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}}]}
            for _ in range(n)
        ]
        return _body(fmt, [_user(fmt, "go"), {"role": "model", "parts": calls}, *results])
    system = [{"role": "system", "content": f"note {i}"} for i in range(n)]
    if fmt == "openai":
        calls = [
            {"id": f"c{i}", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            for i in range(n)
        ]
        results = [{"role": "tool", "tool_call_id": f"c{i}", "content": "ok"} for i in range(n)]
        head = [_user(fmt, "go"), {"role": "assistant", "content": None, "tool_calls": calls}]
        return _body(fmt, [*head, *system, *results])
    uses = [{"type": "tool_use", "id": f"c{i}", "name": "f", "input": {}} for i in range(n)]
    results = [
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": f"c{i}"}]}
        for i in range(n)
    ]
    head = [_user(fmt, "go"), {"role": "assistant", "content": uses}]
    return _body(fmt, [*head, *system, *results])


def orphans(fmt: str, n: int) -> dict[str, Any]:
    """n rounds of an assistant text and a tool result that answers no call (every
    renderer drops them, which once meant deleting turns in place)."""
    msgs: list[Any] = [_user(fmt, "go")]
    for i in range(n):
        msgs.append(_assistant(fmt, f"a{i}"))
        if fmt == "gemini":
            fr = {"functionResponse": {"id": f"x{i}", "name": "f", "response": {}}}
            msgs.append({"role": "user", "parts": [fr]})
        elif fmt == "openai":
            msgs.append({"role": "tool", "tool_call_id": f"x{i}", "content": "?"})
        else:
            result = {"type": "tool_result", "tool_use_id": f"x{i}", "content": "?"}
            msgs.append({"role": "user", "content": [result]})
    msgs.append(_user(fmt, "and?"))
    return _body(fmt, msgs)


def unanswered(fmt: str, n: int) -> dict[str, Any]:
    """n assistant tool turns in a row, none answered (renderers insert a result turn
    after each, which once meant inserting turns in place)."""
    msgs: list[Any] = [_user(fmt, "go")]
    for i in range(n):
        if fmt == "gemini":
            msgs.append({"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]})
            msgs.append({"role": "model", "parts": [{"text": f"t{i}"}]})
        elif fmt == "openai":
            call = {"id": f"c{i}", "type": "function", "function": {"name": "f", "arguments": ""}}
            msgs.append({"role": "assistant", "content": None, "tool_calls": [call]})
            msgs.append({"role": "assistant", "content": f"t{i}"})
        else:
            use = {"type": "tool_use", "id": f"c{i}", "name": "f", "input": {}}
            msgs.append({"role": "assistant", "content": [use]})
            msgs.append({"role": "assistant", "content": f"t{i}"})
    msgs.append(_user(fmt, "and?"))
    return _body(fmt, msgs)


def many_tools(fmt: str, n: int) -> dict[str, Any]:
    """n tools with small schemas (one with n properties and n required names)."""
    schema = {"type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"]}
    wide = {
        "type": "object",
        "properties": {f"p{i}": {"type": "string"} for i in range(n)},
        "required": [f"p{i}" for i in range(n)],
    }
    if fmt == "gemini":
        tools = [{"name": f"t{i}", "parametersJsonSchema": schema} for i in range(n)]
        tools.append({"name": "wide", "parametersJsonSchema": wide})
    elif fmt == "openai":
        tools = [
            {"type": "function", "function": {"name": f"t{i}", "parameters": schema}}
            for i in range(n)
        ]
        tools.append({"type": "function", "function": {"name": "wide", "parameters": wide}})
    else:
        tools = [{"name": f"t{i}", "input_schema": schema} for i in range(n)]
        tools.append({"name": "wide", "input_schema": wide})
    return _body(fmt, [_user(fmt, "go")], tools)


SHAPES = [same_role, many_blocks, many_calls, results_apart, orphans, unanswered, many_tools]


def _convert(client: str, provider: str, memo: Memo | None = None) -> Callable[[Any], Any]:
    def run(body: dict[str, Any]) -> bytes:
        req, _ = FORMATS[client].parse_request(body, model="m", memo=memo, size=1)
        out, _ = FORMATS[provider].render_request(req, upstream_model="up", memo=memo)
        return dumps_body(out)

    return run


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.__name__)
@pytest.mark.parametrize(("client", "provider"), PAIRS)
def test_requests_convert_in_linear_time(client: str, provider: str, shape: Any) -> None:
    assert_linear(lambda n: shape(client, n), _convert(client, provider))


@pytest.mark.parametrize("shape", [same_role, many_calls, results_apart], ids=lambda s: s.__name__)
@pytest.mark.parametrize("client", FORMAT_NAMES)
def test_the_memo_keeps_conversions_linear(client: str, shape: Any) -> None:
    """With a memo that keeps the conversation (marks, estimate, bookkeeping), and with
    one that reuses it (the same body resent)."""

    def fresh(body: dict[str, Any]) -> bytes:
        return _convert(client, "openai", Memo(max_bytes=1 << 40, min_messages=1))(body)

    assert_linear(lambda n: shape(client, n), fresh)
    memos: dict[int, Memo] = {}  # one per body: every run after the first reuses it all

    def resent(body: dict[str, Any]) -> bytes:
        memo = memos.setdefault(id(body), Memo(max_bytes=1 << 40, min_messages=1))
        return _convert(client, "openai", memo)(body)

    assert_linear(lambda n: shape(client, n), resent)
    assert any(memo.reused > 0 for memo in memos.values())


@pytest.mark.parametrize("shape", [same_role, many_blocks, many_calls], ids=lambda s: s.__name__)
@pytest.mark.parametrize("client", FORMAT_NAMES)
def test_the_mock_provider_answers_in_linear_time(client: str, shape: Any) -> None:
    codec = FORMATS[client]

    def run(body: dict[str, Any]) -> None:
        req, _ = codec.parse_request(body, model="m")
        dumps_body(codec.render_response(mock_response(req, model="mock"), model="m"))
        renderer = codec.stream_renderer("m", include_usage=True)
        b"".join(renderer.render(e) for e in mock_stream(req, model="mock"))

    assert_linear(lambda n: shape(client, n), run)


# == answers and streams, per provider format =================================================


def _events(n: int) -> list[Any]:
    """A canonical answer with n text deltas and n tool calls (their arguments in pieces)."""
    events: list[Any] = [MessageStart("msg_1", "up", Usage(input_tokens=3))]
    events.extend(TextDelta(f"w{i} ") for i in range(n))
    for i in range(n):
        events.append(ToolCallStart(i, f"call_{i}", "f", None))
        events.append(ToolCallDelta(i, '{"a":'))
        events.append(ToolCallDelta(i, f"{i}}}"))
        events.append(ToolCallEnd(i))
    events.append(UsageUpdate(Usage(input_tokens=3, output_tokens=2 * n)))
    events.append(Stop(StopReason.TOOL_USE))
    return events


def _provider_sse(provider: str, n: int) -> bytes:
    renderer = FORMATS[provider].stream_renderer("up", include_usage=True)
    return b"".join([*(renderer.render(e) for e in _events(n)), renderer.finish()])


def _provider_answer(provider: str, n: int) -> Any:
    """A whole provider answer: n text parts (Gemini, Anthropic) and n tool calls."""
    if provider == "openai":
        calls = [
            {"id": f"c{i}", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            for i in range(n)
        ]
        message = {"role": "assistant", "content": "x" * n, "tool_calls": calls}
        return {
            "id": "r",
            "object": "chat.completion",
            "model": "up",
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
    if provider == "anthropic":
        blocks: list[Any] = [{"type": "text", "text": f"t{i}"} for i in range(n)]
        blocks += [{"type": "tool_use", "id": f"c{i}", "name": "f", "input": {}} for i in range(n)]
        return {
            "id": "r",
            "type": "message",
            "role": "assistant",
            "model": "up",
            "content": blocks,
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 1, "output_tokens": 1},
        }
    parts: list[Any] = [{"text": f"t{i}"} for i in range(n)]
    parts += [{"functionCall": {"name": "f", "args": {}}} for _ in range(n)]
    return {
        "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1},
    }


@pytest.mark.parametrize(("client", "provider"), PAIRS)
def test_answers_convert_in_linear_time(client: str, provider: str) -> None:
    def run(answer: Any) -> bytes:
        return dumps_body(convert_response(answer, provider, client, model="m"))

    assert_linear(lambda n: _provider_answer(provider, n), run)


def _chunks(data: bytes, size: int = 16384) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize(("client", "provider"), PAIRS)
def test_streams_convert_in_linear_time(client: str, provider: str) -> None:
    def run(chunks: list[bytes]) -> bytes:
        relay = ConvertingRelay(
            FORMATS[provider].stream_parser(),
            FORMATS[client].stream_renderer("m", include_usage=True),
        )
        out = [relay.feed(c) for c in chunks]
        out.append(relay.finish())
        return b"".join(out)

    assert_linear(lambda n: _chunks(_provider_sse(provider, n)), run)


@pytest.mark.parametrize(("client", "provider"), PAIRS)
def test_streams_accumulate_in_linear_time(client: str, provider: str) -> None:
    """A stream folded into one answer (a client that asked for no stream, an upstream
    that only streams): text deltas once grew a str delta by delta."""

    def run(chunks: list[bytes]) -> bytes:
        decoder, parser = SSEDecoder(), FORMATS[provider].stream_parser()
        events = [c for chunk in chunks for ev in decoder.feed(chunk) for c in parser.feed(ev)]
        events.extend(c for ev in decoder.close() for c in parser.feed(ev))
        events.extend(parser.finish())
        return dumps_body(FORMATS[client].render_response(accumulate(events), model="m"))

    assert_linear(lambda n: _chunks(_provider_sse(provider, n)), run)


# == tool schemas ============================================================================


def _ref_bomb(depth: int) -> dict[str, Any]:
    """Definitions that each use the next twice: inlined naively, 2**depth nodes."""
    defs = {
        f"d{k}": {
            "type": "object",
            "properties": {"x": {"$ref": f"#/$defs/d{k + 1}"}, "y": {"$ref": f"#/$defs/d{k + 1}"}},
        }
        for k in range(depth)
    }
    defs[f"d{depth}"] = {"type": "string"}
    return {"type": "object", "properties": {"root": {"$ref": "#/$defs/d0"}}, "$defs": defs}


@pytest.mark.parametrize("client", FORMAT_NAMES)
def test_schema_refs_that_multiply_are_inlined_within_a_budget(client: str) -> None:
    """Cleaning schemas for Gemini inlines ``$ref``; definitions that use each other twice
    over once grew exponentially (a few hundred bytes, 2**20 nodes, seconds of CPU)."""
    schema = _ref_bomb(20)
    if client == "gemini":
        body = _body(client, [_user(client, "go")], [{"name": "f", "parametersJsonSchema": schema}])
    elif client == "openai":
        tool = {"type": "function", "function": {"name": "f", "parameters": schema}}
        body = _body(client, [_user(client, "go")], [tool])
    else:
        body = _body(client, [_user(client, "go")], [{"name": "f", "input_schema": schema}])
    run = _convert(client, "gemini")
    assert _timed(run, body) < 1.0
    out = json.loads(run(body))
    assert len(json.dumps(out)) < 200 * len(json.dumps(schema))
