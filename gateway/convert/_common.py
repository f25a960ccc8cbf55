"""Conversion rules shared by more than one format (wire-formats §4.3, §4.13).

Pure helpers; no format owns them, so they live here instead of being copied.
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.convert.model import (
    ContentPart,
    Message,
    Role,
    Text,
    ToolCall,
    ToolResult,
)
from gateway.errors import ErrorKind

#: OpenAI ``reasoning_effort`` -> Anthropic ``budget_tokens`` (litellm defaults, §4.13).
ANTHROPIC_EFFORT_BUDGET = {
    "minimal": 1024,
    "low": 1024,
    "medium": 2048,
    "high": 4096,
    "xhigh": 8192,
    "max": 16384,
}
#: OpenAI ``reasoning_effort`` -> Gemini ``thinkingBudget`` (Google's own compat layer).
GEMINI_EFFORT_BUDGET = {
    "minimal": 512,
    "low": 1024,
    "medium": 8192,
    "high": 24576,
    "xhigh": 32768,
    "max": 32768,
}
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")


def budget_to_effort(budget: int) -> str:
    """Thinking budget -> effort bucket (musistudio/llms ``getThinkLevel``, §4.13)."""
    if budget <= 0:
        return "none"
    if budget <= 1024:
        return "low"
    if budget <= 8192:
        return "medium"
    return "high"


def append_message(out: list[Message], role: Role, parts: Iterable[ContentPart]) -> None:
    """Append a message, merging it into the previous one when the role repeats.

    A user message's tool results are kept ahead of its other content
    (wire-formats §4.3 rule 1).
    """
    parts = tuple(parts)
    if not parts:
        return
    if out and out[-1].role == role and role != "system":
        merged = out[-1].content + parts
        if role == "user" and any(isinstance(p, ToolResult) for p in parts):
            results = tuple(p for p in merged if isinstance(p, ToolResult))
            merged = results + tuple(p for p in merged if not isinstance(p, ToolResult))
        out[-1] = Message(role, merged)
    else:
        out.append(Message(role, parts))


def add_message(out: list[Message], message: Message) -> None:
    """:func:`append_message` for a message already built: kept as it is unless it merges.

    Parsers build one :class:`Message` per wire message (the unit
    :class:`~gateway.convert.memo.Memo` keeps), so an unmerged message is the same object
    from one request of a conversation to the next.
    """
    if not message.content:
        return
    if out and out[-1].role == message.role and message.role != "system":
        append_message(out, message.role, message.content)
    else:
        out.append(message)


def defer_system_messages(messages: tuple[Message, ...]) -> tuple[Message, ...]:
    """Move system messages that sit between tool calls and their results after the results.

    Anthropic and OpenAI both want a turn's tool results right after the calls;
    a system note in between would orphan them.
    """
    out = list(messages)
    i = 1
    while i < len(out) - 1:
        prev, cur = out[i - 1], out[i]
        if (
            cur.role == "system"
            and prev.role == "assistant"
            and any(isinstance(p, ToolCall) for p in prev.content)
        ):
            j = i
            while j < len(out) and out[j].role == "system":
                j += 1
            if j < len(out) and any(isinstance(p, ToolResult) for p in out[j].content):
                out[i : j + 1] = [out[j], *out[i:j]]
                i = j + 1
                continue
        i += 1
    return tuple(out)


def result_text(result: ToolResult) -> str:
    """The text of a tool result (its text parts joined; other parts left out)."""
    return "".join(p.text for p in result.content if isinstance(p, Text))


def call_names(messages: Iterable[Message]) -> dict[str, str]:
    """``{call id: tool name}`` over every tool call in a history."""
    return {
        p.id: p.name
        for m in messages
        if m.role == "assistant"
        for p in m.content
        if isinstance(p, ToolCall)
    }


def kind_for_status(status: int) -> ErrorKind:
    """The error kind an HTTP status means when the body says nothing better."""
    if status in (401,):
        return ErrorKind.AUTHENTICATION
    if status in (402, 403):
        return ErrorKind.PERMISSION
    if status == 404:
        return ErrorKind.NOT_FOUND
    if status == 413:
        return ErrorKind.REQUEST_TOO_LARGE
    if status == 429:
        return ErrorKind.RATE_LIMIT
    if status in (503, 529):
        return ErrorKind.OVERLOADED
    if status in (408, 504):
        return ErrorKind.TIMEOUT
    if 400 <= status < 500:
        return ErrorKind.INVALID_REQUEST
    return ErrorKind.API_ERROR


def status_for_kind(kind: ErrorKind) -> int:
    """A representative HTTP status for an error kind (in-stream Gemini errors carry one)."""
    return _STATUS_BY_KIND[kind]


_STATUS_BY_KIND = {
    ErrorKind.INVALID_REQUEST: 400,
    ErrorKind.AUTHENTICATION: 401,
    ErrorKind.PERMISSION: 403,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.REQUEST_TOO_LARGE: 413,
    ErrorKind.RATE_LIMIT: 429,
    ErrorKind.OVERLOADED: 503,
    ErrorKind.API_ERROR: 500,
    ErrorKind.TIMEOUT: 504,
}


def error_message_of(raw: bytes, limit: int = 2000) -> str:
    """A non-JSON upstream error body as a short printable message."""
    text = raw.decode("utf-8", "replace").strip()
    return text[:limit] if text else "(empty error body)"
