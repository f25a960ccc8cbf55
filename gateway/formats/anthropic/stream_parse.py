"""Anthropic Messages SSE -> canonical stream events (wire-formats §2.5, §4.14).

Contract. One :class:`StreamParser` per stream (no shared state, §5.2 item 7),
a pure state machine fed one event at a time. It turns an Anthropic upstream's
events into canonical ones: tool-use blocks get an ordinal over the stream's
tool calls (the block index also counts text and thinking blocks);
``message_delta`` usage is cumulative and merged over ``message_start``'s
(§5.2 item 9); ``message_stop`` is the Stop; ``event: error`` is a
StreamError. An upstream that ends without ``message_stop`` or
``message_delta`` is an error, never a silent end_turn. The renderer is
:mod:`gateway.formats.anthropic.stream_render`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from gateway.convert import _util as u
from gateway.convert.model import (
    MessageStart,
    RedactedThinkingDelta,
    SignatureDelta,
    Stop,
    StopReason,
    StreamError,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageUpdate,
)
from gateway.convert.names import split_signature
from gateway.errors import ErrorKind
from gateway.formats.anthropic.errors import error_from_object
from gateway.formats.anthropic.response import (
    STOP_FROM_ANTHROPIC,
    parse_usage,
)

if TYPE_CHECKING:
    from gateway.sse import Event

__all__ = ["StreamParser"]

_ENDED_EARLY = "The upstream stream ended before the response was complete."
_UNREADABLE = "The upstream stream sent an event that is not a JSON object."
_BAD_INDEX = "The upstream stream sent a content block whose index is not an integer."


class StreamParser:
    """Anthropic upstream SSE events -> canonical stream events.

    Args:
        tool_names: ``{wire name: client name}`` to restore renamed tools.
    """

    def __init__(self, *, tool_names: Mapping[str, str] | None = None) -> None:
        self._names = tool_names or {}
        #: Block index (an int, or None when the event has none) -> tool ordinal.
        self._tool_of_block: dict[int | None, int] = {}
        self._next_tool = 0
        self._usage = Usage()
        self._stop: StopReason | None = None
        self._stop_sequence: str | None = None
        self._done = False

    def feed(self, event: Event) -> list[StreamEvent]:
        """Canonical events for one upstream SSE event (possibly none)."""
        if self._done:
            return []
        try:
            obj = json.loads(event.data)
        except (ValueError, RecursionError):
            return self._unreadable(event.data)
        if not isinstance(obj, dict):
            return self._unreadable(event.data)
        kind = obj.get("type") or event.event
        index = obj.get("index")
        if index is not None and type(index) is not int:  # it keys a dict: never a list/dict
            self._done = True
            return [StreamError(ErrorKind.API_ERROR, _BAD_INDEX, 502)]
        if kind == "content_block_delta":
            return self._delta(obj)
        if kind == "content_block_start":
            return self._start(obj)
        if kind == "content_block_stop":
            tool = self._tool_of_block.get(obj.get("index"))
            return [ToolCallEnd(tool)] if tool is not None else []
        if kind == "message_delta":
            return self._message_delta(obj)
        if kind == "message_start":
            msg = obj.get("message")
            if not isinstance(msg, dict):
                msg = {}
            usage = msg.get("usage")
            self._usage = parse_usage(usage if isinstance(usage, dict) else None)
            return [
                MessageStart(str(msg.get("id") or ""), str(msg.get("model") or ""), self._usage)
            ]
        if kind == "message_stop":
            self._done = True
            return [Stop(self._stop or StopReason.END_TURN, self._stop_sequence)]
        if kind == "error":
            self._done = True
            found = error_from_object(obj)
            kind_, message = found or (ErrorKind.API_ERROR, "upstream stream error")
            return [StreamError(kind_, message)]
        return []  # ping, unknown events

    def _unreadable(self, data: str) -> list[StreamEvent]:
        """An event that is not a JSON object: an error, never a silent skip (blank: ignored)."""
        if not data.strip():
            return []
        self._done = True
        return [StreamError(ErrorKind.API_ERROR, _UNREADABLE, 502)]

    def finish(self) -> list[StreamEvent]:
        """Events owed when the upstream body ended."""
        if self._done:
            return []
        self._done = True
        if self._stop is not None:
            return [Stop(self._stop, self._stop_sequence)]
        return [StreamError(ErrorKind.API_ERROR, _ENDED_EARLY)]

    def _delta(self, obj: dict[str, Any]) -> list[StreamEvent]:
        delta = obj.get("delta")
        if not isinstance(delta, dict):
            return []
        kind = delta.get("type")
        if kind == "text_delta":
            text = delta.get("text")
            return [TextDelta(text)] if isinstance(text, str) and text else []
        if kind == "input_json_delta":
            tool = self._tool_of_block.get(obj.get("index"))
            part = delta.get("partial_json")
            if tool is None or not isinstance(part, str) or not part:
                return []
            return [ToolCallDelta(tool, part)]
        if kind == "thinking_delta":
            text = delta.get("thinking")
            return [ThinkingDelta(text)] if isinstance(text, str) and text else []
        if kind == "signature_delta":
            sig = delta.get("signature")
            return [SignatureDelta(sig, "anthropic")] if isinstance(sig, str) and sig else []
        return []  # citations_delta and future kinds

    def _start(self, obj: dict[str, Any]) -> list[StreamEvent]:
        block = obj.get("content_block")
        if not isinstance(block, dict):
            return []
        kind = block.get("type")
        if kind == "text":
            text = block.get("text")
            return [TextDelta(text)] if isinstance(text, str) and text else []
        if kind == "thinking":
            text = block.get("thinking")
            return [ThinkingDelta(text)] if isinstance(text, str) and text else []
        if kind == "redacted_thinking":
            return [RedactedThinkingDelta(str(block.get("data") or ""))]
        if kind == "tool_use":
            tool = self._next_tool
            self._next_tool += 1
            self._tool_of_block[obj.get("index")] = tool
            call_id, sig = split_signature(str(block.get("id") or ""))
            name = str(block.get("name") or "")
            out: list[StreamEvent] = [
                ToolCallStart(tool, call_id, self._names.get(name, name), sig)
            ]
            if block.get("input"):
                out.append(ToolCallDelta(tool, u.dumps(block["input"])))
            return out
        return []  # server-tool blocks have no equivalent elsewhere

    def _message_delta(self, obj: dict[str, Any]) -> list[StreamEvent]:
        delta = obj.get("delta")
        if isinstance(delta, dict):
            stop = delta.get("stop_reason")
            if isinstance(stop, str):
                self._stop = STOP_FROM_ANTHROPIC.get(stop, StopReason.END_TURN)
            seq = delta.get("stop_sequence")
            self._stop_sequence = seq if isinstance(seq, str) else None
        usage = obj.get("usage")
        if not isinstance(usage, dict):
            return []
        self._usage = parse_usage(usage, self._usage)
        return [UsageUpdate(self._usage)]
