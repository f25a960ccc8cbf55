"""Gemini generateContent (wire-formats.md §3): everything the gateway knows of it.

``request_parse`` / ``request_render``, ``response``, ``stream_parse`` /
``stream_render`` convert to and from the canonical model; ``errors`` reads
providers' error answers and writes clients'; ``wire`` holds its facts on the
wire (paths, headers, keep-alives); ``frontend`` and ``models`` are its client
endpoints. :data:`FORMAT` bundles them for :data:`gateway.formats.FORMATS`.
"""

from __future__ import annotations

from gateway.formats.format import Endpoint, Format
from gateway.formats.gemini import errors, models, wire
from gateway.formats.gemini.frontend import read_call, wants_json_array
from gateway.formats.gemini.request_parse import parse_request
from gateway.formats.gemini.request_render import render_request
from gateway.formats.gemini.response import parse_response, render_response
from gateway.formats.gemini.stream_parse import StreamParser
from gateway.formats.gemini.stream_render import StreamRenderer

__all__ = ["FORMAT"]

FORMAT = Format(
    name=wire.NAME,
    wire=wire,
    endpoints=(
        Endpoint("GET", "/v1beta/models", answer=models.answer_models),
        Endpoint("GET", "/v1beta/models/{model:path}", answer=models.answer_model),
        Endpoint("POST", "/v1beta/models/{rest:path}", read=read_call, json_array=wants_json_array),
        Endpoint("POST", "/v1/models/{rest:path}", read=read_call, json_array=wants_json_array),
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
    render_remembers=True,  # cleaned tool declarations reused for an identical tool list
)
