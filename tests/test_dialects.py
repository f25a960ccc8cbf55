"""The gateway's dialects: each wire format's error bodies and keep-alives, by route and path."""

from __future__ import annotations

import json

import pytest

from gateway.dialects import DEFAULT, DIALECTS, dialect_for_path
from gateway.errors import BadRequest, GatewayError, ModelNotFound, UpstreamError
from gateway.formats import FORMATS, format_for_path
from gateway.server.admission import Overloaded


@pytest.mark.parametrize(
    ("path", "fmt"),
    [
        ("/v1/chat/completions", "openai"),
        ("/health/live", "openai"),
        ("/v1/models/gpt-4o", "openai"),
        ("/v1/messages", "anthropic"),
        ("/v1/messages/count_tokens", "anthropic"),
        ("/v1/messagesx", "anthropic"),
        ("/v1beta/models/gemini-pro:generateContent", "gemini"),
        ("/v1/models/gemini-pro:streamGenerateContent", "gemini"),
        ("/v1beta/models", "openai"),  # no method: not a Gemini call
        ("/nowhere", "openai"),
    ],
)
def test_unmatched_paths_are_answered_in_the_format_they_look_like(path: str, fmt: str) -> None:
    assert format_for_path(path).name == fmt
    assert dialect_for_path(path) is DIALECTS[fmt]


def test_plain_endpoints_speak_openai() -> None:
    assert DEFAULT is DIALECTS["openai"]


@pytest.mark.parametrize("fmt", ["openai", "anthropic", "gemini"])
@pytest.mark.parametrize(
    "exc",
    [
        BadRequest("bad"),
        ModelNotFound("m"),
        Overloaded("busy", retry_after_s=1),
        UpstreamError("down", status_hint=504),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_a_dialect_is_its_formats_error_body_and_keepalive(fmt: str, exc: GatewayError) -> None:
    dialect = DIALECTS[fmt]
    status, headers, body = dialect.error_response(exc)
    assert (status, json.loads(body)) == FORMATS[fmt].error_response(exc)
    assert headers == []
    assert dialect.keepalive == FORMATS[fmt].wire.KEEPALIVE
    assert dialect.name == fmt
