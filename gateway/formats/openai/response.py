"""OpenAI ``chat.completion`` body <-> canonical :class:`~gateway.convert.model.Response`.

Contract (wire-formats §1.4, §4.11, §4.12): :func:`parse_response` reads choice 0
and never raises on an odd upstream body; the non-standard ``reasoning_content``
/ ``reasoning`` fields of OpenAI-compatible servers become a thinking part.
:func:`render_response` produces a body ``openai.types.chat.ChatCompletion``
validates; thinking is left out unless ``reasoning=True`` (then it is the
``reasoning_content`` extension). ``prompt_tokens`` counts the whole prompt,
cached tokens included.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from gateway.convert import _util as u
from gateway.convert.model import (
    ContentPart,
    Response,
    StopReason,
    Text,
    Thinking,
    ToolCall,
    Usage,
)
from gateway.convert.names import embed_signature, split_signature

__all__ = [
    "STOP_FROM_OPENAI",
    "STOP_TO_OPENAI",
    "completion_id",
    "parse_response",
    "parse_usage",
    "render_response",
    "render_usage",
]

STOP_FROM_OPENAI = {
    "stop": StopReason.END_TURN,
    "length": StopReason.MAX_TOKENS,
    "tool_calls": StopReason.TOOL_USE,
    "function_call": StopReason.TOOL_USE,
    "content_filter": StopReason.CONTENT_FILTER,
}
STOP_TO_OPENAI = {
    StopReason.END_TURN: "stop",
    StopReason.STOP_SEQUENCE: "stop",
    StopReason.MAX_TOKENS: "length",
    StopReason.CONTEXT_WINDOW: "length",
    StopReason.TOOL_USE: "tool_calls",
    StopReason.CONTENT_FILTER: "content_filter",
    StopReason.PAUSE_TURN: "stop",
    StopReason.ERROR: "stop",
    StopReason.OTHER: "stop",
}


def parse_usage(raw: Mapping[str, Any] | None) -> Usage:
    if not raw:
        return Usage()
    prompt_details = raw.get("prompt_tokens_details")
    completion_details = raw.get("completion_tokens_details")
    pd = prompt_details if isinstance(prompt_details, Mapping) else None
    cd = completion_details if isinstance(completion_details, Mapping) else None
    return Usage(
        input_tokens=u.int_field(raw, "prompt_tokens"),
        output_tokens=u.int_field(raw, "completion_tokens"),
        cached_tokens=u.int_field(pd, "cached_tokens"),
        cache_creation_tokens=u.int_field(pd, "cache_write_tokens"),
        reasoning_tokens=u.int_field(cd, "reasoning_tokens"),
    )


def render_usage(usage: Usage) -> dict[str, Any]:
    out: dict[str, Any] = {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }
    if usage.cached_tokens or usage.cache_creation_tokens:
        details: dict[str, Any] = {"cached_tokens": usage.cached_tokens}
        if usage.cache_creation_tokens:
            details["cache_write_tokens"] = usage.cache_creation_tokens
        out["prompt_tokens_details"] = details
    if usage.reasoning_tokens:
        out["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    return out


def parse_response(body: Any, *, tool_names: Mapping[str, str] | None = None) -> Response:
    """Parse an OpenAI ``chat.completion`` body (choice 0).

    Args:
        body: the decoded JSON body.
        tool_names: ``{wire name: client name}`` to restore renamed tools.
    """
    body = body if isinstance(body, dict) else {}
    names = tool_names or {}
    choices = body.get("choices")
    choice = (
        choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
    )
    message = choice.get("message")
    if not isinstance(message, dict):
        message = {}
    parts: list[ContentPart] = []
    for key in ("reasoning_content", "reasoning"):
        value = message.get(key)
        if isinstance(value, str) and value:
            parts.append(Thinking(value, origin="openai"))
            break
    content = message.get("content")
    if isinstance(content, str) and content:
        parts.append(Text(content))
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        parts.append(Text(refusal))
    for call in u.items(message.get("tool_calls")):
        if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
            continue
        fn = call["function"]
        call_id, sig = split_signature(str(call.get("id") or ""))
        name = str(fn.get("name") or "")
        args = fn.get("arguments")
        parts.append(
            ToolCall(call_id, names.get(name, name), args if isinstance(args, str) else "{}", sig)
        )
    finish = choice.get("finish_reason")
    created = body.get("created")
    return Response(
        id=str(body.get("id") or ""),
        model=str(body.get("model") or ""),
        content=tuple(parts),
        stop_reason=STOP_FROM_OPENAI.get(finish, StopReason.END_TURN)
        if isinstance(finish, str)
        else StopReason.END_TURN,
        usage=parse_usage(body.get("usage") if isinstance(body.get("usage"), dict) else None),
        created=created if isinstance(created, int) else None,
    )


def completion_id(raw_id: str) -> str:
    return raw_id if raw_id.startswith("chatcmpl") else f"chatcmpl-{raw_id or 'gateway'}"


def render_response(
    resp: Response, *, model: str, reasoning: bool = False, created: int | None = None
) -> dict[str, Any]:
    """Render a canonical response as an OpenAI ``chat.completion`` body for a client.

    Args:
        resp: the canonical response.
        model: the model name the client asked for.
        reasoning: also send thinking text as ``message.reasoning_content``.
        created: the ``created`` stamp (default: the response's own, else now).
    """
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[dict[str, Any]] = []
    for p in resp.content:
        if isinstance(p, Text):
            texts.append(p.text)
        elif isinstance(p, Thinking):
            thoughts.append(p.text)
        elif isinstance(p, ToolCall):
            calls.append(
                {
                    "id": embed_signature(p.id, p.signature),
                    "type": "function",
                    "function": {"name": p.name, "arguments": p.arguments or "{}"},
                }
            )
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
        "refusal": None,
    }
    if calls:
        message["tool_calls"] = calls
    if reasoning and thoughts:
        message["reasoning_content"] = "".join(thoughts)
    stamp = created if created is not None else resp.created
    return {
        "id": completion_id(resp.id),
        "object": "chat.completion",
        "created": stamp if stamp is not None else int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": STOP_TO_OPENAI[resp.stop_reason],
                "logprobs": None,
            }
        ],
        "usage": render_usage(resp.usage),
    }
