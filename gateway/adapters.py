"""How one call crosses to one target: its upstream body, the answer, the stream. Pure.

:func:`make_adapter` picks:

- :class:`Passthrough` when the client's format is the provider's: the body is
  the client's own with the model swapped and the file's edits applied, the
  answer goes back as is, and the stream is relayed event by event without
  re-encoding (:class:`gateway.relay.EventFramer`);
- :class:`Converting` otherwise: the client's body is parsed into the
  canonical model and rendered in the provider's format; answers and stream
  events are parsed in the provider's format and rendered in the client's
  (design.md, "Conversion"). What the converters drop comes back as ``notes``
  for the caller to log at debug level.

Either way the transformer's ``request`` edits and the model entry's
``max_tokens`` clamp apply to the body that goes upstream.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import trio

from gateway.call import Call
from gateway.convert import CODECS, response_to_stream
from gateway.convert.encoded import dumps_body
from gateway.convert.memo import Memo
from gateway.convert.model import StreamError
from gateway.convert.tokens import estimate_input_tokens
from gateway.errors import ErrorKind, GatewayError, UpstreamError
from gateway.relay import EventFramer, stream_error
from gateway.routing import Target
from gateway.sse import SSEDecoder

__all__ = [
    "OFF_LOOP_BYTES",
    "Converting",
    "Passthrough",
    "make_adapter",
    "off_loop",
    "whole_as_stream",
]

T = TypeVar("T")

#: Bodies and answers from this size on are converted in a worker thread. Conversion is
#: linear, but its costliest shapes (tens of thousands of tiny messages or blocks) took
#: 100-300 ms per MiB when measured (2026-12-07, 80,000 one-line messages: 3 MB in
#: 0.3-1.2 s depending on the pair); up to this size a conversion stalls other requests
#: for tens of milliseconds at worst, and the common agent request (100-200 KB) keeps
#: the loop's lower latency (a thread hand-off costs ~100 µs).
OFF_LOOP_BYTES = 256 << 10


async def off_loop(size: int, work: Callable[[], T]) -> T:
    """``work()``, in a worker thread when ``size`` (the bytes it reads) is large.

    So that nothing CPU-heavy stalls the event loop: ``/health/live`` and every other
    request keep being served while a multi-megabyte body is converted. The work is
    bounded (linear in ``size``), so it is not abandoned on cancellation. What it touches
    must be thread-safe: conversions are pure, and the memo locks its bookkeeping.
    """
    if size < OFF_LOOP_BYTES:
        return work()
    return await trio.to_thread.run_sync(work)


def clamp_max_tokens(body: dict[str, Any], fmt: str, limit: int) -> None:
    """Clamp the body's max tokens (in ``fmt``'s field) to ``limit``, filling it in when absent."""
    if fmt == "gemini":
        config = dict(body.get("generationConfig") or {})
        asked = config.get("maxOutputTokens")
        config["maxOutputTokens"] = min(asked, limit) if isinstance(asked, int) else limit
        body["generationConfig"] = config
        return
    field = "max_tokens"
    if fmt == "openai" and "max_completion_tokens" in body:
        field = "max_completion_tokens"
    asked = body.get(field)
    body[field] = min(asked, limit) if isinstance(asked, int) else limit


def _edited(body: dict[str, Any], call: Call, target: Target) -> bytes:
    t = target.transformer
    body = t.request.apply(body)
    limit = target.entry.max_tokens if target.entry else None
    if limit is not None and call.op != "count_tokens":
        clamp_max_tokens(body, t.format, limit)
    return dumps_body(body)


class FramedRelay:
    """Same-format stream: whole upstream events, unchanged."""

    def __init__(self, fmt: str) -> None:
        self._fmt = fmt
        self._framer = EventFramer()

    def feed(self, chunk: bytes) -> bytes:
        return self._framer.feed(chunk)

    def finish(self) -> bytes:
        return self._framer.flush()

    def error(self, kind: ErrorKind, status: int, message: str) -> bytes:
        return stream_error(self._fmt, kind, status, message)


class ConvertingRelay:
    """Provider SSE bytes -> canonical events -> the client's SSE bytes."""

    def __init__(self, parser: Any, renderer: Any) -> None:
        self._decoder = SSEDecoder()
        self._parser = parser
        self._renderer = renderer

    def _render(self, events: list[Any]) -> list[bytes]:
        render = self._renderer.render
        return [render(c) for ev in events for c in self._parser.feed(ev)]

    def feed(self, chunk: bytes) -> bytes:
        return b"".join(self._render(self._decoder.feed(chunk)))

    def finish(self) -> bytes:
        out = self._render(self._decoder.close())
        out.extend(self._renderer.render(c) for c in self._parser.finish())
        out.append(self._renderer.finish())
        return b"".join(out)

    def error(self, kind: ErrorKind, status: int, message: str) -> bytes:
        return self._renderer.render(StreamError(kind, message, status))  # type: ignore[no-any-return]


class Passthrough:
    """Client and provider speak the same format."""

    notes: tuple[str, ...] = ()

    def __init__(self, call: Call, target: Target) -> None:
        self.call = call
        body = call.body
        if call.fmt != "gemini":  # Gemini names the model and streaming in the URL
            body = {**body, "model": target.upstream_model}
            if not call.stream and body.get("stream"):  # "stream": "emulate" asks for it whole
                body["stream"] = False
                body.pop("stream_options", None)
        self.body = _edited(body, call, target)

    def response(self, data: bytes) -> bytes:
        return data

    def relay(self) -> FramedRelay:
        return FramedRelay(self.call.fmt)


class Converting:
    """Client and provider speak different formats."""

    def __init__(self, call: Call, target: Target, memo: Memo | None = None) -> None:
        self.call = call
        self.client = CODECS[call.fmt]
        self.upstream = CODECS[target.transformer.format]
        self.req, notes = self.client.parse_request(
            call.body, model=call.model, stream=call.stream, memo=memo, size=call.size
        )
        body, more = self.upstream.render_request(
            self.req, upstream_model=target.upstream_model, memo=memo
        )
        self.notes = (*notes, *more)
        self.body = _edited(body, call, target)
        self.tool_names = self.upstream.tool_name_map(self.req)

    def response(self, data: bytes) -> bytes:
        try:
            resp = self.upstream.parse_response(json.loads(data), tool_names=self.tool_names)
        except (ValueError, GatewayError) as exc:
            raise UpstreamError(
                f"The provider's answer could not be read as {self.upstream.name} JSON: {exc}"
            ) from None
        return dumps_body(self.client.render_response(resp, model=self.call.model))

    def relay(self) -> ConvertingRelay:
        options: dict[str, Any] = {"include_usage": self.req.include_usage}
        if self.client.name == "anthropic":  # message_start wants input tokens up front
            options["input_tokens"] = estimate_input_tokens(self.req)
        return ConvertingRelay(
            self.upstream.stream_parser(tool_names=self.tool_names),
            self.client.stream_renderer(self.call.model, **options),
        )

    def estimated_input_tokens(self) -> int:
        """A rough count for count_tokens on providers without one."""
        return estimate_input_tokens(self.req)


def whole_as_stream(
    call: Call, upstream_fmt: str, data: bytes, adapter: Passthrough | Converting
) -> bytes:
    """A provider's whole answer as the client's stream ("stream": "emulate")."""
    upstream, client = CODECS[upstream_fmt], CODECS[call.fmt]
    tool_names = adapter.tool_names if isinstance(adapter, Converting) else None
    try:
        resp = upstream.parse_response(json.loads(data), tool_names=tool_names)
    except (ValueError, GatewayError) as exc:
        raise UpstreamError(
            f"The provider's answer could not be read as {upstream.name} JSON: {exc}"
        ) from None
    if isinstance(adapter, Converting):
        include_usage = adapter.req.include_usage
    else:
        include_usage = client.parse_request(call.body, model=call.model, stream=True)[
            0
        ].include_usage
    renderer = client.stream_renderer(call.model, include_usage=include_usage)
    out = [renderer.render(event) for event in response_to_stream(resp)]
    out.append(renderer.finish())
    return b"".join(out)


def make_adapter(call: Call, target: Target, memo: Memo | None = None) -> Passthrough | Converting:
    """The adapter for ``call`` on ``target`` (BadRequest when it cannot be expressed there).

    ``memo`` lets a conversion reuse what an earlier request of the same conversation
    shares with this one (gateway.convert.memo); the body is the same either way.
    """
    if call.fmt == target.transformer.format:
        return Passthrough(call, target)
    return Converting(call, target, memo)
