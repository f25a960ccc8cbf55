"""How one call crosses to one target: its upstream body, the answer, the stream.

:func:`make_adapter` picks:

- :class:`Passthrough` when the client's format is the provider's: the body is
  the client's own with the model swapped and the file's edits applied, the
  answer goes back as is, and the stream is relayed event by event without
  re-encoding (:class:`gateway.proxy.relay.FramedRelay`);
- :class:`Converting` otherwise: the client's body is parsed into the
  canonical model and rendered in the provider's format; answers and stream
  events are parsed in the provider's format and rendered in the client's
  (design.md, "Conversion"), the stream through
  :class:`gateway.proxy.relay.ConvertingRelay`. What the converters drop comes
  back as ``notes`` for the caller to log at debug level.

The provider's whole answer is read here too (:func:`read_answer`: a JSON object
of the format's shape, else a 502), and turned into the client's stream when the
file emulates streaming (:func:`whole_as_stream`). Big bodies and answers are
converted in a worker thread (:func:`off_loop`); all else here is pure.

Either way the transformer's ``request`` edits and the model entry's
``max_tokens`` clamp apply to the body that goes upstream, and every byte
that goes back to the client (answers, stream events, in-stream errors)
passes the request's :class:`~gateway.redact.Redactor`: a provider that
echoes its key, whole or in part, never shows it to the client.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import trio

from gateway.call import Call
from gateway.convert.emulate import response_to_stream
from gateway.convert.encoded import dumps_body
from gateway.convert.memo import Memo
from gateway.convert.model import Response, Usage
from gateway.convert.tokens import estimate_input_tokens
from gateway.errors import GatewayError, UpstreamError
from gateway.formats import FORMATS, Format
from gateway.proxy.relay import ConvertingRelay, FramedRelay
from gateway.redact import NO_REDACTION, Redactor
from gateway.routing import Target
from gateway.usage import UsageReader

__all__ = [
    "OFF_LOOP_BYTES",
    "Adapter",
    "Converting",
    "Passthrough",
    "make_adapter",
    "off_loop",
    "parse_answer",
    "read_answer",
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


def _edited(body: dict[str, Any], call: Call, target: Target) -> bytes:
    """The upstream body with the file's ``request`` edits and the entry's max-tokens clamp
    (in the provider format's field)."""
    t = target.transformer
    body = t.request.apply(body)
    limit = target.entry.max_tokens if target.entry else None
    if limit is not None and call.op != "count_tokens":
        FORMATS[t.format].wire.clamp_max_tokens(body, limit)
    return dumps_body(body)


class Passthrough:
    """Client and provider speak the same format."""

    notes: tuple[str, ...] = ()

    def __init__(self, call: Call, target: Target, redactor: Redactor = NO_REDACTION) -> None:
        self.call = call
        self.redactor = redactor
        #: The usage the provider reported in its answer (None: none read yet).
        self.usage: Usage | None = None
        wire = FORMATS[call.fmt].wire
        if call.op == "count_tokens":  # Gemini's goes upstream without the file's edits
            count_body = wire.count_tokens_body(call.body, target.upstream_model)
            if count_body is not None:
                self.body = dumps_body(count_body)
                return
        body = call.body
        if wire.MODEL_IN_BODY:  # else the URL names the model and streaming (Gemini)
            body = {**body, "model": target.upstream_model}
            if not call.stream and body.get("stream"):  # "stream": "emulate" asks for it whole
                body["stream"] = False
                body.pop("stream_options", None)
        self.body = _edited(body, call, target)

    def response(self, data: bytes) -> bytes:
        """The provider's answer unchanged (but for redacted secrets), once it is known
        to be a JSON object."""
        # count_tokens answers ({"input_tokens": n}) have none of a message's fields.
        count = self.call.op == "count_tokens"
        obj = read_answer(data, FORMATS[self.call.fmt], answer=not count)
        if not count:
            reader = UsageReader(self.call.fmt)
            reader.read_object(obj)  # the answer is decoded already: no second scan
            self.usage = reader.usage
        return self.redactor.data(data)

    def relay(self) -> FramedRelay:
        return FramedRelay(self.call.fmt, self.redactor)


class Converting:
    """Client and provider speak different formats."""

    def __init__(
        self,
        call: Call,
        target: Target,
        memo: Memo | None = None,
        redactor: Redactor = NO_REDACTION,
    ) -> None:
        self.call = call
        self.redactor = redactor
        self.client = FORMATS[call.fmt]
        self.upstream = FORMATS[target.transformer.format]
        self.req, notes = self.client.parse_request(
            call.body, model=call.model, stream=call.stream, memo=memo, size=call.size
        )
        body, more = self.upstream.render_request(
            self.req, upstream_model=target.upstream_model, memo=memo
        )
        self.notes = (*notes, *more)
        self.body = _edited(body, call, target)
        self.tool_names = self.upstream.tool_name_map(self.req)
        #: The usage the provider reported in its answer (None: none read yet).
        self.usage: Usage | None = None

    def response(self, data: bytes) -> bytes:
        resp = parse_answer(self.upstream, data, self.tool_names)
        self.usage = resp.usage
        return self.redactor.data(
            dumps_body(self.client.render_response(resp, model=self.call.model))
        )

    def relay(self) -> ConvertingRelay:
        options: dict[str, Any] = {"include_usage": self.req.include_usage}
        if self.client.announces_input_tokens:  # before the provider reported any usage
            options["input_tokens"] = estimate_input_tokens(self.req)
        return ConvertingRelay(
            self.upstream.stream_parser(tool_names=self.tool_names),
            self.client.stream_renderer(self.call.model, **options),
            self.redactor,
        )


#: Either adapter (what :func:`make_adapter` gives).
Adapter = Passthrough | Converting


def whole_as_stream(call: Call, upstream_fmt: str, data: bytes, adapter: Adapter) -> bytes:
    """A provider's whole answer as the client's stream ("stream": "emulate")."""
    upstream, client = FORMATS[upstream_fmt], FORMATS[call.fmt]
    tool_names = adapter.tool_names if isinstance(adapter, Converting) else None
    resp = parse_answer(upstream, data, tool_names)
    adapter.usage = resp.usage
    if isinstance(adapter, Converting):
        include_usage = adapter.req.include_usage
    else:
        include_usage = client.parse_request(call.body, model=call.model, stream=True)[
            0
        ].include_usage
    renderer = client.stream_renderer(call.model, include_usage=include_usage)
    out = [renderer.render(event) for event in response_to_stream(resp)]
    out.append(renderer.finish())
    return adapter.redactor.data(b"".join(out))


def read_answer(data: bytes, fmt: Format, *, answer: bool = True) -> dict[str, Any]:
    """A provider's whole answer as a JSON object, or UpstreamError (502) saying why not.

    With ``answer``, the object must also look like a generation answer of ``fmt``
    (its wire's ``ANSWER_FIELD``: the array every answer of the format has, non-empty
    unless ``EMPTY_ANSWER_OK``, since without it an answer would convert to a silently
    empty one) and not be an error object.

    Provider bytes are untrusted: invalid UTF-8 or JSON, an HTML page, NaN, an
    integer over Python's digit limit or nesting deeper than the recursion
    limit (the C decoder stops there, so the cost stays linear in the body,
    which the caller caps) all end here as the provider's fault, never a 500.
    """
    name = fmt.name
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:200]
        raise UpstreamError(f"The provider's answer is not valid {name} JSON ({reason}).") from None
    if not isinstance(obj, dict):
        raise UpstreamError(
            f"The provider's answer is not a {name} JSON object (it is a {type(obj).__name__})."
        )
    if not answer:
        return obj
    if obj.get("error") is not None:  # some providers (OpenRouter) answer 200 with an error
        message = fmt.read_error(200, data).message
        raise UpstreamError(f"The provider answered 200 with an error: {message}")
    wire = fmt.wire
    if wire.BLOCKED_FIELD is not None and isinstance(obj.get(wire.BLOCKED_FIELD), dict):
        return obj  # a Gemini answer to a blocked prompt has only promptFeedback
    field = wire.ANSWER_FIELD
    items = obj.get(field)
    if not isinstance(items, list) or (not wire.EMPTY_ANSWER_OK and not items):
        raise UpstreamError(
            f"The provider's answer is not a valid {name} answer: {field!r} is missing or empty."
        )
    if items and not isinstance(items[0], dict):
        raise UpstreamError(f"The provider's answer is not a valid {name} answer: bad {field!r}.")
    return obj


def parse_answer(upstream: Format, data: bytes, tool_names: dict[str, str] | None) -> Response:
    """``upstream``'s whole answer as a canonical Response, or UpstreamError (502).

    Any failure of the converter on provider data (a field of the wrong type
    included) is the provider's answer being unreadable, not a gateway fault.
    """
    obj = read_answer(data, upstream)
    try:
        return upstream.parse_response(obj, tool_names=tool_names)
    except GatewayError as exc:
        raise UpstreamError(
            f"The provider's answer could not be read as {upstream.name} JSON: {exc.message}"
        ) from None
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError) as exc:
        raise UpstreamError(
            f"The provider's answer could not be read as {upstream.name} JSON "
            f"({type(exc).__name__}: {str(exc)[:200]})."
        ) from None


def make_adapter(
    call: Call,
    target: Target,
    memo: Memo | None = None,
    redactor: Redactor = NO_REDACTION,
) -> Adapter:
    """The adapter for ``call`` on ``target`` (BadRequest when it cannot be expressed there).

    ``memo`` lets a conversion reuse what an earlier request of the same conversation
    shares with this one (gateway.convert.memo); the body is the same either way.
    ``redactor`` cleans every byte the adapter gives back for the client.
    """
    if call.fmt == target.transformer.format:
        return Passthrough(call, target, redactor)
    return Converting(call, target, memo, redactor)
