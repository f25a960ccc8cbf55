"""Canonical stream events -> Anthropic Messages SSE (wire-formats §2.5, §4.14).

Contract. One :class:`StreamRenderer` per stream (no shared state, §5.2 item 7),
a pure state machine fed one event at a time. It writes a stream the
Anthropic SDK and Claude Code accept: ``message_start``; one block at a time,
each ``content_block_start`` / deltas / ``content_block_stop``, indices
counting up from 0 (§5.2 item 6); one block per tool call even when an OpenAI
upstream interleaves the fragments of parallel calls (the first open call
streams live, the others are held back and sent whole when it ends, so no
block is ever written after its stop, §5.2 item 5); ``message_delta`` with the
stop reason and the final usage (always present, zeros if the upstream gave
none, §5.2 item 8), then ``message_stop``. Every event has its ``event:`` line
(the SDK skips events without one). Output is compact JSON; nothing is
re-validated per event. The parser is :mod:`gateway.formats.anthropic.stream_parse`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from gateway.convert import _util as u
from gateway.convert.model import (
    MessageStart,
    RedactedThinkingDelta,
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
from gateway.convert.names import embed_signature, wire_call_id
from gateway.errors import ErrorKind
from gateway.formats.anthropic.errors import error_body
from gateway.formats.anthropic.response import (
    STOP_TO_ANTHROPIC,
    message_id,
    render_usage,
    thinking_signature,
)

__all__ = ["StreamRenderer", "encode"]

_ENDED_EARLY = "The upstream stream ended before the response was complete."


def encode(name: str, payload: Mapping[str, Any]) -> bytes:
    """One Anthropic SSE event: ``event:`` line, compact JSON ``data:`` line, blank line."""
    return f"event: {name}\ndata: {u.dumps(payload)}\n\n".encode("utf-8", "backslashreplace")


class _Block:
    __slots__ = ("buf", "ended", "index", "kind", "sealed", "signature", "start", "tool")

    def __init__(self, kind: str, start: dict[str, Any], tool: int | None = None) -> None:
        self.kind = kind  # "text" | "thinking" | "tool" | "redacted"
        self.start = start  # the content_block of content_block_start
        self.tool = tool
        self.index: int | None = None  # set once the block is on the wire
        self.buf: list[str] = []  # held-back deltas while the block waits
        self.signature: str | None = None
        self.ended = kind == "redacted"
        self.sealed = False  # a thinking block that got its signature


_DELTA_KEY = {
    "text": ("text_delta", "text"),
    "thinking": ("thinking_delta", "thinking"),
    "tool": ("input_json_delta", "partial_json"),
}


class StreamRenderer:
    """Canonical stream events -> Anthropic SSE bytes for a client.

    Args:
        model: the model name the client asked for.
        include_usage: accepted for interface symmetry; Anthropic streams always
            carry usage.
        input_tokens: the prompt size to announce in ``message_start`` when the
            upstream gives none there (OpenAI reports usage only at the end;
            ``tokens.estimate_input_tokens``). The final ``message_delta``
            carries the real count.
    """

    def __init__(
        self, model: str, *, include_usage: bool = True, input_tokens: int | None = None
    ) -> None:
        self._model = model
        self._input_estimate = input_tokens
        self._started = False
        self._done = False
        self._next_index = 0
        self._live: _Block | None = None
        self._pending: deque[_Block] = deque()
        self._tools: dict[int, _Block] = {}
        self._usage = Usage()

    def render(self, event: StreamEvent) -> bytes:
        """SSE bytes for one canonical event (b"" when it produces nothing yet)."""
        if self._done:
            return b""
        out: list[bytes] = []
        if not self._started and not isinstance(event, StreamError):
            self._message_start(event if isinstance(event, MessageStart) else None, out)
            if isinstance(event, MessageStart):
                return b"".join(out)
        if isinstance(event, TextDelta):
            self._write("text", {"type": "text", "text": ""}, event.text, out)
        elif isinstance(event, ToolCallDelta):
            self._tool_delta(event, out)
        elif isinstance(event, ThinkingDelta):
            self._write(
                "thinking", {"type": "thinking", "thinking": "", "signature": ""}, event.text, out
            )
        elif isinstance(event, ToolCallStart):
            self._tool_start(event, out)
        elif isinstance(event, ToolCallEnd):
            self._tool_end(event.index, out)
        elif isinstance(event, SignatureDelta):
            self._signature(event, out)
        elif isinstance(event, RedactedThinkingDelta):
            blk = self._target("redacted", {"type": "redacted_thinking", "data": event.data}, out)
            if blk is self._live:
                self._close_live(out)
        elif isinstance(event, UsageUpdate):
            self._usage = event.usage
        elif isinstance(event, Stop):
            self._stop(event, out)
        elif isinstance(event, StreamError):
            self._error(event.kind, event.message, out)
        return b"".join(out)

    def finish(self) -> bytes:
        """Bytes owed at the end: an error if the stream never completed."""
        if self._done:
            return b""
        out: list[bytes] = []
        self._error(ErrorKind.API_ERROR, _ENDED_EARLY, out)
        return b"".join(out)

    # -- message frame ---------------------------------------------------------------------

    def _message_start(self, start: MessageStart | None, out: list[bytes]) -> None:
        self._started = True
        usage = start.usage if start is not None and start.usage is not None else None
        if usage is None or not usage.input_tokens:
            usage = Usage(input_tokens=self._input_estimate or 0)
        self._usage = usage
        message: dict[str, Any] = {
            "id": message_id(start.id if start is not None else ""),
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": render_usage(usage),
        }
        out.append(encode("message_start", {"type": "message_start", "message": message}))

    def _stop(self, event: Stop, out: list[bytes]) -> None:
        self._flush_all(out)
        stop = STOP_TO_ANTHROPIC[event.reason]
        delta = {
            "stop_reason": stop,
            "stop_sequence": event.stop_sequence if stop == "stop_sequence" else None,
        }
        payload = {"type": "message_delta", "delta": delta, "usage": render_usage(self._usage)}
        out.append(encode("message_delta", payload))
        out.append(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
        self._done = True

    def _error(self, kind: ErrorKind, message: str, out: list[bytes]) -> None:
        out.append(encode("error", error_body(kind, 500, message)))
        self._done = True

    # -- blocks ----------------------------------------------------------------------------

    def _blocked(self) -> bool:
        """True while a tool block is on the wire and may still get fragments."""
        live = self._live
        return live is not None and live.kind == "tool" and not live.ended

    def _target(
        self, kind: str, start: dict[str, Any], out: list[bytes], tool: int | None = None
    ) -> _Block:
        """The block that takes the next piece of ``kind`` content (opening one if needed)."""
        if not self._blocked():
            live = self._live
            if live is not None:
                if live.kind == kind and kind in ("text", "thinking") and not live.sealed:
                    return live
                self._close_live(out)
            blk = _Block(kind, start, tool)
            self._open(blk, out)
            return blk
        last = self._pending[-1] if self._pending else None
        if (
            last is not None
            and last.kind == kind
            and kind in ("text", "thinking")
            and not last.sealed
        ):
            return last
        blk = _Block(kind, start, tool)
        self._pending.append(blk)
        return blk

    def _open(self, blk: _Block, out: list[bytes]) -> None:
        blk.index = self._next_index
        self._next_index += 1
        self._live = blk
        out.append(
            encode(
                "content_block_start",
                {"type": "content_block_start", "index": blk.index, "content_block": blk.start},
            )
        )

    def _delta(self, blk: _Block, piece: str, out: list[bytes]) -> None:
        name, key = _DELTA_KEY[blk.kind]
        out.append(
            f'event: content_block_delta\ndata: {{"type":"content_block_delta","index":{blk.index},'
            f'"delta":{{"type":"{name}","{key}":{u.jstr(piece)}}}}}\n\n'.encode(
                "utf-8", "backslashreplace"
            )
        )

    def _write(self, kind: str, start: dict[str, Any], piece: str, out: list[bytes]) -> None:
        blk = self._target(kind, start, out)
        if blk is self._live:
            self._delta(blk, piece, out)
        else:
            blk.buf.append(piece)

    def _signature(self, event: SignatureDelta, out: list[bytes]) -> None:
        sig = thinking_signature(event.signature, event.origin)
        blk = self._target("thinking", {"type": "thinking", "thinking": "", "signature": ""}, out)
        blk.sealed = True
        if blk is self._live:
            out.append(
                encode(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": blk.index,
                        "delta": {"type": "signature_delta", "signature": sig},
                    },
                )
            )
        else:
            blk.signature = sig

    def _close_live(self, out: list[bytes]) -> None:
        blk = self._live
        if blk is None:
            return
        self._live = None
        out.append(encode("content_block_stop", {"type": "content_block_stop", "index": blk.index}))
        self._flush_pending(out)

    def _flush_pending(self, out: list[bytes]) -> None:
        """Put held-back blocks on the wire, in order, until one stays open."""
        while self._pending and self._live is None:
            blk = self._pending.popleft()
            self._open(blk, out)
            if blk.buf:
                self._delta(blk, "".join(blk.buf), out)
                blk.buf.clear()
            if blk.signature is not None:
                out.append(
                    encode(
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": blk.index,
                            "delta": {"type": "signature_delta", "signature": blk.signature},
                        },
                    )
                )
            done = blk.ended if blk.kind in ("tool", "redacted") else bool(self._pending)
            if done:
                self._live = None
                out.append(
                    encode("content_block_stop", {"type": "content_block_stop", "index": blk.index})
                )

    def _flush_all(self, out: list[bytes]) -> None:
        for blk in self._pending:
            blk.ended = True
        if self._live is not None:
            self._live.ended = True
        self._close_live(out)
        if self._live is not None:  # the last pending text/thinking block stayed open
            self._close_live(out)

    # -- tools -----------------------------------------------------------------------------

    def _tool_start(self, event: ToolCallStart, out: list[bytes]) -> None:
        start = {
            "type": "tool_use",
            "id": embed_signature(wire_call_id(event.id), event.signature),
            "name": event.name,
            "input": {},
        }
        self._tools[event.index] = self._target("tool", start, out, event.index)

    def _tool_delta(self, event: ToolCallDelta, out: list[bytes]) -> None:
        blk = self._tools.get(event.index)
        if blk is None or not event.arguments:
            return
        if blk is self._live:
            self._delta(blk, event.arguments, out)
        elif blk.index is None:
            blk.buf.append(event.arguments)

    def _tool_end(self, index: int, out: list[bytes]) -> None:
        blk = self._tools.get(index)
        if blk is None:
            return
        blk.ended = True
        if blk is self._live:
            self._close_live(out)
