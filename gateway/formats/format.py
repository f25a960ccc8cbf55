"""A wire format as the rest of the gateway sees it: one :class:`Format` object.

Theory of operation: everything one wire format knows lives in its folder
(``gateway/formats/<name>/``), and its ``__init__`` builds one :class:`Format`
that the rest of the gateway asks, through :data:`gateway.formats.FORMATS`,
instead of branching on the format's name:

- the converters between the format and the canonical model
  (:mod:`gateway.convert.model`): requests, answers, stream events;
- error bodies both ways: reading a provider's error answer
  (:meth:`Format.read_error`) and writing the client's
  (:meth:`Format.error_response`, :meth:`Format.stream_error`);
- its :class:`Wire` facts: upstream paths and headers (the key's default
  header too), keep-alive bytes, the markers of a stream's end, the usage key,
  the max-tokens field, the client paths whose errors it answers;
- its client endpoints (:class:`Endpoint`), which the app serves.

The conversion memo (:mod:`gateway.convert.memo`) is given to the Format, which
hands it to the converters of its format that reuse earlier requests' work
(``parse_remembers`` / ``render_remembers``); the others never see it.

So the proxy writes, for a client format ``client`` and a provider format
``upstream``::

    req, notes = client.parse_request(body, model=m, stream=s, memo=memo, size=n)
    upstream_body, more = upstream.render_request(req, upstream_model=name, memo=memo)
    parser = upstream.stream_parser(tool_names=upstream.tool_name_map(req))
    renderer = client.stream_renderer(req.model, include_usage=req.include_usage)
    for event in sse_decoder.feed(chunk):
        for canonical in parser.feed(event):
            send(renderer.render(canonical))

Everything here is pure: no I/O, no logging.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from gateway.convert.model import Notes, Request, Response, StreamError, StreamEvent, Usage
from gateway.convert.names import ToolNameRule, tool_name_map
from gateway.errors import ErrorKind, GatewayError

if TYPE_CHECKING:
    from gateway.call import Call
    from gateway.catalog import Catalog
    from gateway.convert.memo import Memo
    from gateway.convert.provider_errors import ProviderError
    from gateway.frontends import ClientRequest
    from gateway.sse import Event

__all__ = [
    "Endpoint",
    "Format",
    "ForwardedHeader",
    "StreamParser",
    "StreamRenderer",
    "Wire",
]


@attrs.frozen
class ForwardedHeader:
    """A client header the gateway forwards to providers of one format.

    Attributes:
        name: the header, lower case (read from the client, sent upstream).
        label: how a 400 about its value names it.
        default: sent when the client gave none (None: nothing is sent then).
    """

    name: str
    label: str
    default: str | None = None


class Wire(Protocol):
    """What the rest of the gateway must know about one format on the wire.

    Each format's ``wire`` module is one (a module satisfies this protocol).
    """

    #: The format's name: the ``format`` of transformer files, ``Call.fmt``.
    NAME: str
    #: Written to a client of the format while its stream waits (design.md,
    #: "Response status and keep-alives").
    KEEPALIVE: bytes
    #: Bytes that only a stream's last event (or an error event) holds: a relayed
    #: stream that ended without any of them was cut short.
    TERMINAL_MARKERS: tuple[bytes, ...]
    #: The array every whole answer has, non-empty unless ``EMPTY_ANSWER_OK``.
    ANSWER_FIELD: str
    EMPTY_ANSWER_OK: bool
    #: A field whose object alone makes an answer whole (a blocked prompt), or None.
    BLOCKED_FIELD: str | None
    #: The top-level key of a whole answer's usage object.
    USAGE_KEY: str
    #: The bytes that precede a usage object in a stream's events.
    USAGE_MARKER: bytes
    #: Keys one of which a real usage object of the format has.
    USAGE_FIELDS: tuple[str, ...]
    #: How a provider key is sent by default: (lower-case header name, value prefix).
    KEY_HEADER: tuple[str, str]
    #: Client headers forwarded to providers of this format.
    FORWARDED_HEADERS: tuple[ForwardedHeader, ...]
    #: The body names the model and the stream flag (else the URL does).
    MODEL_IN_BODY: bool
    #: What the format accepts as a tool name.
    TOOL_NAMES: ToolNameRule

    def read_usage(self, raw: Mapping[str, Any], previous: Usage | None) -> Usage:
        """A usage object as canonical Usage (``previous``: the stream's last one)."""
        ...

    def upstream_target(
        self, model: str, *, stream: bool, count_tokens: bool
    ) -> tuple[str, tuple[tuple[str, str], ...]]:
        """The path after ``base_url`` and the query pairs for one call."""
        ...

    def clamp_max_tokens(self, body: dict[str, Any], limit: int) -> None:
        """Clamp the body's max tokens to ``limit``, filling it in when absent."""
        ...

    def count_tokens_body(self, body: dict[str, Any], upstream_model: str) -> dict[str, Any] | None:
        """A count-tokens body as sent upstream unedited, or None (the usual edits apply)."""
        ...

    def count_request(self, body: dict[str, Any]) -> dict[str, Any]:
        """The generation request inside a count-tokens body (for the gateway's estimate)."""
        ...

    def count_answer(self, tokens: int) -> dict[str, Any]:
        """The answer to a count-tokens call the gateway estimated."""
        ...

    def answers_path(self, path: str) -> bool:
        """Whether errors on ``path`` (a client path no route matched) are this format's."""
        ...


class StreamParser(Protocol):
    """A provider's SSE events -> canonical stream events (one per stream)."""

    def feed(self, event: Event) -> list[StreamEvent]: ...

    def finish(self) -> list[StreamEvent]: ...


class StreamRenderer(Protocol):
    """Canonical stream events -> the client's SSE bytes (one per stream)."""

    def render(self, event: StreamEvent) -> bytes: ...

    def finish(self) -> bytes: ...


@attrs.frozen
class Endpoint:
    """One client-facing endpoint of a format.

    Attributes:
        method: the HTTP method.
        path: the router pattern (``/literal`` or ``/prefix/{name:path}``).
        read: for an endpoint forwarded to providers, the front end: reads the
            request into a :class:`~gateway.call.Call` (a 400 when it cannot).
        answer: for an endpoint answered by the gateway itself (model lists),
            its JSON answer from the request and the catalog of served models.
        json_array: for a streaming endpoint, whether this request wants its
            stream as one JSON array rather than SSE (Gemini's ``alt=json``).
    """

    method: str
    path: str
    read: Callable[[ClientRequest], Call] | None = None
    answer: Callable[[ClientRequest, Catalog], dict[str, Any]] | None = None
    json_array: Callable[[ClientRequest], bool] | None = None


@attrs.frozen(eq=False)
class Format:
    """One wire format: its converters, its error bodies, its wire facts.

    Attributes:
        name: the format's name (``wire.NAME``).
        wire: what the gateway must know about it on the wire.
        endpoints: its client-facing endpoints.
        parse_request: ``(body, *, model=None, stream=None[, memo, size]) ->
            (Request, notes)``; Gemini takes the model and stream flag from the URL
            (call it through :meth:`parse_request`).
        render_request: ``(req, *, upstream_model[, memo], **options) -> (body,
            notes)``; options per format (Anthropic ``default_max_tokens``, ...)
            (call it through :meth:`render_request`).
        parse_response: ``(body, *, tool_names=None) -> Response``.
        render_response: ``(resp, *, model) -> body``.
        stream_parser: ``(*, tool_names=None) -> StreamParser``.
        stream_renderer: ``(model, *, include_usage, **options) -> StreamRenderer``.
        read_error: ``(status, body) -> ProviderError``, never raises.
        error_body: ``(kind, status, message, *, code) -> body`` for clients.
        overloaded_status: the status a client gets for an overloaded provider.
        parse_remembers: the request parser takes a memo.
        render_remembers: the request renderer takes a memo.
        announces_input_tokens: the stream renderer takes ``input_tokens``, the
            prompt's size announced before the provider reported any usage.
    """

    name: str
    wire: Wire
    endpoints: tuple[Endpoint, ...]
    _parse_request: Callable[..., tuple[Request, Notes]]
    _render_request: Callable[..., tuple[dict[str, Any], Notes]]
    parse_response: Callable[..., Response]
    render_response: Callable[..., dict[str, Any]]
    stream_parser: Callable[..., StreamParser]
    stream_renderer: Callable[..., StreamRenderer]
    read_error: Callable[[int, bytes], ProviderError]
    _error_body: Callable[..., dict[str, Any]]
    overloaded_status: int
    parse_remembers: bool = False
    render_remembers: bool = False
    announces_input_tokens: bool = False

    # -- conversion -------------------------------------------------------------------------

    def parse_request(
        self,
        body: Any,
        *,
        model: str | None = None,
        stream: bool | None = None,
        memo: Memo | None = None,
        size: int = 0,
    ) -> tuple[Request, Notes]:
        """A client body of this format as a canonical Request.

        Args:
            body: the decoded JSON body.
            model: overrides the body's model (Gemini names it in the URL).
            stream: overrides the body's stream flag (likewise).
            memo: lets the parser reuse the parse of history seen lately (same result).
            size: the body's size in bytes as it arrived (0: unknown; the memo then
                reuses but keeps nothing).

        Raises:
            BadRequest: the body is malformed or asks for what no format can carry.
        """
        if memo is not None and self.parse_remembers:
            return self._parse_request(body, model=model, stream=stream, memo=memo, size=size)
        return self._parse_request(body, model=model, stream=stream)

    def render_request(
        self, req: Request, *, upstream_model: str, memo: Memo | None = None, **options: Any
    ) -> tuple[dict[str, Any], Notes]:
        """``req`` as an upstream body of this format (``memo``: reuse renderings of
        history rendered lately, where this format's renderer can)."""
        if memo is not None and self.render_remembers:
            options["memo"] = memo
        return self._render_request(req, upstream_model=upstream_model, **options)

    def tool_name_map(self, req: Request) -> dict[str, str]:
        """``{wire name: client name}`` for the tools this format renames in ``req``.

        Pass it as ``tool_names`` to :attr:`parse_response` / :attr:`stream_parser`
        of the same format so the client gets its own tool names back.
        """
        names = [t.name for t in req.tools]
        if req.tool_choice is not None and req.tool_choice.name:
            names.append(req.tool_choice.name)
        return tool_name_map(names, self.wire.TOOL_NAMES)

    # -- errors -----------------------------------------------------------------------------

    def parse_error(self, status: int, body: bytes) -> tuple[ErrorKind, str]:
        """``(kind, provider's message)`` of an upstream error answer (never raises)."""
        error = self.read_error(status, body)
        return error.kind, error.message

    def error_status(self, kind: ErrorKind, status: int) -> int:
        """The HTTP status a client of this format gets for ``kind`` (overload has its own)."""
        return self.overloaded_status if kind is ErrorKind.OVERLOADED else status

    def error_body(
        self, kind: ErrorKind, status: int, message: str, *, code: str | None = None
    ) -> dict[str, Any]:
        """The JSON error body this format's clients expect."""
        return self._error_body(kind, status, message, code=code)

    def error_response(self, exc: GatewayError) -> tuple[int, dict[str, Any]]:
        """``(status, body)`` for ``exc`` answered to a client of this format."""
        status = self.error_status(exc.kind, exc.status_hint)
        return status, self.error_body(exc.kind, status, exc.message, code=exc.code)

    def stream_error(self, kind: ErrorKind, message: str, *, status: int | None = None) -> bytes:
        """The in-stream error event for a stream already under way (§4.15 Mid-stream).

        For relays that pass the upstream's own events through (same format) and
        so have no renderer of their own; ends the stream (no ``[DONE]``).
        """
        renderer = self.stream_renderer("", include_usage=False)
        return renderer.render(StreamError(kind, message, status))
