"""OpenAI Chat Completions (wire-formats.md §1): everything the gateway knows of it.

``request_parse`` / ``request_render``, ``response``, ``stream_parse`` /
``stream_render`` convert to and from the canonical model; ``errors`` reads
providers' error answers and writes clients'; ``wire`` holds its facts on the
wire (paths, headers, keep-alives); ``frontend`` and ``models`` are its client
endpoints. :data:`FORMAT` bundles them for :data:`gateway.formats.FORMATS`.
"""

from __future__ import annotations

from gateway.formats.format import Endpoint, Format
from gateway.formats.openai import errors, models, wire
from gateway.formats.openai.frontend import read_chat
from gateway.formats.openai.request_parse import parse_request
from gateway.formats.openai.request_render import render_request
from gateway.formats.openai.response import parse_response, render_response
from gateway.formats.openai.stream_parse import StreamParser
from gateway.formats.openai.stream_render import StreamRenderer

__all__ = ["FORMAT"]

FORMAT = Format(
    name=wire.NAME,
    wire=wire,
    endpoints=(
        Endpoint("GET", "/v1/models", answer=models.answer_models),
        Endpoint("GET", "/v1/models/{model:path}", answer=models.answer_model),
        Endpoint("POST", "/v1/chat/completions", read=read_chat),
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
    render_remembers=True,  # messages rendered (and their JSON encoded) once
)
