"""Gemini ``streamGenerateContent?alt=sse`` <-> canonical stream events (§3.5, §4.14).

Contract. One :class:`StreamParser` and one :class:`StreamRenderer` per stream;
both are pure state machines fed one event at a time.

:class:`StreamParser`: every chunk is a whole ``GenerateContentResponse`` whose
parts are the *new* content. Text and thought text become deltas verbatim
(never joined with separators, §5.3 item 22); a ``functionCall`` arrives whole
and becomes start / one argument delta / end, with an id from the upstream or
made up from the response id and a running counter (stable for the whole
stream, §4.14 c); its ``thoughtSignature`` travels with the call.
``usageMetadata`` is a snapshot (the last one wins); ``STOP`` after function
calls is tool_use (§5.3 item 19). Gemini sends no terminator, so the Stop comes
from :meth:`StreamParser.finish` at the end of the body; a body that ends
without a ``finishReason`` is an error. ``{"error": ...}`` is a StreamError.

:class:`StreamRenderer` writes ``data: <json>\\r\\n\\r\\n`` events as Gemini does.
Every chunk has a candidate with at least one non-empty part (the SDK's chat
history drops a turn with an empty chunk). Tool calls are sent whole, with
object arguments, when they end (§4.14 e); the last chunk carries
``finishReason`` and ``usageMetadata``. No ``[DONE]``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from gateway.convert import _util as u
from gateway.convert._common import status_for_kind
from gateway.convert.gemini.errors import error_from_object
from gateway.convert.gemini.response import (
    STOP_TO_GEMINI,
    parse_part,
    parse_usage,
    render_usage,
    stop_from_gemini,
)
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
from gateway.errors import ErrorKind, error_body

if TYPE_CHECKING:
    from gateway.sse import Event

__all__ = ["StreamParser", "StreamRenderer"]

_ENDED_EARLY = "The upstream stream ended before the response was complete."
_UNREADABLE = "The upstream stream sent an event that is not a JSON object."


# == upstream -> canonical ===================================================================


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


# == canonical -> client =====================================================================


class _Call:
    __slots__ = ("args", "id", "name", "signature")

    def __init__(self, start: ToolCallStart) -> None:
        self.id = start.id
        self.name = start.name
        self.signature = start.signature
        self.args: list[str] = []

    def part(self) -> dict[str, Any]:
        args, _ = u.args_object("".join(self.args))
        part: dict[str, Any] = {"functionCall": {"id": self.id, "name": self.name, "args": args}}
        if self.signature:
            part["thoughtSignature"] = self.signature
        return part


class StreamRenderer:
    """Canonical stream events -> Gemini SSE bytes for a client.

    Args:
        model: the model name the client asked for (``modelVersion``).
        include_usage: accepted for interface symmetry; Gemini chunks carry usage.
    """

    def __init__(self, model: str, *, include_usage: bool = True) -> None:
        self._model = model
        self._response_id = "gateway"
        self._suffix = ""
        self._calls: dict[int, _Call] = {}
        self._usage = Usage()
        self._done = False

    def render(self, event: StreamEvent) -> bytes:
        """SSE bytes for one canonical event (b"" when it produces nothing yet)."""
        if self._done:
            return b""
        kind = type(event)
        if not self._suffix:
            self._begin(event if kind is MessageStart else None)  # type: ignore[arg-type]
        if kind is TextDelta:
            if not event.text:  # type: ignore[union-attr]
                return b""
            text = u.jstr(event.text)  # type: ignore[union-attr]
            return (
                f'data: {{"candidates":[{{"content":{{"role":"model","parts":[{{"text":{text}}}]}},'
                f'"index":0}}]{self._suffix}\r\n\r\n'
            ).encode("utf-8", "backslashreplace")
        if kind is ToolCallDelta:
            call = self._calls.get(event.index)  # type: ignore[union-attr]
            if call is not None:
                call.args.append(event.arguments)  # type: ignore[union-attr]
            return b""
        if kind is ThinkingDelta:
            return self._chunk([{"text": event.text, "thought": True}])  # type: ignore[union-attr]
        if kind is ToolCallStart:
            self._calls[event.index] = _Call(event)  # type: ignore[arg-type,union-attr]
            return b""
        if kind is ToolCallEnd:
            call = self._calls.pop(event.index, None)  # type: ignore[union-attr]
            return self._chunk([call.part()]) if call is not None else b""
        if kind is SignatureDelta:
            if event.origin != "gemini":  # type: ignore[union-attr]
                return b""  # another provider's signature means nothing to Gemini
            part = {"text": "", "thought": True, "thoughtSignature": event.signature}  # type: ignore[union-attr]
            return self._chunk([part])
        if kind is UsageUpdate:
            self._usage = event.usage  # type: ignore[union-attr]
            return b""
        if kind is Stop:
            return self._stop(event)  # type: ignore[arg-type]
        if kind is StreamError:
            return self._error(event.kind, event.message, event.status)  # type: ignore[union-attr]
        return b""  # MessageStart, redacted thinking

    def finish(self) -> bytes:
        """Bytes owed at the end: an error if the stream never completed."""
        if self._done:
            return b""
        return self._error(ErrorKind.API_ERROR, _ENDED_EARLY, None)

    def _begin(self, start: MessageStart | None) -> None:
        if start is not None and start.id:
            self._response_id = start.id
        self._suffix = (
            f',"modelVersion":{u.dumps(self._model)},"responseId":{u.dumps(self._response_id)}}}'
        )

    def _chunk(self, parts: list[dict[str, Any]]) -> bytes:
        body = u.dumps(parts)
        return (
            f'data: {{"candidates":[{{"content":{{"role":"model","parts":{body}}},"index":0}}]'
            f"{self._suffix}\r\n\r\n"
        ).encode("utf-8", "backslashreplace")

    def _stop(self, event: Stop) -> bytes:
        self._done = True
        parts = [call.part() for call in self._calls.values()] or [{"text": ""}]
        self._calls.clear()
        final = {
            "candidates": [
                {
                    "content": {"role": "model", "parts": parts},
                    "finishReason": STOP_TO_GEMINI[event.reason],
                    "index": 0,
                }
            ],
            "usageMetadata": render_usage(self._usage),
            "modelVersion": self._model,
            "responseId": self._response_id,
        }
        return f"data: {u.dumps(final)}\r\n\r\n".encode("utf-8", "backslashreplace")

    def _error(self, kind: ErrorKind, message: str, status: int | None) -> bytes:
        self._done = True
        code = status or status_for_kind(kind)
        return f"data: {u.dumps(error_body('gemini', kind, code, message))}\r\n\r\n".encode(
            "utf-8", "backslashreplace"
        )
