"""Gemini ``streamGenerateContent?alt=sse`` -> canonical stream events (§3.5, §4.14).

Contract. One :class:`StreamParser` per stream, a pure state machine fed one
event at a time. Every chunk is a whole ``GenerateContentResponse`` whose parts
are the *new* content. Text and thought text become deltas verbatim (never
joined with separators, §5.3 item 22); a ``functionCall`` arrives whole and
becomes start / one argument delta / end, with an id from the upstream or made
up from the response id and a running counter (stable for the whole stream,
§4.14 c); its ``thoughtSignature`` travels with the call. ``usageMetadata`` is
a snapshot (the last one wins); ``STOP`` after function calls is tool_use
(§5.3 item 19). Gemini sends no terminator, so the Stop comes from
:meth:`StreamParser.finish` at the end of the body; a body that ends without a
``finishReason`` is an error. ``{"error": ...}`` is a StreamError. The renderer
is :mod:`gateway.formats.gemini.stream_render`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from gateway.convert.model import (
    MessageStart,
    SignatureDelta,
    Stop,
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
from gateway.errors import ErrorKind
from gateway.formats.gemini.errors import error_from_object
from gateway.formats.gemini.response import (
    parse_part,
    parse_usage,
    stop_from_gemini,
)

if TYPE_CHECKING:
    from gateway.sse import Event

__all__ = ["StreamParser"]

_ENDED_EARLY = "The upstream stream ended before the response was complete."
_UNREADABLE = "The upstream stream sent an event that is not a JSON object."


class StreamParser:
    """Gemini upstream SSE events -> canonical stream events.

    Args:
        tool_names: ``{wire name: client name}`` to restore renamed tools.
    """

    def __init__(self, *, tool_names: Mapping[str, str] | None = None) -> None:
        self._names = tool_names or {}
        self._started = False
        self._response_id: str | None = None
        self._n_calls = 0
        self._finish: Any = None
        self._blocked = False
        self._last_usage: dict[str, Any] | None = None
        self._done = False

    def feed(self, event: Event) -> list[StreamEvent]:
        """Canonical events for one upstream SSE event (possibly none)."""
        if self._done:
            return []
        try:
            chunk = json.loads(event.data)
        except (ValueError, RecursionError):
            return self._unreadable(event.data)
        if isinstance(chunk, list) and chunk:  # tolerate the array framing of non-SSE streams
            chunk = chunk[0]
        if not isinstance(chunk, dict):
            return self._unreadable(event.data)
        if "error" in chunk:
            self._done = True
            found = error_from_object(chunk)
            kind, message, code = found or (ErrorKind.API_ERROR, "upstream stream error", 500)
            return [StreamError(kind, message, code)]
        out: list[StreamEvent] = []
        raw_usage = chunk.get("usageMetadata")
        usage = None
        if isinstance(raw_usage, dict) and raw_usage != self._last_usage:  # repeats are common
            self._last_usage = raw_usage
            usage = parse_usage(raw_usage)
        if not self._started:
            self._started = True
            rid = chunk.get("responseId")
            self._response_id = rid if isinstance(rid, str) else None
            # The prompt side is known from the first chunk (§5.2 item 8).
            prompt = Usage(usage.input_tokens, 0, usage.cached_tokens) if usage else None
            out.append(
                MessageStart(self._response_id or "", str(chunk.get("modelVersion") or ""), prompt)
            )
        candidates = chunk.get("candidates")
        if isinstance(candidates, list) and candidates and isinstance(candidates[0], dict):
            self._candidate(candidates[0], out)
        else:
            feedback = chunk.get("promptFeedback")
            if isinstance(feedback, dict) and feedback.get("blockReason"):
                self._blocked = True
        if usage is not None:
            out.append(UsageUpdate(usage))
        return out

    def _unreadable(self, data: str) -> list[StreamEvent]:
        """An event that is not a JSON object: an error, never a silent skip (blank: ignored)."""
        if not data.strip():
            return []
        self._done = True
        return [StreamError(ErrorKind.API_ERROR, _UNREADABLE, 502)]

    def finish(self) -> list[StreamEvent]:
        """Events owed when the upstream body ended: the Stop, or an error."""
        if self._done:
            return []
        self._done = True
        if self._blocked and self._finish is None:
            return [Stop(stop_from_gemini("SAFETY", False))]
        if self._finish is None:
            return [StreamError(ErrorKind.API_ERROR, _ENDED_EARLY)]
        return [Stop(stop_from_gemini(self._finish, self._n_calls > 0))]

    def _candidate(self, cand: dict[str, Any], out: list[StreamEvent]) -> None:
        content = cand.get("content")
        parts = content.get("parts") if isinstance(content, dict) else None
        if isinstance(parts, list):
            for raw in parts:
                if not isinstance(raw, dict):
                    continue
                text = raw.get("text")
                if type(text) is str and "thought" not in raw:  # the hot path: plain text
                    if text:
                        out.append(TextDelta(text))
                    continue
                part = parse_part(raw, self._response_id, self._n_calls, self._names)
                if isinstance(part, Text):
                    out.append(TextDelta(part.text))
                elif isinstance(part, Thinking):
                    if part.text:
                        out.append(ThinkingDelta(part.text))
                    if part.signature:
                        out.append(SignatureDelta(part.signature, "gemini"))
                elif isinstance(part, ToolCall):
                    n = self._n_calls
                    self._n_calls += 1
                    out.append(ToolCallStart(n, part.id, part.name, part.signature))
                    out.append(ToolCallDelta(n, part.arguments))
                    out.append(ToolCallEnd(n))
        finish = cand.get("finishReason")
        if isinstance(finish, str) and finish:
            self._finish = finish
