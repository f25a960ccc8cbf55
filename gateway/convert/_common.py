"""Conversion rules shared by more than one format (wire-formats §4.3, §4.13).

Pure helpers; no format owns them, so they live here instead of being copied.
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.convert.model import (
    ContentPart,
    Message,
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


def merge_messages(messages: Iterable[Message]) -> list[Message]:
    """Messages in order, each run of same-role messages merged into one (not system ones).

    A merged user message keeps its tool results ahead of its other content (wire-formats
    §4.3 rule 1): the parts up to the last merged message that brings a tool result are
    reordered results first, as merging them one at a time would. Empty messages are
    dropped. An unmerged message is kept as it is: parsers build one :class:`Message` per
    wire message (the unit :class:`~gateway.convert.memo.Memo` keeps), so it is the same
    object from one request of a conversation to the next.

    Linear in the number of parts: a run is joined once, never part by part (adding one
    message at a time to a tuple would copy the run for every message).
    """
    out: list[Message] = []
    runs: dict[int, list[Message]] = {}  # position in ``out`` -> the messages merged there
    for message in messages:
        if not message.content:
            continue
        if out and out[-1].role == message.role and message.role != "system":
            at = len(out) - 1
            run = runs.get(at)
            if run is None:
                runs[at] = [out[at], message]
            else:
                run.append(message)
        else:
            out.append(message)
    for at, run in runs.items():
        out[at] = _merge_run(run)
    return out


def _merge_run(run: list[Message]) -> Message:
    role = run[0].role
    last = 0  # the last merged message (after the first) that brings a tool result
    if role == "user":
        for k in range(len(run) - 1, 0, -1):
            if any(isinstance(p, ToolResult) for p in run[k].content):
                last = k
                break
    parts: list[ContentPart] = []
    if last:
        head = [p for m in run[: last + 1] for p in m.content]
        parts.extend(p for p in head if isinstance(p, ToolResult))
        parts.extend(p for p in head if not isinstance(p, ToolResult))
        run = run[last + 1 :]
    for m in run:
        parts.extend(m.content)
    return Message(role, tuple(parts))


def defer_system_messages(messages: tuple[Message, ...]) -> tuple[Message, ...]:
    """Move system messages that sit between tool calls and their results after the results.

    Anthropic and OpenAI both want a turn's tool results right after the calls;
    a system note in between would orphan them. One pass: each run of system messages
    is looked at once.
    """
    out: list[Message] = []
    n = len(messages)
    k = 0
    while k < n:
        cur = messages[k]
        if cur.role != "system":
            out.append(cur)
            k += 1
            continue
        j = k
        while j < n and messages[j].role == "system":
            j += 1
        prev = out[-1] if out else None
        if (
            prev is not None
            and prev.role == "assistant"
            and j < n
            and any(isinstance(p, ToolCall) for p in prev.content)
            and any(isinstance(p, ToolResult) for p in messages[j].content)
        ):
            out.append(messages[j])
            out.extend(messages[k:j])
            k = j + 1
        else:
            out.extend(messages[k:j])
            k = j
    return tuple(out)


def result_text(result: ToolResult) -> str:
    """The text of a tool result: its text parts, one per line (other parts left out).

    Joined with a newline, as Anthropic's own models see separate text blocks: glued
    together, ``["line one", "line two"]`` would read ``line oneline two``.
    """
    return "\n".join(p.text for p in result.content if isinstance(p, Text))


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
