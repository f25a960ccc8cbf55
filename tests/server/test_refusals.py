"""What the server refuses by itself, and the headers HTTP adds to any error answer."""

from __future__ import annotations

import json

import h11
import pytest
import trio

from gateway.errors import MethodNotAllowed, NotFound, PayloadTooLarge, RateLimited
from gateway.server.dialect import PLAIN
from gateway.server.refusals import check_head, error_reply, fault_reply


def _head(headers: list[tuple[bytes, bytes]], version: bytes = b"1.1") -> h11.Request:
    return h11.Request(
        method="POST", target="/x", headers=[(b"host", b"t"), *headers], http_version=version
    )


def test_a_sane_head_passes_and_gives_its_request_id() -> None:
    assert check_head(_head([(b"x-request-id", b"abc")]), 1000) == b"abc"
    assert check_head(_head([]), 1000) is None


@pytest.mark.parametrize(
    ("headers", "version", "limit", "status"),
    [
        ([(b"x-big", b"y" * 200)], b"1.1", 100, 431),
        ([(b"content-length", b"1"), (b"transfer-encoding", b"chunked")], b"1.1", 1000, 400),
        ([], b"1.0", 1000, None),
    ],
)
def test_heads_h11_lets_through_but_we_refuse(headers, version, limit, status) -> None:
    if status is None:
        check_head(_head([], version), limit)
        return
    with pytest.raises(h11.RemoteProtocolError) as caught:
        check_head(_head(headers, version), limit)
    assert caught.value.error_status_hint == status


@pytest.mark.parametrize(
    ("exc", "status", "kind", "close"),
    [
        (h11.RemoteProtocolError("bad", error_status_hint=400), 400, "invalid_request", True),
        (h11.RemoteProtocolError("big", error_status_hint=431), 431, "invalid_request", True),
        (h11.RemoteProtocolError("huge", error_status_hint=413), 413, "request_too_large", True),
        (h11.RemoteProtocolError("v", error_status_hint=505), 505, "api_error", True),
        (trio.TooSlowError(), 408, "invalid_request", True),
        (NotFound("no"), 404, "not_found", False),
        (PayloadTooLarge("too big"), 413, "request_too_large", True),
    ],
)
def test_error_replies(exc, status, kind, close) -> None:
    got_status, headers, body = error_reply(exc, PLAIN, 10)
    assert got_status == status
    assert json.loads(body)["error"]["type"] == kind
    assert ((b"connection", b"close") in headers) is close


def test_messages_name_what_to_fix() -> None:
    _, _, body = error_reply(trio.TooSlowError(), PLAIN, 2.5)
    assert json.loads(body)["error"]["message"] == "The request head took longer than 2.5 s."
    big = h11.RemoteProtocolError("x", error_status_hint=431)
    _, _, body = error_reply(big, PLAIN, 1)
    assert "send smaller headers" in json.loads(body)["error"]["message"]
    _, _, body = error_reply(h11.RemoteProtocolError("odd", error_status_hint=400), PLAIN, 1)
    assert json.loads(body)["error"]["message"] == "Malformed HTTP request: odd."


def test_http_headers_of_errors() -> None:
    _, headers, _ = error_reply(MethodNotAllowed("no", allowed=("GET", "HEAD")), PLAIN, 1)
    assert headers == [(b"allow", b"GET, HEAD")]
    _, headers, _ = error_reply(RateLimited("later", retry_after_s=7), PLAIN, 1)
    assert headers == [(b"retry-after", b"7")]


def test_a_fault_names_the_request_id_only() -> None:
    status, headers, body = fault_reply("rid-9", PLAIN)
    assert (status, headers) == (500, [])
    error = json.loads(body)["error"]
    assert error["type"] == "api_error"
    assert "rid-9" in error["message"]
