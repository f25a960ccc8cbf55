"""Streams from whole responses and whole responses from streams (wire-formats §4.14 f).

Contract: both directions are pure and exact inverses on what a stream can say.

- :func:`response_to_stream` is stream emulation (a provider with
  ``"stream": "emulate"``, design.md): a canonical Response becomes the full
  canonical event sequence (MessageStart, content in order, one UsageUpdate, Stop),
  ready for any format's StreamRenderer. Text may be cut into several deltas.
- :func:`accumulate` folds canonical stream events back into a Response, for a
  client that asked for no stream from an upstream that only streams. A
  StreamError in the events is raised as an :class:`~gateway.errors.UpstreamError`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gateway.convert.model import (
    ContentPart,
    MessageStart,
    RedactedThinking,
    RedactedThinkingDelta,
    Response,
    SignatureDelta,
    Stop,
    StopReason,
    StreamError,
    StreamEvent,
    Text,
    TextDelta,
    Thinking,
    ThinkingDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageUpdate,
)
from gateway.errors import UpstreamError

__all__ = ["accumulate", "response_to_stream", "split_text"]


def split_text(text: str, pieces: int) -> list[str]:
    """Cut ``text`` into about ``pieces`` deltas at word boundaries (never empty ones)."""
    if pieces <= 1 or len(text) < 2:
        return [text] if text else []
    words = text.split(" ")
    per = max(1, -(-len(words) // pieces))
    out = []
    for i in range(0, len(words), per):
        chunk = " ".join(words[i : i + per])
        out.append(chunk if i + per >= len(words) else chunk + " ")
    return [c for c in out if c]


def response_to_stream(resp: Response, *, text_pieces: int = 1) -> list[StreamEvent]:
    """The canonical event sequence that streams ``resp``.

    Args:
        resp: a whole canonical response.
        text_pieces: cut each text part into about this many deltas.
    """
    start_usage = Usage(
        input_tokens=resp.usage.input_tokens,
        cached_tokens=resp.usage.cached_tokens,
        cache_creation_tokens=resp.usage.cache_creation_tokens,
    )
    events: list[StreamEvent] = [MessageStart(resp.id, resp.model, start_usage, resp.created)]
    tool = 0
    for part in resp.content:
        if isinstance(part, Text):
            events.extend(TextDelta(t) for t in split_text(part.text, text_pieces))
        elif isinstance(part, Thinking):
            if part.text:
                events.append(ThinkingDelta(part.text))
            if part.signature:
                events.append(SignatureDelta(part.signature, part.origin))
        elif isinstance(part, RedactedThinking):
            events.append(RedactedThinkingDelta(part.data))
        elif isinstance(part, ToolCall):
            events.append(ToolCallStart(tool, part.id, part.name, part.signature))
            if part.arguments:
                events.append(ToolCallDelta(tool, part.arguments))
            events.append(ToolCallEnd(tool))
            tool += 1
    events.append(UsageUpdate(resp.usage))
    events.append(Stop(resp.stop_reason, resp.stop_sequence))
    return events


def accumulate(events: Iterable[StreamEvent]) -> Response:
    """Fold a canonical event stream into one Response.

    Raises:
        UpstreamError: the stream carried a StreamError (its kind and message).
    """
    rid, model, created = "", "", None
    usage = Usage()
    stop, stop_sequence = StopReason.END_TURN, None
    # Text and thinking grow as lists of deltas, joined once at the end: a str grown one
    # delta at a time would be copied for every delta (quadratic in a long answer).
    parts: list[Any] = []
    calls: dict[int, list[str]] = {}
    heads: dict[int, ToolCallStart] = {}
    slot: dict[int, int] = {}
    for ev in events:
        if isinstance(ev, TextDelta):
            last = parts[-1] if parts else None
            if isinstance(last, _Growing) and last.kind == "text":
                last.chunks.append(ev.text)
            else:
                parts.append(_Growing("text", ev.text))
        elif isinstance(ev, ThinkingDelta):
            last = parts[-1] if parts else None
            if isinstance(last, _Growing) and last.kind == "thinking":
                last.chunks.append(ev.text)
            else:
                parts.append(_Growing("thinking", ev.text))
        elif isinstance(ev, SignatureDelta):
            last = parts[-1] if parts else None
            if isinstance(last, _Growing) and last.kind == "thinking":
                parts[-1] = Thinking("".join(last.chunks), ev.signature, ev.origin)
            else:
                parts.append(Thinking("", ev.signature, ev.origin))
        elif isinstance(ev, RedactedThinkingDelta):
            parts.append(RedactedThinking(ev.data))
        elif isinstance(ev, ToolCallStart):
            heads[ev.index] = ev
            calls[ev.index] = []
            slot[ev.index] = len(parts)
            parts.append(ToolCall(ev.id, ev.name, "", ev.signature))
        elif isinstance(ev, ToolCallDelta):
            if ev.index in calls:
                calls[ev.index].append(ev.arguments)
        elif isinstance(ev, MessageStart):
            rid, model, created = ev.id, ev.model, ev.created
            usage = ev.usage or usage
        elif isinstance(ev, UsageUpdate):
            usage = ev.usage
        elif isinstance(ev, Stop):
            stop, stop_sequence = ev.reason, ev.stop_sequence
        elif isinstance(ev, StreamError):
            raise UpstreamError(ev.message, kind=ev.kind, status_hint=ev.status)
    for index, pieces in calls.items():
        head = heads[index]
        parts[slot[index]] = ToolCall(head.id, head.name, "".join(pieces) or "{}", head.signature)
    content: list[ContentPart] = [p.part() if isinstance(p, _Growing) else p for p in parts]
    return Response(rid, model, tuple(content), stop, stop_sequence, usage, created)


class _Growing:
    """An open text or (unsigned) thinking part, as its deltas so far."""

    __slots__ = ("chunks", "kind")

    def __init__(self, kind: str, first: str) -> None:
        self.kind = kind
        self.chunks = [first]

    def part(self) -> ContentPart:
        text = "".join(self.chunks)
        return Text(text) if self.kind == "text" else Thinking(text)
