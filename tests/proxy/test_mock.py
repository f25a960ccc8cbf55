"""The mock provider: deterministic echo, max_tokens, tool calls, usage, in every format."""

from __future__ import annotations

import json

import pytest

from gateway.convert.emulate import accumulate
from gateway.convert.model import (
    Message,
    Request,
    ResponseFormat,
    StopReason,
    Text,
    TextDelta,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    ToolResult,
)
from gateway.formats import FORMAT_NAMES, FORMATS
from gateway.proxy.mock import mock_response, mock_stream, placeholder
from tests import sdk

WEATHER = Tool(
    "get_weather",
    "Current weather",
    {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "days": {"type": "integer"},
            "unit": {"enum": ["c", "f"]},
            "verbose": {"type": "boolean"},
        },
        "required": ["city", "days", "unit"],
    },
)


def _req(text: str, **kw: object) -> Request:
    return Request(model="mock", messages=(Message("user", (Text(text),)),), **kw)  # type: ignore[arg-type]


def test_echo_and_usage() -> None:
    resp = mock_response(_req("hello there"), model="mock-1")
    assert resp.content == (Text("Echo: hello there"),)
    assert resp.stop_reason is StopReason.END_TURN
    assert resp.model == "mock-1"
    assert resp.usage.output_tokens == 3
    assert resp.usage.input_tokens >= 1
    assert mock_response(_req("hello there"), model="mock-1") == resp  # deterministic


def test_max_tokens_truncates_words() -> None:
    resp = mock_response(_req("one two three four", max_tokens=3), model="m")
    assert resp.content == (Text("Echo: one two"),)
    assert resp.stop_reason is StopReason.MAX_TOKENS
    assert resp.usage.output_tokens == 3


def test_stop_sequence() -> None:
    resp = mock_response(_req("say STOP now", stop=("STOP",)), model="m")
    assert resp.content == (Text("Echo: say "),)
    assert resp.stop_reason is StopReason.STOP_SEQUENCE
    assert resp.stop_sequence == "STOP"


@pytest.mark.parametrize(
    "req",
    [
        _req("hi", tools=(WEATHER,), tool_choice=ToolChoice("tool", name="get_weather")),
        _req("hi", tools=(WEATHER,), tool_choice=ToolChoice("any")),
        _req("please call get_weather.", tools=(WEATHER,)),
    ],
)
def test_tool_calls(req: Request) -> None:
    resp = mock_response(req, model="m")
    (call,) = resp.content
    assert isinstance(call, ToolCall)
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "example", "days": 1, "unit": "c"}
    assert resp.stop_reason is StopReason.TOOL_USE


def test_no_call_without_reason() -> None:
    assert (
        mock_response(_req("call nothing", tools=(WEATHER,)), model="m").stop_reason
        is StopReason.END_TURN
    )
    req = _req("call get_weather", tools=(WEATHER,), tool_choice=ToolChoice("none"))
    assert mock_response(req, model="m").stop_reason is StopReason.END_TURN


def test_tool_results_are_reported() -> None:
    req = Request(
        model="m",
        messages=(
            Message("user", (Text("call get_weather"),)),
            Message("assistant", (ToolCall("c1", "get_weather", "{}"),)),
            Message("user", (ToolResult("c1", (Text("sunny"),)),)),
        ),
        tools=(WEATHER,),
    )
    assert mock_response(req, model="m").content == (Text("Tool c1 returned: sunny"),)


def test_json_modes() -> None:
    resp = mock_response(_req("x", response_format=ResponseFormat("json_object")), model="m")
    assert json.loads(resp.content[0].text) == {"echo": "x"}  # type: ignore[union-attr]
    rf = ResponseFormat(
        "json_schema",
        schema={"type": "object", "properties": {"a": {"type": "number"}}, "required": ["a"]},
    )
    resp = mock_response(_req("x", response_format=rf), model="m")
    assert json.loads(resp.content[0].text) == {"a": 1.5}  # type: ignore[union-attr]


def test_placeholder_shapes() -> None:
    assert placeholder({"type": "array", "items": {"type": "string"}}) == ["example"]
    assert placeholder({"type": ["null", "integer"]}) == 1
    assert placeholder({"anyOf": [{"type": "boolean"}]}) is True
    assert placeholder({"const": 3}) == 3
    assert placeholder(None) == {}


def test_stream_matches_response_and_has_several_deltas() -> None:
    req = _req("a b c d e f g h i j")
    events = mock_stream(req, model="m")
    assert sum(isinstance(e, TextDelta) for e in events) >= 2
    assert accumulate(events) == mock_response(req, model="m")
    req = _req("call get_weather", tools=(WEATHER,))
    events = mock_stream(req, model="m")
    assert sum(isinstance(e, ToolCallDelta) for e in events) == 2
    assert accumulate(events) == mock_response(req, model="m")


@pytest.mark.parametrize("fmt", FORMAT_NAMES)
def test_mock_stream_renders_for_every_client(fmt: str) -> None:
    for req in (_req("hello mock world"), _req("call get_weather", tools=(WEATHER,))):
        renderer = FORMATS[fmt].stream_renderer("mock", include_usage=True)
        data = (
            b"".join(renderer.render(e) for e in mock_stream(req, model="mock")) + renderer.finish()
        )
        if fmt == "anthropic":
            msg = sdk.anthropic_stream(data)
            assert msg.stop_reason in ("end_turn", "tool_use")
        elif fmt == "openai":
            chunks = sdk.openai_stream(data)
            assert chunks[-1].usage is not None
        else:
            chunks = sdk.gemini_stream(data)
            assert chunks[-1].candidates[0].finish_reason is not None  # type: ignore[index]
