"""Anthropic Messages SSE <-> canonical stream events (wire-formats §2.5, §4.14).

Contract. One :class:`StreamParser` and one :class:`StreamRenderer` per stream
(no shared state, §5.2 item 7); both are pure state machines fed one event at
a time.

:class:`StreamParser` turns an Anthropic upstream's events into canonical ones:
tool-use blocks get an ordinal over the stream's tool calls (the block index
also counts text and thinking blocks); ``message_delta`` usage is cumulative
and merged over ``message_start``'s (§5.2 item 9); ``message_stop`` is the
Stop; ``event: error`` is a StreamError. An upstream that ends without
``message_stop`` or ``message_delta`` is an error, never a silent end_turn.

:class:`StreamRenderer` writes a stream the Anthropic SDK and Claude Code
accept: ``message_start``; one block at a time, each ``content_block_start`` /
deltas / ``content_block_stop``, indices counting up from 0 (§5.2 item 6); one
block per tool call even when an OpenAI upstream interleaves the fragments of
parallel calls (the first open call streams live, the others are held back and
sent whole when it ends, so no block is ever written after its stop, §5.2
item 5); ``message_delta`` with the stop reason and the final usage
(always present, zeros if the upstream gave none, §5.2 item 8), then
``message_stop``. Every event has its ``event:`` line (the SDK skips events
without one). Output is compact JSON; nothing is re-validated per event.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from gateway.convert import _util as u
from gateway.convert.anthropic.errors import error_from_object
from gateway.convert.anthropic.response import (
    STOP_FROM_ANTHROPIC,
    STOP_TO_ANTHROPIC,
    message_id,
    parse_usage,
    render_usage,
    thinking_signature,
)
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
from gateway.convert.names import embed_signature, split_signature, wire_call_id
from gateway.errors import ErrorKind, error_body

if TYPE_CHECKING:
    from gateway.sse import Event

__all__ = ["StreamParser", "StreamRenderer", "encode"]

_ENDED_EARLY = "The upstream stream ended before the response was complete."
_UNREADABLE = "The upstream stream sent an event that is not a JSON object."
_BAD_INDEX = "The upstream stream sent a content block whose index is not an integer."


def encode(name: str, payload: Mapping[str, Any]) -> bytes:
    """One Anthropic SSE event: ``event:`` line, compact JSON ``data:`` line, blank line."""
    return f"event: {name}\ndata: {u.dumps(payload)}\n\n".encode("utf-8", "backslashreplace")


# == upstream -> canonical ===================================================================


class StreamParser:
    """Anthropic upstream SSE events -> canonical stream events.

    Args:
        tool_names: ``{wire name: client name}`` to restore renamed tools.
    """

    def __init__(self, *, tool_names: Mapping[str, str] | None = None) -> None:
        self._names = tool_names or {}
        self._tool_of_block: dict[int, int] = {}
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
            tool = self._tool_of_block.get(obj.get("index"))  # type: ignore[arg-type]
            return [ToolCallEnd(tool)] if tool is not None else []
        if kind == "message_delta":
            return self._message_delta(obj)
        if kind == "message_start":
            msg = obj.get("message") if isinstance(obj.get("message"), dict) else {}
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
            tool = self._tool_of_block.get(obj.get("index"))  # type: ignore[arg-type]
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
            self._tool_of_block[obj.get("index")] = tool  # type: ignore[index]
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


# == canonical -> client =====================================================================


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
        kind = type(event)
        if kind is TextDelta:
            self._write("text", {"type": "text", "text": ""}, event.text, out)  # type: ignore[union-attr]
        elif kind is ToolCallDelta:
            self._tool_delta(event, out)  # type: ignore[arg-type]
        elif kind is ThinkingDelta:
            self._write(
                "thinking", {"type": "thinking", "thinking": "", "signature": ""}, event.text, out
            )  # type: ignore[union-attr]
        elif kind is ToolCallStart:
            self._tool_start(event, out)  # type: ignore[arg-type]
        elif kind is ToolCallEnd:
            self._tool_end(event.index, out)  # type: ignore[union-attr]
        elif kind is SignatureDelta:
            self._signature(event, out)  # type: ignore[arg-type]
        elif kind is RedactedThinkingDelta:
            blk = self._target("redacted", {"type": "redacted_thinking", "data": event.data}, out)  # type: ignore[union-attr]
            if blk is self._live:
                self._close_live(out)
        elif kind is UsageUpdate:
            self._usage = event.usage  # type: ignore[union-attr]
        elif kind is Stop:
            self._stop(event, out)  # type: ignore[arg-type]
        elif kind is StreamError:
            self._error(event.kind, event.message, out)  # type: ignore[union-attr]
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
        message = {
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
        out.append(encode("error", error_body("anthropic", kind, 500, message)))
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
