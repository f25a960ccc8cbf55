"""Anthropic Messages response body <-> canonical :class:`~gateway.convert.model.Response`.

Contract (wire-formats §2.4, §4.11, §4.12): :func:`parse_response` never raises on
an odd upstream body (missing fields read as empty); server-tool blocks, which
no other format has, are left out. :func:`render_response` produces a body the
Anthropic SDK's ``Message`` model validates: ``input_tokens`` counts only the
uncached prompt, cache reads and writes are reported beside it; Gemini
function-call signatures ride in the tool-use id (names.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.convert import _util as u
from gateway.convert.model import (
    ContentPart,
    RedactedThinking,
    Response,
    StopReason,
    Text,
    Thinking,
    ToolCall,
    Usage,
)
from gateway.convert.names import GEMINI_SIG_PREFIX, embed_signature, split_signature, wire_call_id

__all__ = [
    "STOP_FROM_ANTHROPIC",
    "STOP_TO_ANTHROPIC",
    "parse_response",
    "parse_usage",
    "render_response",
    "render_usage",
    "thinking_signature",
]

STOP_FROM_ANTHROPIC = {
    "end_turn": StopReason.END_TURN,
    "max_tokens": StopReason.MAX_TOKENS,
    "stop_sequence": StopReason.STOP_SEQUENCE,
    "tool_use": StopReason.TOOL_USE,
    "pause_turn": StopReason.PAUSE_TURN,
    "refusal": StopReason.CONTENT_FILTER,
    "model_context_window_exceeded": StopReason.CONTEXT_WINDOW,
}
STOP_TO_ANTHROPIC = {
    StopReason.END_TURN: "end_turn",
    StopReason.MAX_TOKENS: "max_tokens",
    StopReason.STOP_SEQUENCE: "stop_sequence",
    StopReason.TOOL_USE: "tool_use",
    StopReason.CONTENT_FILTER: "refusal",
    StopReason.PAUSE_TURN: "pause_turn",
    StopReason.CONTEXT_WINDOW: "model_context_window_exceeded",
    StopReason.ERROR: "end_turn",
    StopReason.OTHER: "end_turn",
}


def parse_usage(raw: Mapping[str, Any] | None, base: Usage | None = None) -> Usage:
    """Anthropic usage -> canonical (whole prompt = uncached + cache read + cache write).

    ``base`` supplies the fields a streamed ``message_delta`` usage leaves out.
    """
    if not raw:
        return base or Usage()
    base = base or Usage()
    cached = (
        u.int_field(raw, "cache_read_input_tokens")
        if "cache_read_input_tokens" in raw
        else base.cached_tokens
    )
    creation = (
        u.int_field(raw, "cache_creation_input_tokens")
        if "cache_creation_input_tokens" in raw
        else base.cache_creation_tokens
    )
    if "input_tokens" in raw and raw["input_tokens"] is not None:
        prompt = u.int_field(raw, "input_tokens") + cached + creation
    else:
        prompt = (
            base.input_tokens - base.cached_tokens - base.cache_creation_tokens + cached + creation
        )
    details = raw.get("output_tokens_details")
    reasoning = (
        u.int_field(details, "thinking_tokens")
        if isinstance(details, Mapping)
        else base.reasoning_tokens
    )
    output = u.int_field(raw, "output_tokens") if "output_tokens" in raw else base.output_tokens
    return Usage(prompt, output, cached, creation, reasoning)


def render_usage(usage: Usage) -> dict[str, Any]:
    out: dict[str, Any] = {
        "input_tokens": max(
            usage.input_tokens - usage.cached_tokens - usage.cache_creation_tokens, 0
        ),
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": usage.cache_creation_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
    }
    if usage.reasoning_tokens:
        out["output_tokens_details"] = {"thinking_tokens": usage.reasoning_tokens}
    return out


def parse_response(body: Any, *, tool_names: Mapping[str, str] | None = None) -> Response:
    """Parse an Anthropic ``Message`` body.

    Args:
        body: the decoded JSON body.
        tool_names: ``{wire name: client name}`` to restore renamed tools.
    """
    body = body if isinstance(body, dict) else {}
    names = tool_names or {}
    parts: list[ContentPart] = []
    for block in u.items(body.get("content")):
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            parts.append(Text(block["text"]))
        elif kind == "thinking":
            sig = block.get("signature") or None
            parts.append(
                Thinking(str(block.get("thinking") or ""), sig, "anthropic" if sig else None)
            )
        elif kind == "redacted_thinking":
            parts.append(RedactedThinking(str(block.get("data") or "")))
        elif kind == "tool_use":
            call_id, sig = split_signature(str(block.get("id") or ""))
            name = str(block.get("name") or "")
            args = block.get("input")
            parts.append(
                ToolCall(
                    call_id, names.get(name, name), u.dumps(args) if args is not None else "{}", sig
                )
            )
    stop = body.get("stop_reason")
    seq = body.get("stop_sequence")
    return Response(
        id=str(body.get("id") or ""),
        model=str(body.get("model") or ""),
        content=tuple(parts),
        stop_reason=STOP_FROM_ANTHROPIC.get(stop, StopReason.END_TURN)
        if stop
        else StopReason.END_TURN,
        stop_sequence=seq if isinstance(seq, str) else None,
        usage=parse_usage(body.get("usage") if isinstance(body.get("usage"), dict) else None),
    )


def message_id(raw_id: str) -> str:
    return raw_id if raw_id.startswith("msg_") else f"msg_{raw_id}" if raw_id else "msg_gateway"


def thinking_signature(signature: str | None, origin: str | None) -> str:
    """The signature an Anthropic client sees (Gemini ones are marked, names.py)."""
    if not signature:
        return ""
    return GEMINI_SIG_PREFIX + signature if origin == "gemini" else signature


def render_response(resp: Response, *, model: str) -> dict[str, Any]:
    """Render a canonical response as an Anthropic ``Message`` body for a client."""
    content: list[dict[str, Any]] = []
    for p in resp.content:
        if isinstance(p, Text):
            if p.text:
                content.append({"type": "text", "text": p.text})
        elif isinstance(p, Thinking):
            content.append(
                {
                    "type": "thinking",
                    "thinking": p.text,
                    "signature": thinking_signature(p.signature, p.origin),
                }
            )
        elif isinstance(p, RedactedThinking):
            content.append({"type": "redacted_thinking", "data": p.data})
        elif isinstance(p, ToolCall):
            args, _ = u.args_object(p.arguments)
            content.append(
                {
                    "type": "tool_use",
                    "id": embed_signature(wire_call_id(p.id), p.signature),
                    "name": p.name,
                    "input": args,
                }
            )
    stop = STOP_TO_ANTHROPIC[resp.stop_reason]
    return {
        "id": message_id(resp.id),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": resp.stop_sequence if stop == "stop_sequence" else None,
        "usage": render_usage(resp.usage),
    }
