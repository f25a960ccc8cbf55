"""The Exchange a handler answers through, and the HttpRecord it leaves, without a connection."""

from __future__ import annotations

import sys

import attrs
import h11
import pytest
import trio

from gateway.server.dialect import PLAIN
from gateway.server.exchange import ClientGone, Exchange, HttpRecord, only_client_gone
from tests.server.helpers import FakeWire, make_request

if sys.version_info < (3, 11):  # pragma: no cover - exercised on 3.10 only
    from exceptiongroup import BaseExceptionGroup


@attrs.define
class Facts:
    model: str = "m"


def test_request_splits_its_target_and_finds_headers() -> None:
    request = make_request(target="/v1/x?key=1&b=2")
    assert (request.path, request.query) == ("/v1/x", "key=1&b=2")
    assert request.header(b"x-one") == b"1"  # the first value
    assert request.header(b"x-three") is None


async def test_respond_sends_head_body_and_end_with_the_standard_headers() -> None:
    wire = FakeWire()
    ex = Exchange(wire, make_request(), PLAIN)
    await ex.respond(201, b'{"ok":1}', headers=[(b"x-extra", b"y")])
    head, data, end = wire.sent
    assert isinstance(head, h11.Response)
    assert head.status_code == 201
    headers = dict(head.headers)
    assert headers[b"x-request-id"] == b"rid"
    assert headers[b"content-length"] == b"8"
    assert headers[b"content-type"] == b"application/json"
    assert headers[b"x-extra"] == b"y"
    assert b"connection" not in headers
    assert float(headers[b"x-gateway-overhead-ms"]) >= 0
    assert data == h11.Data(data=b'{"ok":1}')
    assert isinstance(end, h11.EndOfMessage)
    assert (ex.started, ex.finished, ex.bytes_sent) == (True, True, 8)


async def test_a_draining_server_closes_after_the_response() -> None:
    wire = FakeWire(draining=True)
    ex = Exchange(wire, make_request(), PLAIN)
    await ex.respond_json(200, {"a": 1})
    assert (b"connection", b"close") in wire.sent[0].headers  # type: ignore[attr-defined]


async def test_head_only_sends_the_get_head_without_its_body() -> None:
    wire = FakeWire()
    ex = Exchange(wire, make_request(method="HEAD"), PLAIN)
    await ex.respond(200, b"abc")
    head, end = wire.sent
    assert dict(head.headers)[b"content-length"] == b"3"  # type: ignore[attr-defined]
    assert isinstance(end, h11.EndOfMessage)
    assert ex.bytes_sent == 0


async def test_a_stream_counts_its_bytes_and_one_head_only() -> None:
    wire = FakeWire()
    ex = Exchange(wire, make_request(), PLAIN)
    ex.upstream_wait_s = 3600.0  # waiting on providers is not overhead
    await ex.start(200, content_type=b"text/event-stream")
    await ex.send(b"data: 1\n\n")
    await ex.send(b"")  # nothing to send: nothing sent
    assert ex.bytes_sent == 9
    assert len(wire.sent) == 2
    assert ex.overhead_at_head_s == 0.0
    assert not ex.finished  # the connection ends a stream
    with pytest.raises(RuntimeError, match="already sent"):
        await ex.respond(500, b"")


async def test_a_departed_client_is_client_gone() -> None:
    ex = Exchange(FakeWire(gone=True), make_request(), PLAIN)
    with pytest.raises(ClientGone):
        await ex.respond(200, b"x")


def test_only_client_gone_groups() -> None:
    gone = BaseExceptionGroup("g", [ClientGone(), trio.BrokenResourceError()])
    assert only_client_gone(gone)
    assert not only_client_gone(BaseExceptionGroup("g", [trio.BrokenResourceError()]))
    assert not only_client_gone(BaseExceptionGroup("g", [ClientGone(), ValueError()]))


async def test_the_record_of_an_answeredmake_request() -> None:
    ex = Exchange(FakeWire(), make_request(), PLAIN)
    ex.facts = Facts()
    await ex.respond(200, b"abc")
    record = HttpRecord.of(ex.request, ex)
    assert (record.request_id, record.method, record.target, record.client) == (
        "rid",
        "GET",
        "/x?a=1",
        "127.0.0.1:5",
    )
    assert (record.status, record.bytes_sent, record.finished) == (200, 3, True)
    assert record.head_s == ex.head_s
    assert record.overhead_s == ex.overhead_at_head_s
    assert record.duration_s >= record.head_s
    assert not record.client_gone
    assert record.facts == Facts()


def test_the_record_of_a_request_without_a_response() -> None:
    request = make_request()
    ex = Exchange(FakeWire(), request, PLAIN)
    ex.client_gone = True
    record = HttpRecord.of(request, ex)
    assert (record.status, record.head_s, record.overhead_s) == (None, None, None)
    assert record.client_gone
    bare = HttpRecord.of(request, None)
    assert (bare.status, bare.bytes_sent, bare.facts, bare.finished) == (None, 0, None, False)
