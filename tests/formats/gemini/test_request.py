"""Gemini generateContent requests: parse into the canonical model and render back out."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.convert.model import (
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
from gateway.convert.names import DUMMY_GEMINI_SIGNATURE
from gateway.errors import BadRequest
from gateway.formats.gemini import FORMAT as gem

# Shaped after wire-formats.md §3.2.
DOC_EXAMPLE: dict[str, Any] = {
    "systemInstruction": {"parts": [{"text": "Be terse."}]},
    "contents": [
        {
            "role": "user",
            "parts": [
                {"text": "Describe and check Oslo weather."},
                {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo"}},
                {
                    "fileData": {
                        "mimeType": "application/pdf",
                        "fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc",
                    }
                },
            ],
        },
        {
            "role": "model",
            "parts": [
                {"text": "Need weather.", "thought": True},
                {
                    "functionCall": {"name": "get_weather", "args": {"city": "Oslo"}},
                    "thoughtSignature": "CpcB",
                },
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"result": {"temp_c": 4}}}}
            ],
        },
    ],
    "tools": [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Current weather",
                    "parameters": {
                        "type": "OBJECT",
                        "properties": {"city": {"type": "STRING"}},
                        "required": ["city"],
                    },
                }
            ]
        }
    ],
    "toolConfig": {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
    },
    "generationConfig": {
        "temperature": 0.7,
        "topP": 0.95,
        "topK": 40,
        "maxOutputTokens": 1024,
        "stopSequences": ["END"],
        "candidateCount": 1,
        "seed": 7,
        "responseMimeType": "application/json",
        "responseSchema": {"type": "OBJECT", "properties": {"a": {"type": "STRING"}}},
        "thinkingConfig": {"includeThoughts": True, "thinkingBudget": 2048},
    },
    "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}],
}


def test_parse_documented_example() -> None:
    req, notes = gem.parse_request(DOC_EXAMPLE, model="gemini-2.5-flash", stream=True)
    assert notes == ()
    assert req.model == "gemini-2.5-flash"
    assert req.stream is True
    assert req.system == (Text("Be terse."),)
    user, model, results = req.messages
    assert user.content == (
        Text("Describe and check Oslo weather."),
        Image("image/png", "iVBORw0KGgo"),
        Document(
            "application/pdf", url="https://generativelanguage.googleapis.com/v1beta/files/abc"
        ),
    )
    assert model.content == (
        Thinking("Need weather.", None, None),
        ToolCall("call_gm_1_0", "get_weather", '{"city":"Oslo"}', "CpcB"),
    )
    assert results.content == (
        ToolResult("call_gm_1_0", (Text('{"temp_c":4}'),), name="get_weather"),
    )
    assert req.tools == (
        Tool(
            "get_weather",
            "Current weather",
            {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        ),
    )
    assert req.tool_choice == ToolChoice("tool", name="get_weather")
    assert (req.temperature, req.top_p, req.top_k, req.max_tokens, req.stop, req.n, req.seed) == (
        0.7,
        0.95,
        40,
        1024,
        ("END",),
        1,
        7,
    )
    assert req.response_format == ResponseFormat(
        "json_schema", schema={"type": "object", "properties": {"a": {"type": "string"}}}
    )
    assert req.reasoning == Reasoning("enabled", budget_tokens=2048, include_thoughts=True)
    assert req.extra == {"safetySettings": DOC_EXAMPLE["safetySettings"]}


def test_snake_case_keys_are_read() -> None:
    body = {
        "contents": [{"parts": [{"text": "hi"}]}],
        "system_instruction": {"parts": [{"text": "sys"}]},
        "generation_config": {"max_output_tokens": 9, "thinking_config": {"thinking_budget": 0}},
    }
    req, _ = gem.parse_request(body, model="g")
    assert req.system == (Text("sys"),)
    assert req.max_tokens == 9
    assert req.reasoning == Reasoning("disabled")


def test_same_format_round_trip() -> None:
    req, _ = gem.parse_request(DOC_EXAMPLE, model="gemini-2.5-flash")
    body, notes = gem.render_request(req, upstream_model="gemini-2.5-flash")
    assert notes == ()
    assert body["systemInstruction"] == DOC_EXAMPLE["systemInstruction"]
    c = body["contents"]
    assert c[0] == DOC_EXAMPLE["contents"][0]
    assert c[1] == {
        "role": "model",
        "parts": [DOC_EXAMPLE["contents"][1]["parts"][1]],
    }  # thought text not sent back
    assert c[2] == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp_c": 4}}}],
    }
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Current weather",
                    "parameters": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}},
                        "required": ["city"],
                    },
                }
            ]
        }
    ]
    assert body["toolConfig"] == DOC_EXAMPLE["toolConfig"]
    gen = dict(DOC_EXAMPLE["generationConfig"])
    gen["responseSchema"] = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert body["generationConfig"] == gen
    assert body["safetySettings"] == DOC_EXAMPLE["safetySettings"]
    assert "model" not in body
    assert "stream" not in body


def _req(*messages: Message, **kw: Any) -> Request:
    return Request(model="m", messages=messages, **kw)


def test_turn_rules() -> None:
    req = _req(
        Message("assistant", (Text("I start"),)),
        Message("user", (Text("q"),)),
        Message("system", (Text("mid"),)),
        Message("assistant", (ToolCall("call_b", "g", "{}"), ToolCall("call_a", "f", '{"x":1}'))),
        Message(
            "user",
            (
                ToolResult("call_a", (Text("A"),)),
                ToolResult("nope", (Text("?"),)),
                Text("and then"),
            ),
        ),
        Message("assistant", (Text("prefill"),)),
    )
    body, notes = gem.render_request(req, upstream_model="gemini-2.5-pro")
    assert body["systemInstruction"] == {"parts": [{"text": "mid"}]}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "."}]},
        {"role": "model", "parts": [{"text": "I start"}]},
        {"role": "user", "parts": [{"text": "q"}]},
        {
            "role": "model",
            "parts": [
                {"functionCall": {"name": "g", "args": {}, "id": "call_b"}},
                {"functionCall": {"name": "f", "args": {"x": 1}, "id": "call_a"}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "name": "g",
                        "response": {"error": "No result was provided for this tool call."},
                        "id": "call_b",
                    }
                },
                {"functionResponse": {"name": "f", "response": {"result": "A"}, "id": "call_a"}},
            ],
        },
        {"role": "user", "parts": [{"text": "and then"}]},
    ]
    assert len(notes) == 5


def test_thought_signatures_in_the_current_turn() -> None:
    req = _req(
        Message("user", (Text("old"),)),
        Message("assistant", (ToolCall("c0", "f", "{}"),)),
        Message("user", (ToolResult("c0", (Text("r"),)),)),
        Message("assistant", (Text("done"),)),
        Message("user", (Text("new question"),)),
        Message(
            "assistant", (ToolCall("c1", "f", "{}", signature="SIG1"), ToolCall("c2", "f", "{}"))
        ),
        Message("user", (ToolResult("c1", (Text("r"),)), ToolResult("c2", (Text("r"),)))),
        Message("assistant", (ToolCall("c3", "f", "{}"),)),
        Message("user", (ToolResult("c3", (Text("r"),)),)),
    )
    body, _ = gem.render_request(req, upstream_model="gemini-3-pro-preview")
    model_turns = [c for c in body["contents"] if c["role"] == "model"]
    assert "thoughtSignature" not in model_turns[0]["parts"][0]  # an earlier turn: not validated
    assert model_turns[2]["parts"][0]["thoughtSignature"] == "SIG1"
    assert "thoughtSignature" not in model_turns[2]["parts"][1]  # only the first call of a step
    assert model_turns[3]["parts"][0]["thoughtSignature"] == DUMMY_GEMINI_SIGNATURE
    body, _ = gem.render_request(req, upstream_model="gemini-2.5-flash")
    assert all(
        "thoughtSignature" not in p
        for c in body["contents"]
        for p in c["parts"]
        if "functionCall" in p and p["functionCall"]["id"] != "c1"
    )


def test_schema_is_sanitised_and_empty_objects_omitted() -> None:
    claude_code_like = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "timeout": {"type": "number", "exclusiveMinimum": 0, "default": 5},
            "format": {"type": "string", "enum": ["a", "b"]},
            "mode": {"const": "fast"},
            "maybe": {"type": ["string", "null"], "format": "uri"},
        },
        "required": ["format", "ghost"],
    }
    req = _req(
        Message("user", (Text("q"),)),
        tools=(
            Tool("Bash", "run", claude_code_like),
            Tool("Empty", None, {"type": "object", "properties": {}}),
        ),
    )
    body, _ = gem.render_request(req, upstream_model="gemini-2.5-flash")
    decls = body["tools"][0]["functionDeclarations"]
    assert decls[0]["parameters"] == {
        "type": "object",
        "properties": {
            "timeout": {"type": "number", "minimum": 0},
            "format": {"type": "string", "enum": ["a", "b"]},
            "mode": {"type": "string", "enum": ["fast"]},
            "maybe": {"type": "string", "nullable": True},
        },
        "required": ["format"],
    }
    assert decls[1] == {"name": "Empty"}


@pytest.mark.parametrize(
    ("reasoning", "model", "config"),
    [
        (Reasoning("enabled", effort="high"), "gemini-2.5-flash", {"thinkingBudget": 24576}),
        (Reasoning("enabled", effort="low"), "gemini-3-pro", {"thinkingLevel": "LOW"}),
        (
            Reasoning("enabled", budget_tokens=3000, include_thoughts=True),
            "gemini-3-pro",
            {"thinkingBudget": 3000, "includeThoughts": True},
        ),
        (
            Reasoning("adaptive", include_thoughts=True),
            "gemini-2.5-pro",
            {"thinkingBudget": -1, "includeThoughts": True},
        ),
        (Reasoning("disabled"), "gemini-2.5-flash", {"thinkingBudget": 0}),
        (Reasoning("disabled"), "gemini-3-flash", {"thinkingLevel": "LOW"}),
    ],
)
def test_thinking_config(reasoning: Reasoning, model: str, config: dict[str, Any]) -> None:
    body, _ = gem.render_request(
        _req(Message("user", (Text("q"),)), reasoning=reasoning), upstream_model=model
    )
    assert body["generationConfig"]["thinkingConfig"] == config


def test_tool_config_and_media() -> None:
    req = _req(
        Message(
            "user",
            (
                Image(url="https://x/cat.webp"),
                Image(url="data:image/gif;base64,R0l"),
                Document("text/plain", "aGk="),
            ),
        ),
        tools=(
            Tool("a", parameters={"type": "object", "properties": {"q": {"type": "string"}}}),
            Tool("b"),
        ),
        tool_choice=ToolChoice("auto", allowed=("a",)),
        stop=("1", "2", "3", "4", "5", "6"),
    )
    body, notes = gem.render_request(req, upstream_model="gemini-2.5-flash")
    assert body["contents"][0]["parts"] == [
        {"fileData": {"mimeType": "image/webp", "fileUri": "https://x/cat.webp"}},
        {"inlineData": {"mimeType": "image/gif", "data": "R0l"}},
        {"inlineData": {"mimeType": "text/plain", "data": "aGk="}},
    ]
    assert [d["name"] for d in body["tools"][0]["functionDeclarations"]] == ["a"]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}
    assert body["generationConfig"]["stopSequences"] == ["1", "2", "3", "4", "5"]
    assert len(notes) == 2


def test_function_responses_match_calls_by_name_in_order() -> None:
    body = {
        "contents": [
            {"role": "user", "parts": [{"text": "q"}]},
            {
                "role": "model",
                "parts": [
                    {"functionCall": {"name": "f", "args": {"i": 1}}},
                    {"functionCall": {"name": "f", "args": {"i": 2}}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "f", "response": {"output": "one"}}},
                    {"functionResponse": {"name": "f", "response": {"error": "two failed"}}},
                ],
            },
        ]
    }
    req, _ = gem.parse_request(body, model="g")
    assert req.messages[2].content == (
        ToolResult("call_gm_1_0", (Text("one"),), name="f"),
        ToolResult("call_gm_1_1", (Text("two failed"),), is_error=True, name="f"),
    )
    out, _ = gem.render_request(req, upstream_model="gemini-2.5-flash")
    assert out["contents"][2]["parts"] == [
        {"functionResponse": {"name": "f", "response": {"result": "one"}}},
        {"functionResponse": {"name": "f", "response": {"error": "two failed"}}},
    ]


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ({}, "`contents` is required"),
        ({"contents": {}}, "`contents` must be an array"),
        ({"contents": [{"parts": [{"functionCall": {"name": 3}}]}]}, "functionCall.name"),
        ({"contents": [], "tools": [{"googleSearch": {}}]}, "built-in tool"),
        ({"contents": [], "generationConfig": {"maxOutputTokens": "many"}}, "maxOutputTokens"),
        ({"contents": [], "generationConfig": {"stopSequences": [1]}}, "stopSequences"),
    ],
)
def test_bad_client_bodies_name_the_field(body: Any, match: str) -> None:
    with pytest.raises(BadRequest, match=match):
        gem.parse_request(body, model="g")


def test_model_is_required() -> None:
    with pytest.raises(BadRequest, match="model"):
        gem.parse_request({"contents": []})


def test_audio_output_is_refused() -> None:
    with pytest.raises(BadRequest, match="audio"):
        gem.render_request(
            _req(Message("user", (Text("q"),)), audio_output=True), upstream_model="g"
        )


def test_several_candidates_are_refused() -> None:
    with pytest.raises(BadRequest, match="set `n` to 1"):
        gem.render_request(_req(Message("user", (Text("q"),)), n=2), upstream_model="g")


def test_gemini_file_uris_do_not_travel_to_other_providers() -> None:
    from gateway.formats.anthropic import FORMAT as ant
    from gateway.formats.openai import FORMAT as oai

    req, _ = gem.parse_request(DOC_EXAMPLE, model="g")
    for mod in (ant, oai):
        with pytest.raises(BadRequest, match="Gemini file reference"):
            mod.render_request(req, upstream_model="m")
