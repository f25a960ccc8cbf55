"""Gemini ``GenerateContentResponse`` <-> canonical :class:`~gateway.convert.model.Response`.

Contract (wire-formats §3.4, §4.11, §4.12, §5.3): :func:`parse_response` reads
candidate 0 and never raises on an odd body. ``finishReason: STOP`` with
function calls is ``tool_use`` (§5.3 item 19); a prompt blocked before any
candidate is ``content_filter``. Function calls without an id get a
deterministic one from the response id; their ``thoughtSignature`` stays on the
call. Text parts are concatenated verbatim (§5.3 item 22).
:func:`render_response` produces a body ``google.genai.types.GenerateContentResponse``
validates, whose candidate always has at least one part (the SDK's chat history
drops turns with empty content).
"""

from __future__ import annotations

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
from gateway.convert.names import synth_call_id

__all__ = [
    "STOP_FROM_GEMINI",
    "STOP_TO_GEMINI",
    "parse_response",
    "parse_usage",
    "render_response",
    "render_usage",
]

_FILTERED = (
    "SAFETY",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
    "LANGUAGE",
    "ESCALATION",
    "PUP_LIMITED_DISABLED",
    "MODEL_ARMOR",
    "RECITATION",
    "IMAGE_RECITATION",
)
_FAILED = (
    "MALFORMED_FUNCTION_CALL",
    "UNEXPECTED_TOOL_CALL",
    "TOO_MANY_TOOL_CALLS",
    "MALFORMED_RESPONSE",
    "MISSING_THOUGHT_SIGNATURE",
)
STOP_FROM_GEMINI: dict[str, StopReason] = {
    "STOP": StopReason.END_TURN,
    "MAX_TOKENS": StopReason.MAX_TOKENS,
    "CONTINUATION": StopReason.MAX_TOKENS,
    **dict.fromkeys(_FILTERED, StopReason.CONTENT_FILTER),
    **dict.fromkeys(_FAILED, StopReason.ERROR),
}
STOP_TO_GEMINI = {
    StopReason.END_TURN: "STOP",
    StopReason.STOP_SEQUENCE: "STOP",
    StopReason.TOOL_USE: "STOP",
    StopReason.PAUSE_TURN: "STOP",
    StopReason.MAX_TOKENS: "MAX_TOKENS",
    StopReason.CONTEXT_WINDOW: "MAX_TOKENS",
    StopReason.CONTENT_FILTER: "SAFETY",
    StopReason.ERROR: "OTHER",
    StopReason.OTHER: "OTHER",
}


def stop_from_gemini(reason: Any, saw_call: bool) -> StopReason:
    stop = (
        STOP_FROM_GEMINI.get(reason, StopReason.OTHER)
        if isinstance(reason, str)
        else StopReason.END_TURN
    )
    if saw_call and stop is StopReason.END_TURN:
        return StopReason.TOOL_USE
    return stop


def parse_usage(raw: Mapping[str, Any] | None) -> Usage:
    if not raw:
        return Usage()
    thoughts = u.int_field(raw, "thoughtsTokenCount")
    return Usage(
        input_tokens=u.int_field(raw, "promptTokenCount")
        + u.int_field(raw, "toolUsePromptTokenCount"),
        output_tokens=u.int_field(raw, "candidatesTokenCount") + thoughts,
        cached_tokens=u.int_field(raw, "cachedContentTokenCount"),
        reasoning_tokens=thoughts,
    )


def render_usage(usage: Usage) -> dict[str, Any]:
    out: dict[str, Any] = {
        "promptTokenCount": usage.input_tokens,
        "candidatesTokenCount": max(usage.output_tokens - usage.reasoning_tokens, 0),
        "totalTokenCount": usage.input_tokens + usage.output_tokens,
    }
    if usage.cached_tokens:
        out["cachedContentTokenCount"] = usage.cached_tokens
    if usage.reasoning_tokens:
        out["thoughtsTokenCount"] = usage.reasoning_tokens
    return out


def parse_part(
    part: Mapping[str, Any], response_id: str | None, n_calls: int, names: Mapping[str, str]
) -> ContentPart | None:
    """One response part -> canonical (None for parts other formats cannot hold)."""
    sig = part.get("thoughtSignature")
    sig = sig if isinstance(sig, str) and sig else None
    text = part.get("text")
    if isinstance(text, str):
        if part.get("thought") is True:
            return Thinking(text, sig, "gemini" if sig else None)
        return Text(text) if text else None
    fc = part.get("functionCall")
    if isinstance(fc, Mapping):
        call_id = fc.get("id") if isinstance(fc.get("id"), str) and fc.get("id") else None
        name = str(fc.get("name") or "")
        args = fc.get("args")
        return ToolCall(
            call_id or synth_call_id(response_id, n_calls),
            names.get(name, name),
            u.dumps(args if args is not None else {}),
            sig,
        )
    return None


def parse_response(body: Any, *, tool_names: Mapping[str, str] | None = None) -> Response:
    """Parse a Gemini ``GenerateContentResponse`` (candidate 0).

    Args:
        body: the decoded JSON body.
        tool_names: ``{wire name: client name}`` to restore renamed tools.
    """
    body = body if isinstance(body, dict) else {}
    names = tool_names or {}
    rid = body.get("responseId") if isinstance(body.get("responseId"), str) else None
    candidates = body.get("candidates")
    cand = (
        candidates[0]
        if isinstance(candidates, list) and candidates and isinstance(candidates[0], dict)
        else None
    )
    parts: list[ContentPart] = []
    calls = 0
    if cand is not None:
        content = cand.get("content")
        if not isinstance(content, dict):
            content = {}
        for raw in u.items(content.get("parts")):
            if not isinstance(raw, dict):
                continue
            part = parse_part(raw, rid, calls, names)
            if part is None:
                continue
            if isinstance(part, ToolCall):
                calls += 1
            parts.append(part)
        parts = _join_texts(parts)
        stop = stop_from_gemini(cand.get("finishReason"), calls > 0)
    else:
        feedback = body.get("promptFeedback")
        blocked = isinstance(feedback, dict) and feedback.get("blockReason")
        stop = StopReason.CONTENT_FILTER if blocked else StopReason.OTHER
    usage = body.get("usageMetadata")
    return Response(
        id=rid or "",
        model=str(body.get("modelVersion") or ""),
        content=tuple(parts),
        stop_reason=stop,
        usage=parse_usage(usage if isinstance(usage, dict) else None),
    )


def render_part(p: ContentPart) -> dict[str, Any] | None:
    """A canonical part as a Gemini response part (None when it has no Gemini form)."""
    if isinstance(p, Text):
        return {"text": p.text} if p.text else None
    if isinstance(p, Thinking):
        part: dict[str, Any] = {"text": p.text, "thought": True}
        if p.signature and p.origin == "gemini":
            part["thoughtSignature"] = p.signature
        return part
    if isinstance(p, ToolCall):
        args, _ = u.args_object(p.arguments)
        part = {"functionCall": {"id": p.id, "name": p.name, "args": args}}
        if p.signature:
            part["thoughtSignature"] = p.signature
        return part
    return None


def render_response(resp: Response, *, model: str) -> dict[str, Any]:
    """Render a canonical response as a Gemini ``GenerateContentResponse`` for a client."""
    parts = [r for r in (render_part(p) for p in resp.content) if r is not None]
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": parts or [{"text": ""}]},
                "finishReason": STOP_TO_GEMINI[resp.stop_reason],
                "index": 0,
            }
        ],
        "usageMetadata": render_usage(resp.usage),
        "modelVersion": model,
        "responseId": resp.id or "gateway",
    }


def _join_texts(parts: list[ContentPart]) -> list[ContentPart]:
    """Consecutive text parts as one, each run joined once (not part by part)."""
    out: list[ContentPart] = []
    run: list[str] = []
    for part in parts:
        if isinstance(part, Text):
            run.append(part.text)
            continue
        if run:
            out.append(Text("".join(run)))
            run = []
        out.append(part)
    if run:
        out.append(Text("".join(run)))
    return out
