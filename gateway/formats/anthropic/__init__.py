"""Anthropic Messages (wire-formats.md §2): everything the gateway knows of it.

``request_parse`` / ``request_render``, ``response``, ``stream_parse`` /
``stream_render`` convert to and from the canonical model; ``errors`` reads
providers' error answers and writes clients'; ``wire`` holds its facts on the
wire (paths, headers, keep-alives); ``frontend`` is its client endpoints.
:data:`FORMAT` bundles them for :data:`gateway.formats.FORMATS`.
"""

from __future__ import annotations

from gateway.formats.anthropic import errors, wire
from gateway.formats.anthropic.frontend import read_count_tokens, read_messages
from gateway.formats.anthropic.request_parse import parse_request
from gateway.formats.anthropic.request_render import render_request
from gateway.formats.anthropic.response import parse_response, render_response
from gateway.formats.anthropic.stream_parse import StreamParser
from gateway.formats.anthropic.stream_render import StreamRenderer
from gateway.formats.format import Endpoint, Format

__all__ = ["FORMAT"]

FORMAT = Format(
    name=wire.NAME,
    wire=wire,
    endpoints=(
        Endpoint("POST", "/v1/messages", read=read_messages),
        Endpoint("POST", "/v1/messages/count_tokens", read=read_count_tokens),
    ),
    parse_request=parse_request,
    render_request=render_request,
    parse_response=parse_response,
    render_response=render_response,
    stream_parser=StreamParser,
    stream_renderer=StreamRenderer,
    read_error=errors.read_error,
    error_body=errors.error_body,
    overloaded_status=errors.OVERLOADED_STATUS,
    parse_remembers=True,  # history parsed once per conversation
    # Rendering keeps nothing: turns merge across messages, schemas pass by reference.
    render_remembers=False,
    announces_input_tokens=True,  # message_start wants input tokens up front
)
