"""The most common real use: Claude Code (Anthropic client) driving OpenAI and Gemini providers.

The request below is shaped after what wire-formats.md §5.5 observed Claude Code
send; the test follows a whole tool loop: request out, streamed tool call back,
the client's next request (carrying the ids and thinking it got) out again.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.genai import types as gtypes

from gateway.convert.model import StreamEvent
from gateway.formats import FORMATS, convert_request
from gateway.sse import SSEDecoder
from tests import sdk

BASH_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "command": {"type": "string", "description": "The command to execute"},
        "timeout": {"type": "number", "exclusiveMinimum": 0, "default": 120000},
        "run_in_background": {"type": "boolean", "default": False},
    },
    "required": ["command"],
}
CLAUDE_CODE_REQUEST: dict[str, Any] = {
    "model": "my-alias",
    "max_tokens": 32000,
    "stream": True,
    "system": [
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.3; cc_entrypoint=cli"},
        {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
    ],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "List the files", "cache_control": {"type": "ephemeral"}}
            ],
        },
        {"role": "system", "content": "<system-reminder>Today is 2026-11-25.</system-reminder>"},
    ],
    "tools": [
        {"name": "Bash", "description": "Run a shell command", "input_schema": BASH_SCHEMA},
        {
            "name": "ExitPlanMode",
            "description": "Leave plan mode",
            "input_schema": {"type": "object", "properties": {}},
            "defer_loading": True,
        },
        {
            "name": "mcp__github__search_repositories_with_a_really_long_descriptive_name",
            "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
        },
    ],
    "thinking": {"type": "adaptive", "display": "omitted"},
    "output_config": {"effort": "high"},
    "context_management": {"edits": [{"type": "clear_thinking_20251015"}]},
    "metadata": {"user_id": json.dumps({"device_id": "d" * 64, "session_id": "s-1"})},
}

FORBIDDEN_FOR_GEMINI = {
    "$schema",
    "additionalProperties",
    "exclusiveMinimum",
    "default",
    "const",
    "$ref",
    "$defs",
}


def keys_in(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys_in(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys_in(v)}
    return set()


def test_to_openai() -> None:
    body, notes = convert_request(
        CLAUDE_CODE_REQUEST, "anthropic", "openai", upstream_model="gpt-5"
    )
    assert body["messages"][0] == {
        "role": "system",
        "content": "x-anthropic-billing-header: cc_version=2.1.3; cc_entrypoint=cli\n\nYou are Claude Code.",
    }
    assert body["messages"][1] == {"role": "user", "content": "List the files"}
    assert body["messages"][2] == {
        "role": "system",
        "content": "<system-reminder>Today is 2026-11-25.</system-reminder>",
    }
    assert body["reasoning_effort"] == "high"
    assert body["max_completion_tokens"] == 32000
    assert body["stream_options"] == {"include_usage": True}
    names = [t["function"]["name"] for t in body["tools"]]
    assert len(names[2]) <= 64
    assert "user" not in body  # Claude Code's user id is a long JSON string
    assert any("context_management" in n for n in notes)


def test_to_gemini() -> None:
    body, _ = convert_request(
        CLAUDE_CODE_REQUEST, "anthropic", "gemini", upstream_model="gemini-2.5-pro"
    )
    assert not keys_in(body["tools"]) & FORBIDDEN_FOR_GEMINI
    decls = body["tools"][0]["functionDeclarations"]
    assert decls[1] == {"name": "ExitPlanMode", "description": "Leave plan mode"}  # no empty OBJECT
    assert decls[0]["parameters"]["properties"]["timeout"] == {"type": "number", "minimum": 0}
    assert body["systemInstruction"]["parts"][-1] == {
        "text": "<system-reminder>Today is 2026-11-25.</system-reminder>"
    }
    assert [c["role"] for c in body["contents"]] == ["user"]
    assert body["generationConfig"]["thinkingConfig"] == {"thinkingBudget": -1}
    # google-genai's own model of the request accepts it
    gtypes.GenerateContentConfig.model_validate(
        {
            "system_instruction": body["systemInstruction"],
            "tools": body["tools"],
            **{k: v for k, v in body["generationConfig"].items()},
        }
    )


def relay(upstream: str, sse: bytes, req_body: dict[str, Any]) -> bytes:
    req, _ = FORMATS["anthropic"].parse_request(req_body)
    parser = FORMATS[upstream].stream_parser(tool_names=FORMATS[upstream].tool_name_map(req))
    renderer = FORMATS["anthropic"].stream_renderer(req.model)
    decoder = SSEDecoder()
    out: list[bytes] = []
    events: list[StreamEvent] = []
    for e in decoder.feed(sse) + decoder.close():
        events.extend(parser.feed(e))
    events.extend(parser.finish())
    out.extend(renderer.render(e) for e in events)
    out.append(renderer.finish())
    return b"".join(out)


@pytest.mark.parametrize("upstream", ["openai", "gemini"])
def test_tool_loop_round_trip(upstream: str) -> None:
    long_name = "mcp__github__search_repositories_with_a_really_long_descriptive_name"
    req, _ = FORMATS["anthropic"].parse_request(CLAUDE_CODE_REQUEST)
    wire_name = next(k for k, v in FORMATS[upstream].tool_name_map(req).items() if v == long_name)
    if upstream == "openai":
        sse = (
            'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-5","choices":[{"index":0,"delta":{"role":"assistant","content":"","reasoning_content":"Plan."},"finish_reason":null}]}\n\n'
            'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-5","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_x","type":"function","function":{"name":"Bash","arguments":"{\\"command\\":\\"ls\\"}"}},'
            '{"index":1,"id":"call_y","type":"function","function":{"name":"'
            + wire_name
            + '","arguments":"{\\"q\\":\\"gw\\"}"}}]},"finish_reason":null}]}\n\n'
            'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-5","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}\n\n'
            'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-5","choices":[],"usage":{"prompt_tokens":900,"completion_tokens":30,"total_tokens":930}}\n\n'
            "data: [DONE]\n\n"
        ).encode()
    else:
        sse = (
            'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"Plan.","thought":true},'
            '{"functionCall":{"name":"Bash","args":{"command":"ls"}},"thoughtSignature":"c2lnbmF0dXJl"},'
            '{"functionCall":{"name":"'
            + wire_name
            + '","args":{"q":"gw"}}}]},"finishReason":"STOP","index":0}],'
            '"usageMetadata":{"promptTokenCount":900,"candidatesTokenCount":30,"totalTokenCount":930},"responseId":"R9"}\r\n\r\n'
        ).encode()
    data = relay(upstream, sse, CLAUDE_CODE_REQUEST)
    msg = sdk.anthropic_stream(data)
    assert msg.stop_reason == "tool_use"
    calls = [b for b in msg.content if b.type == "tool_use"]
    assert [(c.name, c.input) for c in calls] == [
        ("Bash", {"command": "ls"}),
        (long_name, {"q": "gw"}),
    ]
    assert msg.usage.input_tokens == 900

    # Claude Code sends the whole turn back with results; the provider must get a valid history.
    follow = dict(CLAUDE_CODE_REQUEST)
    follow["messages"] = [
        *CLAUDE_CODE_REQUEST["messages"],
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in msg.content]},
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": calls[0].id,
                    "content": "(Bash completed with no output)",
                    "is_error": False,
                },
                {
                    "type": "tool_result",
                    "tool_use_id": calls[1].id,
                    "content": "[]",
                    "cache_control": {"type": "ephemeral"},
                },
            ],
        },
    ]
    body, _ = convert_request(
        follow,
        "anthropic",
        upstream,
        upstream_model="gemini-3-pro" if upstream == "gemini" else "gpt-5",
    )
    if upstream == "openai":
        roles = [m["role"] for m in body["messages"]]
        assert roles == ["system", "user", "system", "assistant", "tool", "tool"]
        assert [c["id"] for c in body["messages"][3]["tool_calls"]] == ["call_x", "call_y"]
        assert [c["function"]["name"] for c in body["messages"][3]["tool_calls"]] == [
            "Bash",
            wire_name,
        ]
        assert [m["tool_call_id"] for m in body["messages"][4:]] == ["call_x", "call_y"]
    else:
        model_turn, results = body["contents"][1], body["contents"][2]
        assert model_turn["role"] == "model"
        # the signature is kept across the loop (§5.3)
        assert model_turn["parts"][0]["thoughtSignature"] == "c2lnbmF0dXJl"
        assert "id" not in model_turn["parts"][0]["functionCall"]  # made-up ids never reach Gemini
        assert [p["functionResponse"]["name"] for p in results["parts"]] == ["Bash", wire_name]
        assert results["parts"][0]["functionResponse"]["response"] == {
            "result": "(Bash completed with no output)"
        }
        assert body["contents"][-1]["role"] == "user"
