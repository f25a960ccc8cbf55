"""Dialects: which one words the server's own errors, and the plain one a bare server speaks."""

from __future__ import annotations

import json
from collections.abc import Callable

import attrs
import h11
import pytest
import trio
import trio.testing

from gateway.config import Config
from gateway.errors import BadRequest, GatewayError, RateLimited
from gateway.server.dialect import PLAIN
from gateway.server.exchange import Exchange
from gateway.server.listen import Server
from gateway.server.responses import Headers, dump_json
from gateway.server.routes import Route, Router
from gateway.server.watchdog import ClientWatch
from tests.server.helpers import FakeWire, H11Client, connect_memory, make_request


@attrs.frozen
class Tagged:
    """A dialect that names itself in every error body."""

    name: str
    keepalive: bytes = b""

    def error_response(self, exc: GatewayError) -> tuple[int, Headers, bytes]:
        body = {"dialect": self.name, "message": exc.message}
        return exc.status_hint, [(b"x-dialect", self.name.encode())], dump_json(body)


ROUTED, DEFAULT, FALLBACK = Tagged("routed"), Tagged("default"), Tagged("fallback")


async def _refuse(ex: Exchange) -> None:
    raise BadRequest(f"refused in {ex.dialect.name}")


async def _boom(ex: Exchange) -> None:
    raise RuntimeError("bug")


def _server(**dialects: object) -> Server:
    routes = [
        Route("GET", "/routed", _refuse, ROUTED),
        Route("GET", "/default", _refuse),
        Route("GET", "/boom", _boom, ROUTED),
    ]
    return Server(Config(), Router(routes), **dialects)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("target", "dialect", "status"),
    [
        ("/routed", "routed", 400),  # the route's own
        ("/default", "default", 400),  # a route that names none: the server's default
        ("/nowhere", "fallback", 404),  # no route: the app's pick for the path
        ("/boom", "routed", 500),  # a handler's bug, in its route's words
    ],
)
async def test_the_dialect_of_each_kind_of_request(nursery, target, dialect, status):
    server = _server(dialect=DEFAULT, dialect_for_path=lambda path: FALLBACK)
    client = H11Client(connect_memory(nursery, server))
    reply = await client.request("GET", target)
    assert reply.status == status
    assert reply.json()["dialect"] == dialect
    assert reply.headers[b"x-dialect"] == dialect.encode()


async def test_without_a_fallback_unmatched_paths_take_the_default(nursery):
    client = H11Client(connect_memory(nursery, _server(dialect=DEFAULT)))
    reply = await client.request("GET", "/nowhere")
    assert reply.json()["dialect"] == "default"


async def test_a_bare_server_speaks_plain_json(nursery):
    client = H11Client(connect_memory(nursery, _server()))
    reply = await client.request("GET", "/nowhere")
    assert reply.status == 404
    assert reply.json() == {
        "error": {"type": "not_found", "message": reply.json()["error"]["message"]}
    }
    reply = await client.request("POST", "/routed")
    assert reply.status == 405
    assert reply.headers[b"allow"] == b"GET, HEAD"  # HTTP's own headers, whatever the dialect


def test_plain_words_any_gateway_error() -> None:
    status, headers, body = PLAIN.error_response(RateLimited("slow down", retry_after_s=3))
    assert (status, headers) == (429, [])
    assert json.loads(body) == {"error": {"type": "rate_limit", "message": "slow down"}}
    assert PLAIN.keepalive == b""


async def test_the_watchdog_probes_a_stream_with_its_dialects_keepalive() -> None:
    """At EOF inside an event stream the probe is the route's dialect's keep-alive bytes."""

    async def send_probe(make_event: Callable[[], h11.Event | None]) -> None:
        raise AssertionError("not sent here")

    conn = h11.Connection(h11.SERVER)
    conn.receive_data(b"GET / HTTP/1.1\r\nhost: t\r\n\r\n")
    conn.next_event()
    conn.next_event()
    ex = Exchange(FakeWire(), make_request(), Tagged("sse", keepalive=b": ka\n\n"))
    stream, _ = trio.testing.memory_stream_pair()
    watch = ClientWatch(conn, stream, 1024, send_probe)
    assert isinstance(watch.probe_event(ex), h11.InformationalResponse)  # before the head
    conn.send(h11.Response(status_code=200, headers=[]))
    ex.status, ex.content_type = 200, b"text/event-stream"
    assert watch.probe_event(ex) == h11.Data(data=b": ka\n\n")
    ex.dialect = PLAIN  # no keep-alive bytes: the handler's own sends tell
    assert watch.probe_event(ex) is None
