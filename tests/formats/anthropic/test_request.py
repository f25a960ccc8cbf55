"""Anthropic Messages requests: parse into the canonical model and render back out."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.convert.model import (
    Audio,
    Document,
    Image,
    Message,
    Reasoning,
    RedactedThinking,
    Request,
    ResponseFormat,
    Text,
    Thinking,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
)
from gateway.convert.names import GEMINI_SIG_PREFIX
from gateway.errors import BadRequest
from gateway.formats.anthropic import FORMAT as ant

WEATHER = {
    "name": "get_weather",
    "description": "Current weather",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}

# Shaped after wire-formats.md §2.3 (the documented example request).
DOC_EXAMPLE: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 1024,
    "system": [{"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Describe this and check Oslo weather."},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo"},
                },
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}},
                {
                    "type": "document",
                    "source": {
                        "type": "base64",
                        "media_type": "application/pdf",
                        "data": "JVBERi",
                    },
                    "title": "a.pdf",
                },
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Need weather.", "signature": "EqQBCg"},
                {"type": "text", "text": "Checking."},
                {
                    "type": "tool_use",
                    "id": "toolu_01A",
                    "name": "get_weather",
                    "input": {"city": "Oslo"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A", "content": '{"temp_c":4}'},
                {"type": "text", "text": "Also in Bergen?"},
            ],
        },
    ],
    "tools": [WEATHER],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    "thinking": {"type": "enabled", "budget_tokens": 2048},
    "stream": True,
    "metadata": {"user_id": "u-1"},
    "context_management": {"edits": []},
}


def test_parse_documented_example() -> None:
    req, notes = ant.parse_request(DOC_EXAMPLE)
    assert notes == ()
    assert req.model == "claude-sonnet-4-5"
    assert req.system == (Text("Be terse.", cache_control={"type": "ephemeral"}),)
    user, assistant, results = req.messages
    assert user.content == (
        Text("Describe this and check Oslo weather."),
        Image("image/png", "iVBORw0KGgo"),
        Image(url="https://example.com/a.jpg"),
        Document("application/pdf", "JVBERi", title="a.pdf"),
    )
    assert assistant.content == (
        Thinking("Need weather.", "EqQBCg", "anthropic"),
        Text("Checking."),
        ToolCall("toolu_01A", "get_weather", '{"city":"Oslo"}'),
    )
    assert results.content == (
        ToolResult("toolu_01A", (Text('{"temp_c":4}'),)),
        Text("Also in Bergen?"),
    )
    assert req.tools == (Tool("get_weather", "Current weather", WEATHER["input_schema"]),)
    assert req.tool_choice == ToolChoice("auto")
    assert req.parallel_tool_calls is False
    assert req.reasoning == Reasoning("enabled", budget_tokens=2048, include_thoughts=True)
    assert req.stream is True
    assert req.user == "u-1"
    assert req.extra == {"context_management": {"edits": []}}


def test_same_format_round_trip_keeps_everything() -> None:
    req, _ = ant.parse_request(DOC_EXAMPLE)
    body, notes = ant.render_request(req, upstream_model="claude-up")
    assert notes == ("max_tokens raised to 3072 to exceed the thinking budget",)
    expected = dict(DOC_EXAMPLE, model="claude-up")
    expected["messages"] = [dict(m) for m in DOC_EXAMPLE["messages"]]
    assert body["messages"] == expected["messages"]
    assert body["system"] == DOC_EXAMPLE["system"]
    assert body["tools"] == [WEATHER]
    assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert body["max_tokens"] == 1024 + 2048  # raised above the budget
    assert body["context_management"] == {"edits": []}
    assert body["metadata"] == {"user_id": "u-1"}


def _req(*messages: Message, **kw: Any) -> Request:
    return Request(model="m", messages=messages, **kw)


def _user(*parts: Any) -> Message:
    return Message("user", parts)


def _asst(*parts: Any) -> Message:
    return Message("assistant", parts)


def test_system_message_after_user_turn_is_kept_in_place() -> None:
    body = {
        "model": "m",
        "max_tokens": 10,
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "system", "content": [{"type": "text", "text": "Reminder"}]},
            {"role": "assistant", "content": "ok"},
        ],
    }
    req, _ = ant.parse_request(body)
    assert req.messages[1] == Message("system", (Text("Reminder"),))
    out, _ = ant.render_request(req, upstream_model="u")
    assert out["messages"][0] == {
        "role": "user",
        "content": [
            {"type": "text", "text": "hi"},
            {"type": "text", "text": "<system>\nReminder\n</system>"},
        ],
    }
    out, _ = ant.render_request(req, upstream_model="u", system_messages=True)
    assert out["messages"][1] == {
        "role": "system",
        "content": [{"type": "text", "text": "Reminder"}],
    }


def test_default_max_tokens_and_sampling() -> None:
    req = _req(_user(Text("hi")), temperature=1.5, top_p=0.9, top_k=5, stop=("END",))
    body, notes = ant.render_request(req, upstream_model="u", default_max_tokens=777)
    assert body["max_tokens"] == 777
    assert body["temperature"] == 1.0
    assert "top_p" not in body
    assert body["top_k"] == 5
    assert body["stop_sequences"] == ["END"]
    assert any("clamped" in n for n in notes)
    assert any("top_p" in n for n in notes)


def test_thinking_drops_sampling_and_downgrades_forced_tool() -> None:
    req = _req(
        _user(Text("hi")),
        temperature=0.2,
        tools=(Tool("f"),),
        tool_choice=ToolChoice("tool", name="f"),
        reasoning=Reasoning("enabled", effort="high"),
    )
    body, notes = ant.render_request(req, upstream_model="claude-sonnet-4-5")
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 4096}
    assert body["max_tokens"] == 4096 + 4096
    assert "temperature" not in body
    assert body["tool_choice"] == {"type": "auto"}
    assert body["tools"] == [{"name": "f", "input_schema": {"type": "object", "properties": {}}}]
    assert len(notes) == 3


@pytest.mark.parametrize(
    ("reasoning", "model", "thinking", "effort"),
    [
        (Reasoning("enabled", effort="low"), "claude-opus-4-6", {"type": "adaptive"}, "low"),
        (
            Reasoning("enabled", effort="minimal"),
            "claude-sonnet-4-5",
            {"type": "enabled", "budget_tokens": 1024},
            None,
        ),
        (
            Reasoning("adaptive", effort="max", include_thoughts=False),
            "x",
            {"type": "adaptive", "display": "omitted"},
            "max",
        ),
        (Reasoning("disabled", effort="none"), "x", {"type": "disabled"}, None),
        (Reasoning(effort="high"), "x", None, "high"),
        (
            Reasoning("enabled", budget_tokens=10),
            "x",
            {"type": "enabled", "budget_tokens": 1024},
            None,
        ),
    ],
)
def test_reasoning_mapping(reasoning: Reasoning, model: str, thinking: Any, effort: Any) -> None:
    body, _ = ant.render_request(_req(_user(Text("hi")), reasoning=reasoning), upstream_model=model)
    assert body.get("thinking") == thinking
    assert body.get("output_config", {}).get("effort") == effort


def test_foreign_thinking_is_stripped_and_disables_thinking_on_pending_tool_turn() -> None:
    req = _req(
        _user(Text("q")),
        _asst(Thinking("t", "gsig", "gemini"), ToolCall("c1", "f", "{}")),
        _user(ToolResult("c1", (Text("r"),))),
        reasoning=Reasoning("enabled", budget_tokens=2000),
    )
    body, notes = ant.render_request(req, upstream_model="u")
    assert "thinking" not in body
    assert body["messages"][1]["content"] == [
        {"type": "tool_use", "id": "c1", "name": "f", "input": {}}
    ]
    assert any("thinking turned off" in n for n in notes)


def test_redacted_thinking_passes_back() -> None:
    req = _req(_user(Text("q")), _asst(RedactedThinking("xyz"), Text("a")), _user(Text("more")))
    body, _ = ant.render_request(req, upstream_model="u")
    assert body["messages"][1]["content"][0] == {"type": "redacted_thinking", "data": "xyz"}


def test_gemini_signature_marked_thinking_is_parsed_as_gemini() -> None:
    body = {
        "model": "m",
        "max_tokens": 5,
        "messages": [
            {"role": "user", "content": "q"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "t", "signature": GEMINI_SIG_PREFIX + "AAA="}
                ],
            },
        ],
    }
    req, _ = ant.parse_request(body)
    assert req.messages[1].content == (Thinking("t", "AAA=", "gemini"),)


def test_tool_pairing_repairs_history() -> None:
    req = _req(
        _user(Text("q")),
        _asst(ToolCall("a", "f", "{}"), ToolCall("b:1", "f", "{}")),
        _user(ToolResult("a", (Text("ok"),)), ToolResult("zzz", (Text("orphan"),))),
    )
    body, notes = ant.render_request(req, upstream_model="u")
    results = body["messages"][2]["content"]
    assert [r["tool_use_id"] for r in results] == ["a", "b_1"]
    assert results[1]["is_error"] is True
    assert body["messages"][1]["content"][1]["id"] == "b_1"
    assert len(notes) == 2


def test_assistant_first_gets_placeholder_and_empty_text_is_dropped() -> None:
    req = _req(_asst(Text("hello")), _user(Text("  "), Text("real")))
    body, notes = ant.render_request(req, upstream_model="u")
    assert body["messages"][0] == {"role": "user", "content": [{"type": "text", "text": "."}]}
    assert body["messages"][2]["content"] == [{"type": "text", "text": "real"}]
    assert notes


def test_json_modes() -> None:
    body, notes = ant.render_request(
        _req(_user(Text("q")), response_format=ResponseFormat("json_object")), upstream_model="u"
    )
    assert "JSON" in body["system"]
    assert notes
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    body, _ = ant.render_request(
        _req(_user(Text("q")), response_format=ResponseFormat("json_schema", schema=schema)),
        upstream_model="u",
    )
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}


def test_images_and_documents() -> None:
    req = _req(
        _user(
            Image(url="data:image/jpeg;base64,/9j/"),
            Image(url="https://x/y.png"),
            Document("text/plain", "aGk=", title="t.txt"),
            Document(url="https://x/doc.pdf"),
        )
    )
    body, _ = ant.render_request(req, upstream_model="u")
    assert body["messages"][0]["content"] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/"}},
        {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
        {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": "hi"},
            "title": "t.txt",
        },
        {"type": "document", "source": {"type": "url", "url": "https://x/doc.pdf"}},
    ]


@pytest.mark.parametrize(
    ("req", "match"),
    [
        (_req(_user(Text("q")), n=2), "set `n` to 1"),
        (_req(_user(Text("q")), audio_output=True), "audio"),
        (_req(_user(Audio("audio/wav", "UklG"))), "audio input"),
        (_req(_user(Image("image/bmp", "Qk0="))), "convert the image"),
        (_req(_user(Document("application/zip", "UEs="))), "convert the file"),
    ],
)
def test_meaning_changing_requests_are_refused(req: Request, match: str) -> None:
    with pytest.raises(BadRequest, match=match):
        ant.render_request(req, upstream_model="u")


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ({"messages": []}, "`model` is required"),
        ({"model": "m"}, "`messages` is required"),
        ({"model": "m", "messages": "hi"}, "`messages` must be an array"),
        ({"model": "m", "messages": [{"role": "bot", "content": "x"}]}, "role"),
        ({"model": "m", "messages": [], "max_tokens": "10"}, "`max_tokens` must be an integer"),
        ({"model": "m", "messages": [], "temperature": "hot"}, "`temperature` must be a number"),
        (
            {"model": "m", "messages": [], "tools": [{"type": "web_search_20250305", "name": "w"}]},
            "server tool",
        ),
        ({"model": "m", "messages": [], "thinking": {"type": "sometimes"}}, "thinking.type"),
        (
            {
                "model": "m",
                "messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}],
            },
            r"messages\[0\].content\[0\].text",
        ),
        (
            {
                "model": "m",
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}],
                    }
                ],
            },
            "Files API",
        ),
        ([], "`body` must be an object"),
    ],
)
def test_bad_client_bodies_name_the_field(body: Any, match: str) -> None:
    with pytest.raises(BadRequest, match=match):
        ant.parse_request(body)


def test_unknown_blocks_are_dropped_with_a_note() -> None:
    body = {
        "model": "m",
        "max_tokens": 5,
        "messages": [
            {
                "role": "user",
                "content": [{"type": "search_result", "x": 1}, {"type": "text", "text": "q"}],
            }
        ],
    }
    req, notes = ant.parse_request(body)
    assert req.messages[0].content == (Text("q"),)
    assert "search_result" in notes[0]


def test_extra_fields_are_dropped_for_other_formats() -> None:
    req, _ = ant.parse_request(DOC_EXAMPLE)
    from gateway.formats.openai import FORMAT as openai

    _, notes = openai.render_request(req, upstream_model="gpt-4o")
    assert any("context_management" in n for n in notes)


def test_consecutive_same_role_turns_are_merged_with_results_first() -> None:
    body = {
        "model": "m",
        "max_tokens": 5,
        "messages": [
            {"role": "user", "content": "a"},
            {"role": "user", "content": "b"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}],
            },
            {"role": "assistant", "content": "and"},
            {"role": "user", "content": "c"},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "r"}],
            },
        ],
    }
    req, _ = ant.parse_request(body)
    assert [m.role for m in req.messages] == ["user", "assistant", "user"]
    assert req.messages[0].content == (Text("a"), Text("b"))
    assert req.messages[2].content == (ToolResult("t1", (Text("r"),)), Text("c"))
    out, notes = ant.render_request(req, upstream_model="u")
    assert out["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "t1", "content": "r"},
        {"type": "text", "text": "c"},
    ]
    assert notes == ()
