"""gateway.failures: design.md's failure table ("Routing", last table), row by row.

Each provider answer is read by the provider's format (``Format.read_error``), classified
(:func:`classify_status`, :func:`connect_failure`, :func:`timeout_failure`), and the
resulting error is answered to a client of every format (``Format.error_response``): the
status each client gets, the Anthropic error type, and what happens next (retry the same
target, rest the key, fall back).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.errors import ErrorKind
from gateway.failures import (
    MAX_RETRY_AFTER_S,
    Failure,
    classify_status,
    connect_failure,
    timeout_failure,
)
from gateway.formats import FORMAT_NAMES, FORMATS


def _openai(message: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": "x", "code": None}}).encode()


def _classify(status: int, body: bytes, fmt: str = "openai", **headers: str) -> Failure:
    said = FORMATS[fmt].read_error(status, body)
    return classify_status("prov", status, said, headers)


def _client_statuses(failure: Failure) -> dict[str, int]:
    return {name: FORMATS[name].error_response(failure.error)[0] for name in FORMAT_NAMES}


def _anthropic_type(failure: Failure) -> str:
    body: Any = FORMATS["anthropic"].error_response(failure.error)[1]
    return str(body["error"]["type"])


# -- the table --------------------------------------------------------------------------------

#: status -> (client status, Anthropic type, retry, cool key, fall back)
ROWS = {
    # provider rejected the request: same status, provider's message, no retry, no fallback
    400: (400, "invalid_request_error", False, False, False),
    404: (404, "not_found_error", False, False, False),
    413: (413, "request_too_large", False, False, False),
    422: (422, "invalid_request_error", False, False, False),
    # provider rate limit: 429, the key rests, the next key or target is tried
    429: (429, "rate_limit_error", True, True, True),
    # provider overloaded: backs off without blaming the key (client status per format below)
    503: (503, "overloaded_error", True, False, True),
    529: (503, "overloaded_error", True, False, True),
    # provider 5xx: 502 api_error with the provider's message
    500: (502, "api_error", True, False, True),
    502: (502, "api_error", True, False, True),
    504: (502, "api_error", True, False, True),
    599: (502, "api_error", True, False, True),
    # the provider refused the gateway's key: 502, never 401 (SDK login flows)
    401: (502, "api_error", True, True, True),
    403: (502, "api_error", True, True, True),
}


@pytest.mark.parametrize("status", sorted(ROWS))
def test_the_failure_table(status: int) -> None:
    client_status, anthropic_type, retry, cool, fallback = ROWS[status]
    failure = _classify(status, _openai("the provider's words"))
    assert (failure.retry, failure.cool_key, failure.fallback) == (retry, cool, fallback)
    assert failure.kind == f"status_{status}"
    statuses = _client_statuses(failure)
    if status in (503, 529):  # overloaded: 529 overloaded_error to Anthropic clients only
        assert statuses == {"openai": 503, "anthropic": 529, "gemini": 503}
    else:
        assert set(statuses.values()) == {client_status}
    assert _anthropic_type(failure) == anthropic_type
    if status in (401, 403):
        assert "refused the gateway's API key" in failure.error.message
        assert "the provider's words" not in failure.error.message
    else:
        assert failure.error.message == "prov: the provider's words"


def test_gemini_api_key_invalid_is_a_refused_key() -> None:
    body = {
        "error": {
            "code": 400,
            "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT",
            "details": [{"@type": "x", "reason": "API_KEY_INVALID"}],
        }
    }
    for fmt in FORMAT_NAMES:  # Google's OpenAI-compatible endpoint answers the same way
        failure = _classify(400, json.dumps(body).encode(), fmt)
        assert (failure.retry, failure.cool_key, failure.fallback) == (True, True, True)
        assert set(_client_statuses(failure).values()) == {502}
        assert "refused the gateway's API key" in failure.error.message


def test_a_429_carries_retry_after() -> None:
    failure = _classify(429, b"{}", **{"retry-after": "7"})
    assert failure.error.kind is ErrorKind.RATE_LIMIT
    assert failure.error.retry_after_s == 7
    assert failure.delay_s == 7.0
    assert failure.rest_s == 7.0
    assert _classify(429, b"{}").error.retry_after_s == 1  # none given: 1 s


def test_retry_after_is_capped_for_the_request() -> None:
    assert _classify(503, b"", **{"retry-after": "3600"}).delay_s == MAX_RETRY_AFTER_S
    assert _classify(500, b"", **{"retry-after-ms": "250"}).delay_s == 0.25


def test_a_redirect_is_a_502_naming_the_base_url() -> None:
    failure = _classify(302, b"")
    assert (failure.retry, failure.fallback) == (False, True)
    assert set(_client_statuses(failure).values()) == {502}
    assert "base_url" in failure.error.message


def test_connect_error_is_a_502_naming_the_provider() -> None:
    failure = connect_failure("prov", "connection refused")
    assert (failure.retry, failure.cool_key, failure.fallback) == (True, False, True)
    assert set(_client_statuses(failure).values()) == {502}
    assert _anthropic_type(failure) == "api_error"
    assert "Could not reach provider 'prov'" in failure.error.message


@pytest.mark.parametrize("which", ["connect", "first_byte", "idle"])
def test_timeout_is_a_504_naming_the_timeout(which: str) -> None:
    failure = timeout_failure("prov", which, 5)
    assert (failure.retry, failure.cool_key, failure.fallback) == (True, False, True)
    assert set(_client_statuses(failure).values()) == {504}
    assert _anthropic_type(failure) == "api_error"
    assert f"its {which} timeout (5 s)" in failure.error.message


def test_provider_messages_are_redacted() -> None:
    said = FORMATS["openai"].read_error(400, _openai("bad key sk-abcdefghijklmnop and secret-123"))
    failure = classify_status("prov", 400, said, {}, ["secret-123"])
    assert "sk-abcdefghijklmnop" not in failure.error.message
    assert "secret-123" not in failure.error.message
    assert "[redacted]" in failure.error.message


@pytest.mark.parametrize("fmt", FORMAT_NAMES)
@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "(empty error body)"),
        (b"<html>Bad Gateway</html>", "<html>Bad Gateway</html>"),
        (b'{"error": "a plain string"}', "a plain string"),
        (b'{"error": {"type": "only_a_type"}}', "only_a_type"),
        (b'{"error": {"code": 7}}', '{"code": 7}'),
        (b'{"detail": "not an error object"}', '{"detail": "not an error object"}'),
        (b'[{"error": {"message": "wrapped"}}]', "wrapped"),
    ],
)
def test_every_format_reads_messages_the_same_way(fmt: str, body: bytes, message: str) -> None:
    assert FORMATS[fmt].read_error(500, body).message == message
