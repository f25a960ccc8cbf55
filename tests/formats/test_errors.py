"""Upstream error bodies of every format -> (ErrorKind, message); client bodies by ErrorKind."""

from __future__ import annotations

import json

import pytest

from gateway.errors import ErrorKind
from gateway.formats import FORMATS


@pytest.mark.parametrize(
    ("fmt", "status", "body", "kind", "message"),
    [
        # Anthropic: error.type decides (wire-formats §2.6).
        (
            "anthropic",
            529,
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            ErrorKind.OVERLOADED,
            "Overloaded",
        ),
        (
            "anthropic",
            400,
            {
                "type": "error",
                "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"},
                "request_id": "req_1",
            },
            ErrorKind.INVALID_REQUEST,
            "max_tokens: Field required",
        ),
        (
            "anthropic",
            413,
            {"type": "error", "error": {"type": "request_too_large", "message": "too big"}},
            ErrorKind.REQUEST_TOO_LARGE,
            "too big",
        ),
        (
            "anthropic",
            402,
            {"type": "error", "error": {"type": "billing_error", "message": "pay"}},
            ErrorKind.PERMISSION,
            "pay",
        ),
        (
            "anthropic",
            504,
            {"type": "error", "error": {"type": "timeout_error", "message": "slow"}},
            ErrorKind.TIMEOUT,
            "slow",
        ),
        (
            "anthropic",
            418,
            {"type": "error", "error": {"type": "teapot_error", "message": "?"}},
            ErrorKind.INVALID_REQUEST,
            "?",
        ),
        # OpenAI: the status decides (the SDK maps by status alone, §1.6).
        (
            "openai",
            429,
            {
                "error": {
                    "message": "Rate limit reached",
                    "type": "requests",
                    "param": None,
                    "code": "rate_limit_exceeded",
                }
            },
            ErrorKind.RATE_LIMIT,
            "Rate limit reached",
        ),
        (
            "openai",
            401,
            {
                "error": {
                    "message": "Incorrect API key provided",
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                }
            },
            ErrorKind.AUTHENTICATION,
            "Incorrect API key provided",
        ),
        (
            "openai",
            404,
            {
                "error": {
                    "message": "The model `x` does not exist",
                    "type": "invalid_request_error",
                    "code": "model_not_found",
                }
            },
            ErrorKind.NOT_FOUND,
            "The model `x` does not exist",
        ),
        (
            "openai",
            500,
            {"error": {"message": "oops", "type": "server_error"}},
            ErrorKind.API_ERROR,
            "oops",
        ),
        (
            "openai",
            503,
            {"error": "plain string error"},
            ErrorKind.OVERLOADED,
            "plain string error",
        ),
        # Gemini: google.rpc.Status, and API_KEY_INVALID is an auth error (§5.3 item 21).
        (
            "gemini",
            400,
            {
                "error": {
                    "code": 400,
                    "message": "API key not valid. Please pass a valid API key.",
                    "status": "INVALID_ARGUMENT",
                    "details": [
                        {
                            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                            "reason": "API_KEY_INVALID",
                            "domain": "googleapis.com",
                        }
                    ],
                }
            },
            ErrorKind.AUTHENTICATION,
            "API key not valid. Please pass a valid API key.",
        ),
        (
            "gemini",
            429,
            {
                "error": {
                    "code": 429,
                    "message": "Resource has been exhausted",
                    "status": "RESOURCE_EXHAUSTED",
                }
            },
            ErrorKind.RATE_LIMIT,
            "Resource has been exhausted",
        ),
        (
            "gemini",
            503,
            [
                {
                    "error": {
                        "code": 503,
                        "message": "The model is overloaded.",
                        "status": "UNAVAILABLE",
                    }
                }
            ],
            ErrorKind.OVERLOADED,
            "The model is overloaded.",
        ),
        (
            "gemini",
            400,
            {
                "error": {
                    "code": 400,
                    "message": "Invalid JSON payload received.",
                    "status": "INVALID_ARGUMENT",
                }
            },
            ErrorKind.INVALID_REQUEST,
            "Invalid JSON payload received.",
        ),
        (
            "gemini",
            404,
            {"error": {"code": 404, "message": "models/x is not found", "status": "NOT_FOUND"}},
            ErrorKind.NOT_FOUND,
            "models/x is not found",
        ),
        (
            "gemini",
            504,
            {"error": {"code": 504, "message": "Deadline expired", "status": "DEADLINE_EXCEEDED"}},
            ErrorKind.TIMEOUT,
            "Deadline expired",
        ),
    ],
)
def test_parse_error(fmt: str, status: int, body: object, kind: ErrorKind, message: str) -> None:
    assert FORMATS[fmt].parse_error(status, json.dumps(body).encode()) == (kind, message)


@pytest.mark.parametrize("fmt", ["openai", "anthropic", "gemini"])
@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, ErrorKind.INVALID_REQUEST),
        (401, ErrorKind.AUTHENTICATION),
        (403, ErrorKind.PERMISSION),
        (404, ErrorKind.NOT_FOUND),
        (413, ErrorKind.REQUEST_TOO_LARGE),
        (429, ErrorKind.RATE_LIMIT),
        (500, ErrorKind.API_ERROR),
        (502, ErrorKind.API_ERROR),
        (503, ErrorKind.OVERLOADED),
        (529, ErrorKind.OVERLOADED),
        (504, ErrorKind.TIMEOUT),
    ],
)
def test_non_json_bodies_fall_back_to_the_status(fmt: str, status: int, kind: ErrorKind) -> None:
    assert FORMATS[fmt].parse_error(status, b"<html>Bad Gateway</html>") == (
        kind,
        "<html>Bad Gateway</html>",
    )


def test_empty_and_binary_bodies() -> None:
    assert FORMATS["openai"].parse_error(500, b"") == (ErrorKind.API_ERROR, "(empty error body)")
    kind, message = FORMATS["gemini"].parse_error(500, b"\xff\xfe{")
    assert kind is ErrorKind.API_ERROR
    assert message


def test_codec_error_body_uses_the_shared_shapes() -> None:
    assert FORMATS["anthropic"].error_body(ErrorKind.OVERLOADED, 529, "busy") == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "busy"},
    }
    assert FORMATS["gemini"].error_body(ErrorKind.RATE_LIMIT, 429, "slow down") == {
        "error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}
    }
    assert (
        FORMATS["openai"].error_body(ErrorKind.NOT_FOUND, 404, "no")["error"]["type"]
        == "invalid_request_error"
    )
