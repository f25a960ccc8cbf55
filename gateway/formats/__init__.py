"""The wire formats the gateway speaks, one folder each, registered here.

Theory of operation (design.md, Conversion): a canonical model sits in the
middle (:mod:`gateway.convert`); each format's folder holds everything that
format knows (its converters, error bodies, wire facts and client endpoints)
and builds one :class:`~gateway.formats.format.Format`. The rest of the gateway
looks a format up here by name (``FORMATS[call.fmt]``, ``FORMATS[t.format]``)
and asks it, so adding a format is one folder and one line below.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.convert.model import Notes
from gateway.formats import anthropic, gemini, openai
from gateway.formats.format import Format

__all__ = [
    "DEFAULT_FORMAT",
    "FORMATS",
    "FORMAT_NAMES",
    "Format",
    "convert_request",
    "convert_response",
    "format_for",
    "format_for_path",
]


def _registry(*formats: Format) -> Mapping[str, Format]:
    return {f.name: f for f in formats}


#: Every wire format, by name (the ``format`` of transformer files, ``Call.fmt``).
FORMATS: Mapping[str, Format] = _registry(openai.FORMAT, anthropic.FORMAT, gemini.FORMAT)
FORMAT_NAMES = tuple(FORMATS)
#: The format of plain gateway endpoints' errors (/health, unknown paths): OpenAI's
#: shape is the most widely understood.
DEFAULT_FORMAT = openai.FORMAT


def format_for(name: str) -> Format:
    """The format called ``name``, or :data:`DEFAULT_FORMAT` for any other name."""
    return FORMATS.get(name, DEFAULT_FORMAT)


def format_for_path(path: str) -> Format:
    """The format whose errors a client path no route matched gets (by its wire's paths)."""
    for fmt in FORMATS.values():
        if fmt.wire.answers_path(path):
            return fmt
    return DEFAULT_FORMAT


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
    req, notes = FORMATS[src].parse_request(body, model=model, stream=stream)
    out, more = FORMATS[dst].render_request(req, upstream_model=upstream_model, **options)
    return out, notes + more


def convert_response(
    body: Any, src: str, dst: str, *, model: str, tool_names: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """An upstream response body of format ``src`` as a client body of format ``dst``."""
    resp = FORMATS[src].parse_response(body, tool_names=tool_names)
    return FORMATS[dst].render_response(resp, model=model)
