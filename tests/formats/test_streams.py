"""Stream parsers and renderers: edge cases, invariants, and round trips through each format."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.convert.emulate import accumulate
from gateway.convert.model import (
    MessageStart,
    RedactedThinkingDelta,
    SignatureDelta,
    Stop,
    StopReason,
    StreamError,
    StreamEvent,
    TextDelta,
    Thinking,
    ThinkingDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageUpdate,
)
from gateway.errors import ErrorKind
from gateway.formats import FORMAT_NAMES, FORMATS
from gateway.sse import Event, SSEDecoder
from tests import sdk


def ev(data: Any, event: str | None = None) -> Event:
    return Event(
        data=data if isinstance(data, str) else json.dumps(data), event=event, id=None, retry=None
    )


def parse_all(fmt: str, events: list[Event], **kw: Any) -> list[StreamEvent]:
    parser = FORMATS[fmt].stream_parser(**kw)
    out: list[StreamEvent] = []
    for e in events:
        out.extend(parser.feed(e))
    out.extend(parser.finish())
    return out


def render_all(fmt: str, events: list[StreamEvent], **kw: Any) -> bytes:
    renderer = FORMATS[fmt].stream_renderer("m", **kw)
    return b"".join(renderer.render(e) for e in events) + renderer.finish()


def decode(data: bytes) -> list[Event]:
    d = SSEDecoder()
    return d.feed(data) + d.close()


def anthropic_events(data: bytes) -> list[dict[str, Any]]:
    out = []
    for e in decode(data):
        obj = json.loads(e.data)
        assert e.event == obj["type"]  # the SDK skips events without a matching event: line
        out.append(obj)
    return out


def check_anthropic_invariants(data: bytes) -> None:
    """Blocks start before their deltas, never get deltas after their stop, never interleave."""
    state: dict[int, str] = {}
    open_block: int | None = None
    for obj in anthropic_events(data):
        kind = obj["type"]
        if kind == "content_block_start":
            assert open_block is None, "a block started while another was open"
            assert obj["index"] == len(state), "indices count up from 0"
            state[obj["index"]] = "open"
            open_block = obj["index"]
        elif kind == "content_block_delta":
            assert obj["index"] == open_block
        elif kind == "content_block_stop":
            assert obj["index"] == open_block
            state[obj["index"]] = "closed"
            open_block = None
        elif kind == "message_delta":
            assert open_block is None


# -- parsers: edge cases -------------------------------------------------------------------


def test_openai_tool_fragments_wait_for_id_and_name() -> None:
    chunks = [
        {
            "id": "c",
            "choices": [
                {
                    "index": 0,
                    "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"a"'}}]},
                }
            ],
        },
        {
            "id": "c",
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "call_9",
                                "function": {"name": "f", "arguments": ":1}"},
                            }
                        ]
                    },
                }
            ],
        },
        {"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    ]
    out = parse_all("openai", [ev(c) for c in chunks] + [ev("[DONE]")])
    assert out[1:] == [
        ToolCallStart(0, "call_9", "f"),
        ToolCallDelta(0, '{"a":1}'),
        ToolCallEnd(0),
        Stop(StopReason.TOOL_USE),
    ]


def test_openai_index_reuse_with_new_id_is_a_new_call_and_stop_with_calls_is_tool_use() -> None:
    def frag(i: int, cid: str, args: str) -> dict[str, Any]:
        call = {"index": i, "id": cid, "function": {"name": "f", "arguments": args}}
        return {"choices": [{"index": 0, "delta": {"tool_calls": [call]}}]}

    chunks = [
        frag(0, "a", "{}"),
        frag(0, "b", "{}"),
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    ]
    out = parse_all("openai", [ev(c) for c in chunks])
    assert [type(e).__name__ for e in out] == [
        "MessageStart",
        "ToolCallStart",
        "ToolCallDelta",
        "ToolCallEnd",
        "ToolCallStart",
        "ToolCallDelta",
        "ToolCallEnd",
        "Stop",
    ]
    assert out[-1] == Stop(StopReason.TOOL_USE)


def test_openai_eof_without_finish_is_an_error_not_end_turn() -> None:
    out = parse_all(
        "openai", [ev({"id": "x", "choices": [{"index": 0, "delta": {"content": "par"}}]})]
    )
    assert isinstance(out[-1], StreamError)
    assert out[-1].kind is ErrorKind.API_ERROR


def test_openai_usage_arrives_after_finish() -> None:
    chunks = [
        {"id": "x", "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]},
        {
            "id": "x",
            "choices": [],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
        },
    ]
    out = parse_all("openai", [ev(c) for c in chunks] + [ev("[DONE]")])
    assert out[1:] == [TextDelta("hi"), UsageUpdate(Usage(5, 2)), Stop(StopReason.END_TURN)]
    data = render_all("anthropic", out)
    delta = next(o for o in anthropic_events(data) if o["type"] == "message_delta")
    assert delta["usage"]["input_tokens"] == 5
    assert delta["usage"]["output_tokens"] == 2


def test_anthropic_parser_merges_usage_and_maps_ids() -> None:
    events = [
        ev(
            {
                "type": "message_start",
                "message": {
                    "id": "m1",
                    "model": "c",
                    "usage": {
                        "input_tokens": 10,
                        "cache_read_input_tokens": 90,
                        "output_tokens": 1,
                    },
                },
            }
        ),
        ev(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "redacted_thinking", "data": "ENC"},
            }
        ),
        ev({"type": "content_block_stop", "index": 0}),
        ev(
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {
                    "type": "tool_use",
                    "id": "toolu_1__thought__QUJD",
                    "name": "w_1",
                    "input": {},
                },
            }
        ),
        ev(
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": ""},
            }
        ),
        ev({"type": "content_block_stop", "index": 1}),
        ev(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use"},
                "usage": {"output_tokens": 7},
            }
        ),
        ev({"type": "message_stop"}),
    ]
    out = parse_all("anthropic", events, tool_names={"w_1": "w.1"})
    assert out == [
        MessageStart("m1", "c", Usage(100, 1, 90)),
        RedactedThinkingDelta("ENC"),
        ToolCallStart(0, "toolu_1", "w.1", "QUJD"),
        ToolCallEnd(0),
        UsageUpdate(Usage(100, 7, 90)),
        Stop(StopReason.TOOL_USE),
    ]


def test_anthropic_parser_without_message_stop() -> None:
    base = [ev({"type": "message_start", "message": {"id": "m"}})]
    assert isinstance(parse_all("anthropic", base)[-1], StreamError)
    delta = ev(
        {
            "type": "message_delta",
            "delta": {"stop_reason": "max_tokens"},
            "usage": {"output_tokens": 3},
        }
    )
    assert parse_all("anthropic", [*base, delta])[-1] == Stop(StopReason.MAX_TOKENS)


def test_gemini_parser_blocked_prompt_and_junk() -> None:
    out = parse_all("gemini", [ev({"promptFeedback": {"blockReason": "SAFETY"}})])
    assert out[-1] == Stop(StopReason.CONTENT_FILTER)
    # Junk is an error, never skipped (issue 8 item 12; tests/hardening/test_12_*).
    for junk in ("not json", [1]):
        out = parse_all("gemini", [ev(junk), ev({"promptFeedback": {"blockReason": "SAFETY"}})])
        assert isinstance(out[-1], StreamError)
    out = parse_all("gemini", [ev({"candidates": [{"content": {"parts": [{"text": "x"}]}}]})])
    assert isinstance(out[-1], StreamError)


def test_gemini_parser_api_key_invalid_in_stream() -> None:
    err = {
        "error": {
            "code": 400,
            "message": "API key not valid.",
            "status": "INVALID_ARGUMENT",
            "details": [{"reason": "API_KEY_INVALID"}],
        }
    }
    out = parse_all("gemini", [ev(err)])
    assert out == [StreamError(ErrorKind.AUTHENTICATION, "API key not valid.", 400)]


# -- renderers -----------------------------------------------------------------------------


def test_anthropic_renderer_holds_back_interleaved_tool_calls() -> None:
    events: list[StreamEvent] = [
        MessageStart("m", "u"),
        ToolCallStart(0, "a", "f"),
        ToolCallStart(1, "b", "g"),
        ToolCallDelta(0, "{"),
        ToolCallDelta(1, '{"b"'),
        ToolCallDelta(0, "}"),
        TextDelta("after"),
        ToolCallDelta(1, ":1}"),
        ToolCallEnd(0),
        ToolCallEnd(1),
        Stop(StopReason.TOOL_USE),
    ]
    data = render_all("anthropic", events)
    check_anthropic_invariants(data)
    msg = sdk.anthropic_stream(data)
    assert [(b.type, getattr(b, "input", None)) for b in msg.content] == [
        ("tool_use", {}),
        ("tool_use", {"b": 1}),
        ("text", None),
    ]


def test_anthropic_renderer_always_sends_message_delta_with_usage() -> None:
    data = render_all("anthropic", [TextDelta("x"), Stop(StopReason.END_TURN)])
    objs = anthropic_events(data)
    assert [o["type"] for o in objs] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert objs[-2]["usage"]["output_tokens"] == 0


def test_renderers_end_with_an_error_when_the_stream_never_completes() -> None:
    for fmt in FORMAT_NAMES:
        data = render_all(fmt, [MessageStart("m", "u"), TextDelta("x")])
        assert b"ended before the response was complete" in data
        assert b"[DONE]" not in data


def test_openai_renderer_usage_only_when_asked_and_reasoning_extension() -> None:
    events = [
        MessageStart("m", "u", created=5),
        ThinkingDelta("hmm"),
        TextDelta("x"),
        UsageUpdate(Usage(1, 2)),
        Stop(StopReason.END_TURN),
    ]
    plain = render_all("openai", events)
    assert b'"usage"' not in plain
    assert b"reasoning_content" not in plain
    full = render_all("openai", events, include_usage=True, reasoning=True)
    chunks = sdk.openai_stream(full)
    assert chunks[-1].usage.total_tokens == 3
    assert b'"reasoning_content":"hmm"' in full


def test_gemini_renderer_drops_foreign_signatures_and_keeps_its_own() -> None:
    events = [
        ThinkingDelta("t"),
        SignatureDelta("ant-sig", "anthropic"),
        SignatureDelta("Z2Vt", "gemini"),
        Stop(StopReason.END_TURN),
    ]
    data = render_all("gemini", events)
    assert b"ant-sig" not in data
    assert b'"thoughtSignature":"Z2Vt"' in data
    sdk.gemini_stream(data)


def test_stream_error_helper() -> None:
    assert FORMATS["anthropic"].stream_error(ErrorKind.OVERLOADED, "busy") == (
        b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"busy"}}\n\n'
    )
    assert FORMATS["openai"].stream_error(ErrorKind.TIMEOUT, "slow").startswith(b'data: {"error":')
    assert FORMATS["gemini"].stream_error(ErrorKind.TIMEOUT, "slow") == (
        b'data: {"error":{"code":504,"message":"slow","status":"DEADLINE_EXCEEDED"}}\r\n\r\n'
    )


# -- property: any canonical stream survives any format ------------------------------------

_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12)


@st.composite
def canonical_streams(draw: st.DrawFn) -> list[StreamEvent]:
    n_tools = draw(st.integers(0, 3))
    # Each tool: start, some argument fragments of a JSON object, end; interleaved freely.
    tools = []
    for i in range(n_tools):
        args = json.dumps({"k": draw(_text), "n": draw(st.integers(-5, 5))}, separators=(",", ":"))
        cuts = sorted(draw(st.sets(st.integers(1, len(args) - 1), max_size=3)))
        pieces = [args[a:b] for a, b in zip([0, *cuts], [*cuts, len(args)], strict=True)]
        tools.append(
            [
                ToolCallStart(i, f"call_{i}", f"tool_{i}"),
                *[ToolCallDelta(i, p) for p in pieces],
                ToolCallEnd(i),
            ]
        )
    content: list[list[StreamEvent]] = [
        [ThinkingDelta(t) for t in draw(st.lists(_text, max_size=2))],
        [TextDelta(t) for t in draw(st.lists(_text, max_size=4))],
        *tools,
    ]
    merged: list[StreamEvent] = []
    queues = [q for q in content if q]
    while queues:
        q = queues[draw(st.integers(0, len(queues) - 1))]
        merged.append(q.pop(0))
        queues = [q for q in queues if q]
    reason = (
        StopReason.TOOL_USE
        if n_tools
        else draw(st.sampled_from([StopReason.END_TURN, StopReason.MAX_TOKENS]))
    )
    usage = Usage(draw(st.integers(0, 999)), draw(st.integers(0, 999)))
    return [MessageStart("id1", "up", None, 1), *merged, UsageUpdate(usage), Stop(reason)]


@pytest.mark.parametrize("fmt", FORMAT_NAMES)
@settings(max_examples=150, deadline=None, derandomize=True)
@given(events=canonical_streams())
def test_any_canonical_stream_round_trips_through_a_format(
    fmt: str, events: list[StreamEvent]
) -> None:
    data = render_all(fmt, events, include_usage=True)
    if fmt == "anthropic":
        check_anthropic_invariants(data)
    back = accumulate(parse_all(fmt, decode(data)))
    want = accumulate(events)

    def text(resp: Any, kind: type) -> str:
        return "".join(p.text for p in resp.content if isinstance(p, kind))

    from gateway.convert.model import Text

    assert text(back, Text) == text(want, Text)
    if fmt != "openai":  # OpenAI clients do not see thinking
        assert text(back, Thinking) == text(want, Thinking)

    def calls(r: Any) -> list[Any]:
        return sorted(
            (p.id, p.name, json.loads(p.arguments)) for p in r.content if isinstance(p, ToolCall)
        )

    assert calls(back) == calls(want)
    assert back.stop_reason == want.stop_reason
    assert back.usage.input_tokens == want.usage.input_tokens
    assert back.usage.output_tokens == want.usage.output_tokens


def test_anthropic_message_start_announces_an_estimate_when_upstream_has_none() -> None:
    from gateway.convert.model import Message, Request, Text
    from gateway.convert.tokens import estimate_input_tokens

    req = Request(model="m", messages=(Message("user", (Text("x" * 400),)),))
    assert estimate_input_tokens(req) == 100
    data = render_all(
        "anthropic",
        [MessageStart("m", "u"), TextDelta("a"), Stop(StopReason.END_TURN)],
        input_tokens=100,
    )
    start = anthropic_events(data)[0]
    assert start["message"]["usage"]["input_tokens"] == 100
    data = render_all(
        "anthropic", [MessageStart("m", "u", Usage(7)), Stop(StopReason.END_TURN)], input_tokens=100
    )
    assert anthropic_events(data)[0]["message"]["usage"]["input_tokens"] == 7
