"""Canonical stream events -> Gemini ``streamGenerateContent?alt=sse`` (§3.5, §4.14).

Contract. One :class:`StreamRenderer` per stream, a pure state machine fed one
event at a time. It writes ``data: <json>\\r\\n\\r\\n`` events as Gemini does.
Every chunk has a candidate with at least one non-empty part (the SDK's chat
history drops a turn with an empty chunk). Tool calls are sent whole, with
object arguments, when they end (§4.14 e); the last chunk carries
``finishReason`` and ``usageMetadata``. No ``[DONE]``. The parser is
:mod:`gateway.formats.gemini.stream_parse`.
"""

from __future__ import annotations

from typing import Any

from gateway.convert import _util as u
from gateway.convert._common import status_for_kind
from gateway.convert.model import (
    MessageStart,
    SignatureDelta,
    Stop,
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
from gateway.errors import ErrorKind
from gateway.formats.gemini.errors import error_body
from gateway.formats.gemini.response import (
    STOP_TO_GEMINI,
    render_usage,
)

__all__ = ["StreamRenderer"]

_ENDED_EARLY = "The upstream stream ended before the response was complete."


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
        if not self._suffix:
            self._begin(event if isinstance(event, MessageStart) else None)
        if isinstance(event, TextDelta):
            if not event.text:
                return b""
            text = u.jstr(event.text)
            return (
                f'data: {{"candidates":[{{"content":{{"role":"model","parts":[{{"text":{text}}}]}},'
                f'"index":0}}]{self._suffix}\r\n\r\n'
            ).encode("utf-8", "backslashreplace")
        if isinstance(event, ToolCallDelta):
            call = self._calls.get(event.index)
            if call is not None:
                call.args.append(event.arguments)
            return b""
        if isinstance(event, ThinkingDelta):
            return self._chunk([{"text": event.text, "thought": True}])
        if isinstance(event, ToolCallStart):
            self._calls[event.index] = _Call(event)
            return b""
        if isinstance(event, ToolCallEnd):
            call = self._calls.pop(event.index, None)
            return self._chunk([call.part()]) if call is not None else b""
        if isinstance(event, SignatureDelta):
            if event.origin != "gemini":
                return b""  # another provider's signature means nothing to Gemini
            part = {"text": "", "thought": True, "thoughtSignature": event.signature}
            return self._chunk([part])
        if isinstance(event, UsageUpdate):
            self._usage = event.usage
            return b""
        if isinstance(event, Stop):
            return self._stop(event)
        if isinstance(event, StreamError):
            return self._error(event.kind, event.message, event.status)
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
        return f"data: {u.dumps(error_body(kind, code, message))}\r\n\r\n".encode(
            "utf-8", "backslashreplace"
        )
