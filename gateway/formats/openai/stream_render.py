"""Canonical stream events -> OpenAI Chat Completions SSE (wire-formats §1.5, §4.14).

Contract. One :class:`StreamRenderer` per stream, a pure state machine fed one
event at a time. It writes chunks ``openai.types.chat.ChatCompletionChunk``
validates: a first chunk with the role, one chunk per delta, tool calls with
their canonical index, the finish chunk, the usage chunk only when the client
asked for it (``stream_options.include_usage``), then ``data: [DONE]``. After
an in-stream error there is no ``[DONE]`` (§5.2 item 10). Chunks are built
from a prefix made once per stream, so the per-event cost is one small
``json.dumps``. The parser is :mod:`gateway.formats.openai.stream_parse`.
"""

from __future__ import annotations

import time
from typing import Any

from gateway.convert import _util as u
from gateway.convert.model import (
    MessageStart,
    Stop,
    StreamError,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    ToolCallStart,
    Usage,
    UsageUpdate,
)
from gateway.convert.names import embed_signature
from gateway.errors import ErrorKind
from gateway.formats.openai.errors import error_body
from gateway.formats.openai.response import (
    STOP_TO_OPENAI,
    completion_id,
    render_usage,
)

__all__ = ["StreamRenderer"]

_ENDED_EARLY = "The upstream stream ended before the response was complete."


class StreamRenderer:
    """Canonical stream events -> OpenAI ``chat.completion.chunk`` SSE bytes for a client.

    Args:
        model: the model name the client asked for.
        include_usage: send the usage chunk (``stream_options.include_usage``).
        reasoning: send thinking as the ``reasoning_content`` extension.
        created: the ``created`` stamp (default: the upstream's, else now).
    """

    def __init__(
        self,
        model: str,
        *,
        include_usage: bool = False,
        reasoning: bool = False,
        created: int | None = None,
    ) -> None:
        self._model = model
        self._include_usage = include_usage
        self._reasoning = reasoning
        self._created = created
        self._prefix = ""
        self._base = ""
        self._done = False
        self._usage = Usage()

    def render(self, event: StreamEvent) -> bytes:
        """SSE bytes for one canonical event (b"" when it produces nothing)."""
        if self._done:
            return b""
        head = b""
        if not self._prefix and not isinstance(event, StreamError):
            head = self._begin(event if isinstance(event, MessageStart) else None)
            if isinstance(event, MessageStart):
                return head
        if isinstance(event, TextDelta):
            text = u.jstr(event.text)
            return (
                head
                + f'data: {self._prefix}{{"content":{text}}},"finish_reason":null}}]}}\n\n'.encode(
                    "utf-8", "backslashreplace"
                )
            )
        if isinstance(event, ToolCallDelta):
            if not event.arguments:
                return head
            frag = {"index": event.index, "function": {"arguments": event.arguments}}
            return head + self._chunk({"tool_calls": [frag]})
        if isinstance(event, ToolCallStart):
            frag = {
                "index": event.index,
                "id": embed_signature(event.id, event.signature),
                "type": "function",
                "function": {"name": event.name, "arguments": ""},
            }
            return head + self._chunk({"tool_calls": [frag]})
        if isinstance(event, ThinkingDelta):
            if self._reasoning:
                return head + self._chunk({"reasoning_content": event.text})
            return head
        if isinstance(event, UsageUpdate):
            self._usage = event.usage
            return head
        if isinstance(event, Stop):
            return head + self._stop(event)
        if isinstance(event, StreamError):
            return self._error(event.kind, event.message)
        return head  # signatures, redacted thinking, tool ends: nothing to say

    def finish(self) -> bytes:
        """Bytes owed at the end: an error if the stream never completed."""
        if self._done:
            return b""
        return self._error(ErrorKind.API_ERROR, _ENDED_EARLY)

    def _begin(self, start: MessageStart | None) -> bytes:
        created = self._created
        if created is None:
            created = (
                start.created
                if start is not None and start.created is not None
                else int(time.time())
            )
        cid = completion_id(start.id if start is not None else "")
        self._base = (
            f'{{"id":{u.dumps(cid)},"object":"chat.completion.chunk","created":{created},'
            f'"model":{u.dumps(self._model)},'
        )
        self._prefix = self._base + '"choices":[{"index":0,"delta":'
        return self._chunk({"role": "assistant", "content": ""})

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        tail = "null" if finish is None else f'"{finish}"'
        return f'data: {self._prefix}{u.dumps(delta)},"finish_reason":{tail}}}]}}\n\n'.encode(
            "utf-8", "backslashreplace"
        )

    def _stop(self, event: Stop) -> bytes:
        self._done = True
        out = [self._chunk({}, STOP_TO_OPENAI[event.reason])]
        if self._include_usage:
            usage = u.dumps(render_usage(self._usage))
            out.append(
                f'data: {self._base}"choices":[],"usage":{usage}}}\n\n'.encode(
                    "utf-8", "backslashreplace"
                )
            )
        out.append(b"data: [DONE]\n\n")
        return b"".join(out)

    def _error(self, kind: ErrorKind, message: str) -> bytes:
        self._done = True
        return f"data: {u.dumps(error_body(kind, 500, message))}\n\n".encode(
            "utf-8", "backslashreplace"
        )
