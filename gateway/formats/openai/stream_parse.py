"""OpenAI Chat Completions SSE -> canonical stream events (wire-formats §1.5, §4.14).

Contract. One :class:`StreamParser` per stream, a pure state machine fed one
event at a time. It reads choice 0 of an OpenAI-compatible upstream: text,
refusal and the ``reasoning_content``/``reasoning`` extension; tool-call
fragments keyed strictly by ``tool_calls[].index`` (interleaved parallel calls
stay apart, §5.2 item 5), held back until the fragment that carries both id
and name (§5.2 item 15); content before finish in a combined chunk (§5.2 item
11). ``finish_reason`` ends every call; usage (the separate ``choices: []``
chunk) becomes a UsageUpdate; ``[DONE]`` or the end of the body gives the
Stop. A body that ends with no ``finish_reason`` is an error, not an end_turn.
An upstream that answers ``stop`` after making tool calls is read as tool_use.
The renderer is :mod:`gateway.formats.openai.stream_render`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from gateway.convert.model import (
    MessageStart,
    Stop,
    StopReason,
    StreamError,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    UsageUpdate,
)
from gateway.convert.names import split_signature
from gateway.errors import ErrorKind
from gateway.formats.openai.errors import error_from_object
from gateway.formats.openai.response import (
    STOP_FROM_OPENAI,
    parse_usage,
)

if TYPE_CHECKING:
    from gateway.sse import Event

__all__ = ["StreamParser"]

_ENDED_EARLY = "The upstream stream ended before the response was complete."
_UNREADABLE = "The upstream stream sent an event that is not a JSON object."


class _Call:
    __slots__ = ("args", "id", "name", "ordinal", "started")

    def __init__(self, ordinal: int) -> None:
        self.ordinal = ordinal
        self.id = ""
        self.name = ""
        self.args: list[str] = []
        self.started = False


class StreamParser:
    """OpenAI upstream SSE events -> canonical stream events.

    Args:
        tool_names: ``{wire name: client name}`` to restore renamed tools.
    """

    def __init__(self, *, tool_names: Mapping[str, str] | None = None) -> None:
        self._names = tool_names or {}
        self._started = False
        self._calls: dict[int, _Call] = {}
        self._n_calls = 0
        self._finish: str | None = None
        self._done = False

    def feed(self, event: Event) -> list[StreamEvent]:
        """Canonical events for one upstream SSE event (possibly none)."""
        if self._done:
            return []
        data = event.data
        if data.startswith("[DONE]"):
            return self._end()
        try:
            chunk = json.loads(data)
        except (ValueError, RecursionError):
            return self._unreadable(data)
        if not isinstance(chunk, dict):
            return self._unreadable(data)
        if "error" in chunk:
            self._done = True
            found = error_from_object(chunk)
            kind, message = found or (ErrorKind.API_ERROR, "upstream stream error")
            return [StreamError(kind, message)]
        out: list[StreamEvent] = []
        if not self._started:
            self._started = True
            created = chunk.get("created")
            out.append(
                MessageStart(
                    str(chunk.get("id") or ""),
                    str(chunk.get("model") or ""),
                    None,
                    created if isinstance(created, int) else None,
                )
            )
        choices = chunk.get("choices")
        if isinstance(choices, list) and choices:
            choice = choices[0]
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                self._choice(choice, out)
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            out.append(UsageUpdate(parse_usage(usage)))
        return out

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
        if self._finish is None:
            self._done = True
            return [StreamError(ErrorKind.API_ERROR, _ENDED_EARLY)]
        return self._end()

    def _end(self) -> list[StreamEvent]:
        self._done = True
        out: list[StreamEvent] = []
        self._close_calls(out)
        reason = STOP_FROM_OPENAI.get(self._finish or "stop", StopReason.END_TURN)
        if reason is StopReason.END_TURN and self._n_calls:
            reason = StopReason.TOOL_USE
        out.append(Stop(reason))
        return out

    def _choice(self, choice: dict[str, Any], out: list[StreamEvent]) -> None:
        delta = choice.get("delta")
        if type(delta) is dict and len(delta) == 1:  # the hot path: {"content": "..."}
            text = delta.get("content")
            if type(text) is str:
                if text:
                    out.append(TextDelta(text))
                delta = None
        if isinstance(delta, dict):
            for key in ("reasoning_content", "reasoning"):
                text = delta.get(key)
                if isinstance(text, str) and text:
                    out.append(ThinkingDelta(text))
                    break
            text = delta.get("content")
            if isinstance(text, str) and text:
                out.append(TextDelta(text))
            text = delta.get("refusal")
            if isinstance(text, str) and text:
                out.append(TextDelta(text))
            calls = delta.get("tool_calls")
            if isinstance(calls, list):
                for pos, frag in enumerate(calls):
                    if isinstance(frag, dict):
                        self._fragment(frag, pos, out)
        finish = choice.get("finish_reason")
        if isinstance(finish, str) and finish:
            self._finish = finish
            self._close_calls(out)

    def _fragment(self, frag: dict[str, Any], pos: int, out: list[StreamEvent]) -> None:
        index = frag.get("index")
        index = index if isinstance(index, int) else pos
        fn = frag.get("function")
        if not isinstance(fn, dict):
            fn = {}
        frag_id = frag.get("id") if isinstance(frag.get("id"), str) else ""
        call = self._calls.get(index)
        if call is not None and frag_id and call.id and frag_id != call.id:
            # A new call reusing an index (some compatible servers): close the old one.
            if call.started:
                out.append(ToolCallEnd(call.ordinal))
            call = None
        if call is None:
            call = self._calls[index] = _Call(self._n_calls)
            self._n_calls += 1
        if frag_id:
            call.id = frag_id
        name = fn.get("name")
        if isinstance(name, str) and name:
            call.name = name
        args = fn.get("arguments")
        if isinstance(args, str) and args:
            if call.started:
                out.append(ToolCallDelta(call.ordinal, args))
                return
            call.args.append(args)
        if not call.started and call.id and call.name:
            self._start_call(call, out)

    def _start_call(self, call: _Call, out: list[StreamEvent]) -> None:
        call.started = True
        call_id, sig = split_signature(call.id or f"call_{call.ordinal}")
        out.append(ToolCallStart(call.ordinal, call_id, self._names.get(call.name, call.name), sig))
        if call.args:
            out.append(ToolCallDelta(call.ordinal, "".join(call.args)))
            call.args.clear()

    def _close_calls(self, out: list[StreamEvent]) -> None:
        for call in self._calls.values():
            if not call.started:
                self._start_call(call, out)  # an id-less call still reaches the client
            out.append(ToolCallEnd(call.ordinal))
        self._calls.clear()
