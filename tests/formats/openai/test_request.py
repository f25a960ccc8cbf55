"""OpenAI Chat Completions requests: parse into the canonical model and render back out."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.convert.model import (
    Audio,
    Document,
    Image,
    Message,
    Reasoning,
    Request,
    ResponseFormat,
    Text,
    Thinking,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
)
from gateway.errors import BadRequest
from gateway.formats.openai import FORMAT as oai

PARAMS = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}

# Shaped after wire-formats.md §1.3.
DOC_EXAMPLE: dict[str, Any] = {
    "model": "gpt-4o",
    "max_completion_tokens": 512,
    "messages": [
        {"role": "developer", "content": "Be terse."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this image and how is the weather in Oslo?"},
                {
                    "type": "image_url",
                    "image_url": {"url": "data:image/png;base64,iVBORw0KGgo", "detail": "auto"},
                },
                {"type": "input_audio", "input_audio": {"data": "UklGRi", "format": "wav"}},
                {
                    "type": "file",
                    "file": {
                        "filename": "a.pdf",
                        "file_data": "data:application/pdf;base64,JVBERi",
                    },
                },
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c":4}'},
        {"role": "system", "content": [{"type": "text", "text": "Mid reminder"}]},
        {"role": "user", "content": "And Bergen?"},
    ],
    "tools": [
        {
            "type": "function",
            "function": {"name": "get_weather", "parameters": PARAMS, "strict": True},
        }
    ],
    "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    "parallel_tool_calls": False,
    "temperature": 0.5,
    "top_p": 0.9,
    "stop": "END",
    "seed": 7,
    "response_format": {"type": "json_object"},
    "stream": True,
    "stream_options": {"include_usage": True},
    "user": "u-1",
    "logit_bias": {"1": 2},
}


def test_parse_documented_example() -> None:
    req, notes = oai.parse_request(DOC_EXAMPLE)
    assert notes == ()
    assert req.system == (Text("Be terse."),)
    user, asst, results, mid, last = req.messages
    assert user.content == (
        Text("What is in this image and how is the weather in Oslo?"),
        Image("image/png", "iVBORw0KGgo"),
        Audio("audio/wav", "UklGRi"),
        Document("application/pdf", "JVBERi", title="a.pdf"),
    )
    assert asst.content == (ToolCall("call_1", "get_weather", '{"city":"Oslo"}'),)
    assert results.content == (ToolResult("call_1", (Text('{"temp_c":4}'),)),)
    assert mid == Message("system", (Text("Mid reminder"),))
    assert last.content == (Text("And Bergen?"),)
    assert req.tools == (Tool("get_weather", None, PARAMS, True),)
    assert req.tool_choice == ToolChoice("tool", name="get_weather")
    assert req.parallel_tool_calls is False
    assert req.max_tokens == 512
    assert req.stop == ("END",)
    assert req.seed == 7
    assert req.response_format == ResponseFormat("json_object")
    assert req.stream is True
    assert req.include_usage is True
    assert req.user == "u-1"
    assert req.extra == {"logit_bias": {"1": 2}}


def test_same_format_round_trip() -> None:
    req, _ = oai.parse_request(DOC_EXAMPLE)
    body, notes = oai.render_request(req, upstream_model="gpt-up")
    assert notes == ()
    assert body["model"] == "gpt-up"
    msgs = DOC_EXAMPLE["messages"]
    assert body["messages"][0] == {"role": "system", "content": "Be terse."}
    assert body["messages"][1]["content"][0] == msgs[1]["content"][0]
    assert body["messages"][1]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,iVBORw0KGgo"},
    }
    assert body["messages"][1]["content"][2:] == msgs[1]["content"][2:]
    assert body["messages"][2:4] == msgs[2:4]
    assert body["messages"][4] == {"role": "system", "content": "Mid reminder"}
    assert body["messages"][5] == msgs[5]
    for key in (
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "temperature",
        "top_p",
        "seed",
        "response_format",
        "user",
    ):
        assert body[key] == DOC_EXAMPLE[key], key
    assert body["stop"] == ["END"]
    assert body["max_completion_tokens"] == 512
    assert body["stream_options"] == {"include_usage": True}
    assert body["logit_bias"] == {"1": 2}


def _req(*messages: Message, **kw: Any) -> Request:
    return Request(model="m", messages=messages, **kw)


def test_tool_results_with_text_become_tool_messages_then_user() -> None:
    req = _req(
        Message("user", (Text("q"),)),
        Message(
            "assistant",
            (
                Thinking("t", "s", "anthropic"),
                Text("Checking."),
                ToolCall("a", "f", "{}"),
                ToolCall("b", "f", "{}"),
            ),
        ),
        Message(
            "user",
            (
                ToolResult("a", (Text("one"),)),
                ToolResult("b", (Text("bad"), Image("image/png", "AAA")), is_error=True),
                Text("thanks"),
            ),
        ),
    )
    body, notes = oai.render_request(req, upstream_model="gpt-4o")
    assert body["messages"] == [
        {"role": "user", "content": "q"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                {"id": "b", "type": "function", "function": {"name": "f", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "a", "content": "one"},
        {"role": "tool", "tool_call_id": "b", "content": "Error: bad"},
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}},
                {"type": "text", "text": "thanks"},
            ],
        },
    ]
    assert len(notes) == 2  # thinking dropped, image moved


def test_unanswered_calls_get_a_result_and_orphans_go() -> None:
    req = _req(
        Message("user", (Text("q"),)),
        Message("assistant", (ToolCall("a", "f", "{}"),)),
        Message("user", (ToolResult("zzz", (Text("x"),)), Text("next"))),
    )
    body, notes = oai.render_request(req, upstream_model="gpt-4o")
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "tool", "user"]
    assert body["messages"][2]["tool_call_id"] == "a"
    assert len(notes) == 2


@pytest.mark.parametrize(
    ("reasoning", "model", "effort"),
    [
        (Reasoning("enabled", budget_tokens=2000), "o3", "medium"),
        (Reasoning("enabled", budget_tokens=500), "gpt-5", "low"),
        (Reasoning("enabled", budget_tokens=20000), "openai/gpt-oss-120b", "high"),
        (Reasoning("adaptive", effort="xhigh"), "gpt-5.2", "xhigh"),
        (Reasoning("disabled"), "gpt-5", "none"),
        (Reasoning("enabled", effort="high"), "gpt-4o", None),
    ],
)
def test_reasoning_effort(reasoning: Reasoning, model: str, effort: str | None) -> None:
    req = _req(Message("user", (Text("q"),)), reasoning=reasoning, temperature=0.3)
    body, _ = oai.render_request(req, upstream_model=model)
    assert body.get("reasoning_effort") == effort
    assert ("temperature" in body) == (effort in (None, "none"))


def test_reasoning_flag_overrides_model_guess() -> None:
    req = _req(Message("user", (Text("q"),)), reasoning=Reasoning("enabled", effort="low"))
    body, _ = oai.render_request(
        req, upstream_model="my-local", reasoning=True, max_tokens_field="max_tokens"
    )
    assert body["reasoning_effort"] == "low"
    req = _req(Message("user", (Text("q"),)), max_tokens=5)
    body, _ = oai.render_request(req, upstream_model="m", max_tokens_field="max_tokens")
    assert body["max_tokens"] == 5


def test_tool_choice_shapes() -> None:
    tools = (Tool("a"), Tool("b"))
    for choice, expected in [
        (ToolChoice("auto"), "auto"),
        (ToolChoice("any"), "required"),
        (ToolChoice("none"), "none"),
        (ToolChoice("tool", name="a"), {"type": "function", "function": {"name": "a"}}),
        (
            ToolChoice("any", allowed=("b",)),
            {
                "type": "allowed_tools",
                "allowed_tools": {
                    "mode": "required",
                    "tools": [{"type": "function", "function": {"name": "b"}}],
                },
            },
        ),
    ]:
        body, _ = oai.render_request(
            _req(Message("user", (Text("q"),)), tools=tools, tool_choice=choice), upstream_model="m"
        )
        assert body["tool_choice"] == expected
        parsed, _ = oai.parse_request(dict(body, model="m"))
        assert parsed.tool_choice == choice


def test_long_tool_names_are_shortened_consistently() -> None:
    long = "mcp__" + "x" * 80
    req = _req(
        Message("user", (Text("q"),)),
        Message("assistant", (ToolCall("c", long, "{}"),)),
        Message("user", (ToolResult("c", (Text("r"),)),)),
        tools=(Tool(long),),
        tool_choice=ToolChoice("tool", name=long),
    )
    body, _ = oai.render_request(req, upstream_model="m")
    wire = body["tools"][0]["function"]["name"]
    assert len(wire) == 64
    assert body["messages"][1]["tool_calls"][0]["function"]["name"] == wire
    assert body["tool_choice"]["function"]["name"] == wire
    from gateway.convert.names import tool_name_map

    assert tool_name_map([long], oai.wire.TOOL_NAMES) == {wire: long}


def test_documents() -> None:
    req = _req(
        Message(
            "user",
            (Document("text/plain", "aGk="), Document("application/pdf", "JVB", title="x.pdf")),
        )
    )
    body, _ = oai.render_request(req, upstream_model="m")
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "hi"},
        {
            "type": "file",
            "file": {"file_data": "data:application/pdf;base64,JVB", "filename": "x.pdf"},
        },
    ]
    with pytest.raises(BadRequest, match="by URL"):
        oai.render_request(
            _req(Message("user", (Document(url="https://x/a.pdf"),))), upstream_model="m"
        )
    with pytest.raises(BadRequest, match="WAV or MP3"):
        oai.render_request(_req(Message("user", (Audio("audio/ogg", "x"),))), upstream_model="m")


def test_json_schema_response_format() -> None:
    rf = ResponseFormat("json_schema", schema={"type": "object"}, name="r", strict=True)
    body, _ = oai.render_request(
        _req(Message("user", (Text("q"),)), response_format=rf), upstream_model="m"
    )
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "r", "schema": {"type": "object"}, "strict": True},
    }
    parsed, _ = oai.parse_request(dict(body, model="m"))
    assert parsed.response_format == rf


def test_reasoning_content_extension_and_legacy_functions() -> None:
    body = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "q"},
            {
                "role": "assistant",
                "content": "a",
                "reasoning_content": "thought",
                "function_call": {"name": "f", "arguments": "{}"},
            },
            {"role": "function", "name": "f", "content": "res"},
        ],
        "audio": {"voice": "alloy", "format": "wav"},
        "modalities": ["text", "audio"],
    }
    req, _ = oai.parse_request(body)
    assert req.messages[1].content == (
        Thinking("thought", origin="openai"),
        Text("a"),
        ToolCall("legacy_f", "f", "{}"),
    )
    assert req.messages[2].content == (ToolResult("legacy_f", (Text("res"),), name="f"),)
    assert req.audio_output is True
    assert req.extra == {
        "audio": {"voice": "alloy", "format": "wav"},
        "modalities": ["text", "audio"],
    }


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ({"messages": []}, "`model` is required"),
        ({"model": "m"}, "`messages` is required"),
        ({"model": "m", "messages": [5]}, r"`messages\[0\]` must be an object"),
        ({"model": "m", "messages": [{"role": "robot"}]}, "role"),
        ({"model": "m", "messages": [], "n": "2"}, "`n` must be an integer"),
        ({"model": "m", "messages": [], "stop": [1]}, r"`stop\[0\]` must be a string"),
        ({"model": "m", "messages": [], "stream": "yes"}, "`stream` must be a boolean"),
        ({"model": "m", "messages": [], "tool_choice": "sometimes"}, "tool_choice"),
        (
            {"model": "m", "messages": [], "tools": [{"type": "custom", "custom": {"name": "x"}}]},
            "function tool",
        ),
        ({"model": "m", "messages": [], "reasoning_effort": "extreme"}, "reasoning_effort"),
        ({"model": "m", "messages": [], "response_format": {"type": "yaml"}}, "response_format"),
        (
            {
                "model": "m",
                "messages": [
                    {"role": "user", "content": [{"type": "file", "file": {"file_id": "f1"}}]}
                ],
            },
            "file_id",
        ),
        ({"model": "m", "messages": [{"role": "user", "content": [{"type": "video"}]}]}, "video"),
        (
            {"model": "m", "messages": [{"role": "user", "content": 3}]},
            r"`messages\[0\].content` must be an array",
        ),
    ],
)
def test_bad_client_bodies_name_the_field(body: Any, match: str) -> None:
    with pytest.raises(BadRequest, match=match):
        oai.parse_request(body)


def test_system_message_between_calls_and_results_moves_after_the_results() -> None:
    req = _req(
        Message("user", (Text("q"),)),
        Message("assistant", (ToolCall("a", "f", "{}"),)),
        Message("system", (Text("note"),)),
        Message("user", (ToolResult("a", (Text("r"),)),)),
    )
    body, notes = oai.render_request(req, upstream_model="m")
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "tool", "system"]
    assert notes == ()
    from gateway.formats.anthropic import FORMAT as ant

    body, notes = ant.render_request(req, upstream_model="m", system_messages=True)
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user", "system"]
    assert notes == ()
