"""WebSocket upgrades on the HTTP server (gateway.server.websocket), without the LLM part.

A bare Server with one WebSocket echo route and two HTTP routes, on memory streams:
the handshake replayed to trio-websocket (a frame sent in the same write as the head
included), 426 for the wrong kind of request, 400 for a bad handshake, 1001 on drain.
"""

from __future__ import annotations

import h11
import pytest
import trio
import trio_websocket
from trio_websocket import ConnectionClosed
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, TextMessage
from wsproto.events import Request as WSRequest
from wsproto.frame_protocol import FrameProtocol

from gateway.config import Config, ServerConfig
from gateway.errors import BadRequest, MethodNotAllowed, NotFound, UpgradeRequired
from gateway.server.exchange import Exchange, Request
from gateway.server.listen import Server
from gateway.server.routes import Route, Router
from gateway.server.websocket import ReplayStream, upgrade_refusal, wants_websocket
from tests.server.helpers import H11Client, connect_memory, read_until_closed

LIMIT_S = 5
UPGRADE = [
    ("connection", "keep-alive, Upgrade"),
    ("upgrade", "websocket"),
    ("sec-websocket-version", "13"),
    ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
]


async def ws_echo(ex: Exchange) -> None:
    assert ex.upgrade is not None
    async with trio.open_nursery() as nursery:
        ws = await ex.upgrade.accept(nursery, headers=[(b"x-extra", b"yes")])

        async def go_away() -> None:
            await ex.upgrade.wait_going_away()
            await ws.aclose(1001, "going away")

        nursery.start_soon(go_away)
        try:
            while True:
                message = await ws.get_message()
                await ws.send_message("echo:" + message if isinstance(message, str) else message)
        except ConnectionClosed:
            pass
        nursery.cancel_scope.cancel()


async def hello(ex: Exchange) -> None:
    await ex.respond_json(200, {"hello": True})


def _server() -> Server:
    routes = [
        Route("GET", "/ws", ws_echo, websocket=True),
        Route("GET", "/hello", hello),
        Route("POST", "/post", hello),
    ]
    return Server(Config(server=ServerConfig()), Router(routes))


async def test_a_frame_sent_with_the_head_is_replayed_to_the_websocket(nursery):
    server = _server()
    stream = connect_memory(nursery, server)
    client = WSConnection(ConnectionType.CLIENT)
    head = client.send(WSRequest(host="test", target="/ws?x=1"))
    frame = FrameProtocol(client=True, extensions=[]).send_data("hello", fin=True)
    await stream.send_all(head + bytes(frame))  # one write: h11 keeps the frame after the head
    events: list = []
    with trio.fail_after(LIMIT_S):
        for _ in range(20):
            client.receive_data(await stream.receive_some(65536))
            events.extend(client.events())
            if any(isinstance(e, TextMessage) for e in events):
                break
    accept = next(e for e in events if isinstance(e, AcceptConnection))
    headers = dict(accept.extra_headers)
    assert headers[b"x-extra"] == b"yes"
    assert len(headers[b"x-request-id"]) == 32
    assert b"x-gateway-overhead-ms" in headers
    assert [e.data for e in events if isinstance(e, TextMessage)] == ["echo:hello"]


async def test_the_connection_closes_after_the_session_and_never_speaks_http_again(nursery):
    server = _server()
    stream = connect_memory(nursery, server)
    client = WSConnection(ConnectionType.CLIENT)
    await stream.send_all(client.send(WSRequest(host="test", target="/ws")))
    with trio.fail_after(LIMIT_S):
        client.receive_data(await stream.receive_some(65536))
        assert any(isinstance(e, AcceptConnection) for e in client.events())
        # A close, then an HTTP request on the same bytes stream: never answered as HTTP.
        await stream.send_all(client.send(CloseConnection(code=4001, reason="done")))
        await stream.send_all(b"GET /hello HTTP/1.1\r\nhost: t\r\n\r\n")
        rest = await read_until_closed(stream)
    client.receive_data(rest)  # all the server sent before it closed the connection
    events = list(client.events())
    assert isinstance(events[0], CloseConnection)
    assert (events[0].code, events[0].reason) == (4001, "done")  # the server's echo
    assert b"HTTP/1.1" not in rest


async def test_plain_http_on_a_websocket_route_is_426_and_keeps_the_connection(nursery):
    server = _server()
    client = H11Client(connect_memory(nursery, server))
    with trio.fail_after(LIMIT_S):
        refused = await client.request("GET", "/ws")
        after = await client.request("GET", "/hello")
    assert refused.status == 426
    assert refused.headers[b"upgrade"] == b"websocket"
    assert "connect with a WebSocket" in refused.json()["error"]["message"]
    assert after.status == 200


@pytest.mark.parametrize("path", ["/hello", "/post"])
async def test_an_upgrade_to_an_http_route_is_426_and_keeps_the_connection(nursery, path):
    server = _server()
    client = H11Client(connect_memory(nursery, server))
    with trio.fail_after(LIMIT_S):
        refused = await client.request("GET", path, headers=UPGRADE)
        after = await client.request("GET", "/hello")
    assert refused.status == 426
    assert b"upgrade" not in refused.headers
    assert "does not accept WebSocket" in refused.json()["error"]["message"]
    assert after.status == 200


async def test_other_upgrades_are_served_as_http(nursery):
    server = _server()
    client = H11Client(connect_memory(nursery, server))
    h2c = [("connection", "Upgrade, HTTP2-Settings"), ("upgrade", "h2c"), ("http2-settings", "")]
    with trio.fail_after(LIMIT_S):
        reply = await client.request("GET", "/hello", headers=h2c)
    assert reply.status == 200


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("sec-websocket-version", "8"),
        ("sec-websocket-key", "c2hvcnQ="),
        ("sec-websocket-key", "!!"),
    ],
)
async def test_a_bad_handshake_is_a_400(nursery, name, value):
    server = _server()
    client = H11Client(connect_memory(nursery, server))
    headers = [(k, value if k == name else v) for k, v in UPGRADE]
    with trio.fail_after(LIMIT_S):
        reply = await client.request("GET", "/ws", headers=headers)
    assert reply.status == 400
    assert client.conn.our_state is h11.IDLE  # refused as HTTP: the connection goes on


async def test_draining_closes_a_session_with_1001(nursery):
    server = _server()
    stream = connect_memory(nursery, server)
    with trio.fail_after(LIMIT_S):
        async with trio.open_nursery() as inner:
            ws = await trio_websocket.wrap_client_stream(inner, stream, "test", "/ws")
            await ws.send_message("hi")
            assert await ws.get_message() == "echo:hi"
            server.context.start_draining()
            with pytest.raises(ConnectionClosed) as closed:
                await ws.get_message()
            inner.cancel_scope.cancel()
    assert (closed.value.reason.code, closed.value.reason.reason) == (1001, "going away")


def _request(method: str = "GET", headers: list[tuple[bytes, bytes]] | None = None) -> Request:
    return Request(
        method=method,
        target="/p",
        headers=headers or [],
        body=b"",
        request_id="r",
        client="-",
        started=0.0,
    )


WS_HEADERS = [(k.encode(), v.encode()) for k, v in UPGRADE]
WS_ROUTE = Route("GET", "/p", hello, websocket=True)
HTTP_ROUTE = Route("GET", "/p", hello)


@pytest.mark.parametrize(
    ("request_", "route", "route_error", "expected"),
    [
        (_request(headers=WS_HEADERS), WS_ROUTE, None, None),
        (_request(), WS_ROUTE, None, UpgradeRequired),
        (_request(headers=WS_HEADERS), HTTP_ROUTE, None, UpgradeRequired),
        (
            _request(headers=WS_HEADERS),
            None,
            MethodNotAllowed("x", allowed=("POST",)),
            UpgradeRequired,
        ),
        (_request(headers=WS_HEADERS), None, NotFound("x"), None),  # nothing there: the 404
        (_request(), HTTP_ROUTE, None, None),
        (_request(headers=WS_HEADERS[:3]), WS_ROUTE, None, BadRequest),  # no key
    ],
)
def test_upgrade_refusal(request_, route, route_error, expected):
    refusal = upgrade_refusal(request_, route, route_error)
    assert type(refusal) is expected if expected else refusal is None


def test_wants_websocket_reads_header_tokens_case_blind():
    assert wants_websocket(
        _request(headers=[(b"connection", b"Keep-Alive, UPGRADE"), (b"upgrade", b"WebSocket")])
    )
    assert not wants_websocket(_request(headers=[(b"upgrade", b"websocket")]))  # no Connection
    assert not wants_websocket(_request("POST", WS_HEADERS))


async def test_replay_stream_gives_the_head_then_waits_for_release():
    left, right = trio.testing.memory_stream_pair()
    replay = ReplayStream(right, b"abcdef", b"12")
    await left.send_all(b"ghi")
    assert await replay.receive_some(4) == b"abcd"
    assert await replay.receive_some(4) == b"ef"
    with trio.move_on_after(0.1) as held:
        await replay.receive_some(4)
    assert held.cancelled_caught  # nothing past the head before the handshake is answered
    replay.release()
    assert await replay.receive_some(4) == b"12"
    assert await replay.receive_some(4) == b"ghi"
    await replay.send_all(b"out")
    assert await left.receive_some(10) == b"out"
