"""Non-stream responses of all three formats: parse, render, and the SDKs accept the output."""

from __future__ import annotations

from typing import Any

import anthropic.types
import openai.types.chat
import pytest
from google.genai import types as gtypes

from gateway.convert.model import (
    Response,
    StopReason,
    Text,
    Thinking,
    ToolCall,
    Usage,
)
from gateway.convert.names import GEMINI_SIG_PREFIX
from gateway.formats.anthropic import FORMAT as ant
from gateway.formats.gemini import FORMAT as gem
from gateway.formats.openai import FORMAT as oai

# Shaped after wire-formats.md §2.4 / §1.4 / §3.4.
ANT_BODY = {
    "id": "msg_01X",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [
        {"type": "thinking", "thinking": "User wants Bergen.", "signature": "EqQBCg"},
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_01B", "name": "get_weather", "input": {"city": "Bergen"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 50,
        "cache_creation_input_tokens": 10,
        "cache_read_input_tokens": 1200,
        "output_tokens": 40,
        "service_tier": "standard",
    },
}
OAI_BODY = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1760000000,
    "model": "gpt-4o-2024-08-06",
    "choices": [
        {
            "index": 0,
            "finish_reason": "tool_calls",
            "logprobs": None,
            "message": {
                "role": "assistant",
                "content": None,
                "refusal": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                    }
                ],
            },
        }
    ],
    "usage": {
        "prompt_tokens": 120,
        "completion_tokens": 30,
        "total_tokens": 150,
        "prompt_tokens_details": {"cached_tokens": 64, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 12, "audio_tokens": 0},
    },
    "system_fingerprint": "fp_x",
}
GEM_BODY = {
    "candidates": [
        {
            "index": 0,
            "finishReason": "STOP",
            "content": {
                "role": "model",
                "parts": [
                    {"text": "Need weather.", "thought": True},
                    {"text": "Let me "},
                    {"text": "check."},
                    {
                        "functionCall": {"name": "get_weather", "args": {"city": "Bergen"}},
                        "thoughtSignature": "CpcB+/x=",
                    },
                ],
            },
            "safetyRatings": [],
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 1250,
        "cachedContentTokenCount": 1200,
        "candidatesTokenCount": 28,
        "thoughtsTokenCount": 12,
        "totalTokenCount": 1290,
    },
    "modelVersion": "gemini-2.5-flash",
    "responseId": "abcXYZ",
}


def test_parse_anthropic() -> None:
    resp = ant.parse_response(ANT_BODY)
    assert resp.content == (
        Thinking("User wants Bergen.", "EqQBCg", "anthropic"),
        Text("Checking."),
        ToolCall("toolu_01B", "get_weather", '{"city":"Bergen"}'),
    )
    assert resp.stop_reason is StopReason.TOOL_USE
    assert resp.usage == Usage(1260, 40, 1200, 10, 0)


def test_parse_openai() -> None:
    resp = oai.parse_response(OAI_BODY)
    assert resp.content == (ToolCall("call_1", "get_weather", '{"city":"Oslo"}'),)
    assert resp.stop_reason is StopReason.TOOL_USE
    assert resp.usage == Usage(120, 30, 64, 0, 12)
    assert resp.created == 1760000000


def test_parse_gemini() -> None:
    resp = gem.parse_response(GEM_BODY)
    assert resp.content == (
        Thinking("Need weather.", None, None),
        Text("Let me check."),
        ToolCall("call_gm_abcXYZ_0", "get_weather", '{"city":"Bergen"}', "CpcB+/x="),
    )
    assert resp.stop_reason is StopReason.TOOL_USE  # STOP + functionCall (§5.3 item 19)
    assert resp.usage == Usage(1250, 40, 1200, 0, 12)
    assert resp.id == "abcXYZ"


def test_parse_restores_renamed_tool_names() -> None:
    body = dict(OAI_BODY)
    resp = oai.parse_response(body, tool_names={"get_weather": "mcp:get.weather"})
    assert resp.content[0].name == "mcp:get.weather"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            {"candidates": [{"finishReason": "MAX_TOKENS", "content": {"parts": [{"text": "a"}]}}]},
            "max_tokens",
        ),
        ({"candidates": [{"finishReason": "SAFETY"}]}, "content_filter"),
        ({"candidates": [{"finishReason": "RECITATION"}]}, "content_filter"),
        ({"candidates": [{"finishReason": "MALFORMED_FUNCTION_CALL"}]}, "error"),
        ({"candidates": [{"finishReason": "OTHER"}]}, "other"),
        ({"promptFeedback": {"blockReason": "SAFETY"}}, "content_filter"),
    ],
)
def test_gemini_finish_reasons(body: dict[str, Any], reason: str) -> None:
    assert gem.parse_response(body).stop_reason.value == reason


@pytest.mark.parametrize("body", [None, [], {}, {"choices": "x"}, {"content": 5, "usage": "x"}])
@pytest.mark.parametrize("mod", [ant, oai, gem])
def test_odd_upstream_bodies_never_crash(mod: Any, body: Any) -> None:
    resp = mod.parse_response(body)
    assert isinstance(resp, Response)


FULL = Response(
    id="r1",
    model="up",
    content=(
        Thinking("hmm", "sig-a", "anthropic"),
        Text("Hello"),
        ToolCall("call_1", "f", '{"a":1}'),
        ToolCall("call_2", "g", "not json", signature="+/+/AQ=="),
    ),
    stop_reason=StopReason.TOOL_USE,
    usage=Usage(100, 20, 30, 5, 7),
    created=1700000000,
)


def test_render_anthropic_validates_with_sdk() -> None:
    body = ant.render_response(FULL, model="client-model")
    msg = anthropic.types.Message.model_validate(body)
    assert msg.model == "client-model"
    assert msg.id == "msg_r1"
    assert msg.stop_reason == "tool_use"
    assert msg.usage.input_tokens == 65
    assert msg.usage.cache_read_input_tokens == 30
    assert msg.usage.cache_creation_input_tokens == 5
    assert body["content"][3] == {
        "type": "tool_use",
        "id": "call_2__thought__-_-_AQ",
        "name": "g",
        "input": {"raw_input": "not json"},
    }


def test_render_openai_validates_with_sdk() -> None:
    body = oai.render_response(FULL, model="client-model")
    cc = openai.types.chat.ChatCompletion.model_validate(body)
    assert cc.choices[0].finish_reason == "tool_calls"
    assert cc.choices[0].message.content == "Hello"
    assert cc.created == 1700000000
    assert cc.usage is not None
    assert cc.usage.prompt_tokens == 100
    assert cc.usage.prompt_tokens_details is not None
    assert cc.usage.prompt_tokens_details.cached_tokens == 30
    assert "reasoning_content" not in body["choices"][0]["message"]
    with_reasoning = oai.render_response(FULL, model="m", reasoning=True)
    assert with_reasoning["choices"][0]["message"]["reasoning_content"] == "hmm"


def test_render_gemini_validates_with_sdk() -> None:
    body = gem.render_response(FULL, model="client-model")
    r = gtypes.GenerateContentResponse.model_validate(body)
    assert r.candidates is not None
    assert r.candidates[0].finish_reason == gtypes.FinishReason.STOP
    parts = r.candidates[0].content.parts  # type: ignore[union-attr]
    assert parts is not None
    assert parts[0].thought is True
    assert parts[0].thought_signature is None  # an Anthropic signature means nothing to Gemini
    assert parts[3].function_call is not None
    assert parts[3].function_call.args == {"raw_input": "not json"}
    assert r.usage_metadata is not None
    assert r.usage_metadata.candidates_token_count == 13
    assert r.usage_metadata.thoughts_token_count == 7


def test_render_empty_gemini_response_keeps_a_part() -> None:
    body = gem.render_response(Response(id="", model="m", content=()), model="m")
    assert body["candidates"][0]["content"]["parts"] == [{"text": ""}]


@pytest.mark.parametrize(
    ("reason", "o", "a", "g"),
    [
        (StopReason.END_TURN, "stop", "end_turn", "STOP"),
        (StopReason.STOP_SEQUENCE, "stop", "stop_sequence", "STOP"),
        (StopReason.MAX_TOKENS, "length", "max_tokens", "MAX_TOKENS"),
        (StopReason.TOOL_USE, "tool_calls", "tool_use", "STOP"),
        (StopReason.CONTENT_FILTER, "content_filter", "refusal", "SAFETY"),
        (StopReason.PAUSE_TURN, "stop", "pause_turn", "STOP"),
        (StopReason.CONTEXT_WINDOW, "length", "model_context_window_exceeded", "MAX_TOKENS"),
        (StopReason.ERROR, "stop", "end_turn", "OTHER"),
        (StopReason.OTHER, "stop", "end_turn", "OTHER"),
    ],
)
def test_stop_reason_tables(reason: StopReason, o: str, a: str, g: str) -> None:
    resp = Response(
        id="x", model="m", content=(Text("t"),), stop_reason=reason, stop_sequence="END"
    )
    assert oai.render_response(resp, model="m")["choices"][0]["finish_reason"] == o
    ab = ant.render_response(resp, model="m")
    assert ab["stop_reason"] == a
    assert ab["stop_sequence"] == ("END" if a == "stop_sequence" else None)
    assert gem.render_response(resp, model="m")["candidates"][0]["finishReason"] == g


def test_cross_format_round_trips() -> None:
    # Anthropic upstream -> canonical -> OpenAI client -> canonical keeps text, calls, usage.
    resp = ant.parse_response(ANT_BODY)
    again = oai.parse_response(oai.render_response(resp, model="m"))
    assert again.usage == Usage(1260, 40, 1200, 10, 0)
    assert [p for p in again.content if isinstance(p, ToolCall)] == [
        ToolCall("toolu_01B", "get_weather", '{"city":"Bergen"}')
    ]
    # Gemini upstream -> Anthropic client -> canonical keeps the call signature (in the id).
    resp = gem.parse_response(GEM_BODY)
    again = ant.parse_response(ant.render_response(resp, model="m"))
    assert again.content[-1] == ToolCall(
        "call_gm_abcXYZ_0", "get_weather", '{"city":"Bergen"}', "CpcB+/x="
    )
    # Gemini thinking with a signature is marked for Anthropic clients.
    resp = Response(id="x", model="m", content=(Thinking("t", "AAAA", "gemini"),))
    assert (
        ant.render_response(resp, model="m")["content"][0]["signature"]
        == GEMINI_SIG_PREFIX + "AAAA"
    )
