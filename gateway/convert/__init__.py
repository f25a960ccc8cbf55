"""Format conversion: every client format to every provider format (design.md, Conversion).

Theory of operation: each wire format has a parser into the canonical model
(:mod:`gateway.convert.model`) and a renderer out of it, for requests,
responses, stream events and errors. :data:`CODECS` bundles one format's pieces
so the proxy can write::

    req, notes = CODECS[client_fmt].parse_request(body)
    upstream_body, more = CODECS[provider_fmt].render_request(req, upstream_model=name)
    parser = CODECS[provider_fmt].stream_parser(tool_names=CODECS[provider_fmt].tool_name_map(req))
    renderer = CODECS[client_fmt].stream_renderer(req.model, include_usage=req.include_usage)
    for event in sse_decoder.feed(chunk):
        for canonical in parser.feed(event):
            send(renderer.render(canonical))

Everything here is pure: no I/O, no logging, no clock except the OpenAI
``created`` stamp when none is given. What a converter drops comes back as
notes for the caller to log at debug level; what would change the meaning of
a request is a :class:`~gateway.errors.BadRequest`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from gateway.convert import anthropic, gemini, openai
from gateway.convert.anthropic import errors as _ant_errors
from gateway.convert.anthropic import stream as _ant_stream
from gateway.convert.emulate import accumulate, response_to_stream
from gateway.convert.gemini import errors as _gem_errors
from gateway.convert.gemini import stream as _gem_stream
from gateway.convert.model import Notes, Request, Response, StreamError
from gateway.convert.names import tool_name_map as _tool_name_map
from gateway.convert.openai import errors as _oai_errors
from gateway.convert.openai import stream as _oai_stream
from gateway.errors import ErrorKind, error_body

__all__ = [
    "CODECS",
    "FORMATS",
    "Codec",
    "accumulate",
    "convert_request",
    "convert_response",
    "response_to_stream",
]


@attrs.frozen
class Codec:
    """One wire format's converters.

    Attributes:
        name: ``"openai"``, ``"anthropic"`` or ``"gemini"``.
        parse_request: ``(body, *, model=None, stream=None) -> (Request, notes)``;
            for Gemini pass the model and stream flag from the URL.
        render_request: ``(req, *, upstream_model, **options) -> (body, notes)``;
            options per format (Anthropic ``default_max_tokens``, ...).
        parse_response: ``(body, *, tool_names=None) -> Response``.
        render_response: ``(resp, *, model) -> body``.
        stream_parser: class, ``(*, tool_names=None)``, with ``feed(event)`` and ``finish()``.
        stream_renderer: class, ``(model, *, include_usage=...)``, with ``render(event)``
            and ``finish()`` returning SSE bytes.
        parse_error: ``(status, body bytes) -> (ErrorKind, message)`` for an upstream error.
    """

    name: str
    parse_request: Callable[..., tuple[Request, Notes]]
    render_request: Callable[..., tuple[dict[str, Any], Notes]]
    parse_response: Callable[..., Response]
    render_response: Callable[..., dict[str, Any]]
    stream_parser: Callable[..., Any]
    stream_renderer: Callable[..., Any]
    parse_error: Callable[[int, bytes], tuple[ErrorKind, str]]

    def error_body(self, kind: ErrorKind, status: int, message: str) -> dict[str, Any]:
        """The JSON error body this format's clients expect (gateway.errors.error_body)."""
        return error_body(self.name, kind, status, message)

    def stream_error(self, kind: ErrorKind, message: str, *, status: int | None = None) -> bytes:
        """The in-stream error event for a stream already under way (§4.15 Mid-stream).

        For relays that pass the upstream's own events through (same format) and
        so have no renderer of their own; ends the stream (no ``[DONE]``).
        """
        renderer = self.stream_renderer("", include_usage=False)
        return renderer.render(StreamError(kind, message, status))  # type: ignore[no-any-return]

    def tool_name_map(self, req: Request) -> dict[str, str]:
        """``{wire name: client name}`` for the tools this format renames in ``req``.

        Pass it as ``tool_names`` to :attr:`parse_response` / :attr:`stream_parser`
        of the same format so the client gets its own tool names back.
        """
        names = [t.name for t in req.tools]
        if req.tool_choice is not None and req.tool_choice.name:
            names.append(req.tool_choice.name)
        return _tool_name_map(names, self.name)


CODECS: Mapping[str, Codec] = {
    "openai": Codec(
        "openai",
        openai.parse_request,
        openai.render_request,
        openai.parse_response,
        openai.render_response,
        _oai_stream.StreamParser,
        _oai_stream.StreamRenderer,
        _oai_errors.parse_error,
    ),
    "anthropic": Codec(
        "anthropic",
        anthropic.parse_request,
        anthropic.render_request,
        anthropic.parse_response,
        anthropic.render_response,
        _ant_stream.StreamParser,
        _ant_stream.StreamRenderer,
        _ant_errors.parse_error,
    ),
    "gemini": Codec(
        "gemini",
        gemini.parse_request,
        gemini.render_request,
        gemini.parse_response,
        gemini.render_response,
        _gem_stream.StreamParser,
        _gem_stream.StreamRenderer,
        _gem_errors.parse_error,
    ),
}
FORMATS = tuple(CODECS)


def convert_request(
    body: Any,
    src: str,
    dst: str,
    *,
    upstream_model: str,
    model: str | None = None,
    stream: bool | None = None,
    **options: Any,
) -> tuple[dict[str, Any], Notes]:
    """A client body of format ``src`` as an upstream body of format ``dst``.

    Args:
        body: the client's decoded JSON body.
        src: the client's format.
        dst: the provider's format.
        upstream_model: the provider's model name.
        model: the client's model name when it is not in the body (Gemini URLs).
        stream: the stream flag when it is not in the body (Gemini URLs).
        **options: passed to ``dst``'s ``render_request``.

    Returns:
        ``(body, notes)`` with the notes of both steps.

    Raises:
        BadRequest: the body is malformed or asks for what ``dst`` cannot do.
    """
    req, notes = CODECS[src].parse_request(body, model=model, stream=stream)
    out, more = CODECS[dst].render_request(req, upstream_model=upstream_model, **options)
    return out, notes + more


def convert_response(
    body: Any, src: str, dst: str, *, model: str, tool_names: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """An upstream response body of format ``src`` as a client body of format ``dst``."""
    resp = CODECS[src].parse_response(body, tool_names=tool_names)
    return CODECS[dst].render_response(resp, model=model)
