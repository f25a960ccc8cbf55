"""Test doubles for the HTTP server: a small app, and an h11 client over any stream."""

from __future__ import annotations

import time
from typing import Any

import attrs
import h11
import trio
import trio.testing

from gateway.config import Config, ServerConfig
from gateway.dialects import DEFAULT, DIALECTS, dialect_for_path
from gateway.server.connection import handle_connection
from gateway.server.exchange import ClientGone, Exchange, Request
from gateway.server.listen import Server
from gateway.server.routes import Route, Router


@attrs.define
class Probe:
    """What the test handlers saw."""

    started: trio.Event = attrs.Factory(trio.Event)
    cancelled: trio.Event = attrs.Factory(trio.Event)
    finished: trio.Event = attrs.Factory(trio.Event)
    stopped: trio.Event = attrs.Factory(trio.Event)
    release: trio.Event = attrs.Factory(trio.Event)
    chunks_sent: int = 0
    bodies: list[bytes] = attrs.Factory(list)


def make_server(probe: Probe, **server_settings: Any) -> Server:
    async def echo(ex: Exchange) -> None:
        probe.bodies.append(ex.request.body)
        await ex.respond(200, ex.request.body, content_type=b"application/octet-stream")

    async def hello(ex: Exchange) -> None:
        await ex.respond_json(200, {"hello": ex.request.path, "query": ex.request.query})

    async def boom(ex: Exchange) -> None:
        raise RuntimeError("handler bug with secret detail")

    async def wait(ex: Exchange) -> None:
        probe.started.set()
        try:
            await probe.release.wait()
        except trio.Cancelled:
            probe.cancelled.set()
            raise
        await ex.respond_json(200, {"released": True})
        probe.finished.set()

    async def stream(ex: Exchange) -> None:
        count = int(ex.request.query.partition("=")[2] or 10)
        await ex.start(200, content_type=b"text/event-stream")
        try:
            for i in range(count):
                await ex.send(b"data: %d %s\n\n" % (i, b"x" * 1000))
                probe.chunks_sent += 1
        finally:
            probe.stopped.set()

    async def mute(ex: Exchange) -> None:
        return None

    routes = [
        Route("POST", "/echo", echo),
        Route("GET", "/hello", hello),
        Route("GET", "/boom", boom),
        Route("GET", "/wait", wait, watch_disconnect=True),
        Route("GET", "/stream", stream, watch_disconnect=True),
        Route("GET", "/mute", mute),
        Route("POST", "/gemini/{rest:path}", echo, dialect=DIALECTS["gemini"]),
    ]
    config = Config(server=ServerConfig(**server_settings))
    return Server(config, Router(routes), dialect=DEFAULT, dialect_for_path=dialect_for_path)


@attrs.define
class FakeWire:
    """Records what an Exchange sends; ``gone`` makes every send fail as a departed client."""

    draining: bool = False
    gone: bool = False
    sent: list[h11.Event] = attrs.Factory(list)

    async def send_events(self, *events: h11.Event) -> None:
        if self.gone:
            raise ClientGone
        self.sent.extend(events)


def make_request(method: str = "GET", target: str = "/x?a=1") -> Request:
    return Request(
        method=method,
        target=target,
        headers=[(b"x-one", b"1"), (b"x-two", b"2"), (b"x-one", b"again")],
        body=b"",
        request_id="rid",
        client="127.0.0.1:5",
        started=time.perf_counter(),
    )


@attrs.define
class Reply:
    status: int
    headers: dict[bytes, bytes]
    body: bytes

    def json(self) -> Any:
        import json

        return json.loads(self.body)


class H11Client:
    """A client connection speaking HTTP/1.1 through h11 over ``stream``."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.conn = h11.Connection(h11.CLIENT)

    async def send(self, *events: Any) -> None:
        await self.stream.send_all(b"".join(self.conn.send(e) or b"" for e in events))

    async def next_event(self) -> Any:
        while True:
            event = self.conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            self.conn.receive_data(await self.stream.receive_some(65536))

    async def read_reply(self) -> Reply:
        event = await self.next_event()
        while isinstance(event, h11.InformationalResponse):
            event = await self.next_event()
        assert isinstance(event, h11.Response), event
        body = b""
        while True:
            part = await self.next_event()
            if isinstance(part, h11.Data):
                body += part.data
            elif isinstance(part, h11.EndOfMessage):
                break
            else:
                raise AssertionError(f"unexpected {part!r}")
        return Reply(event.status_code, dict(event.headers), body)

    async def request(
        self,
        method: str,
        target: str,
        body: bytes = b"",
        headers: list[tuple[str, str]] | None = None,
    ) -> Reply:
        hdrs = [("host", "test"), *(headers or [])]
        if body or method == "POST":
            hdrs.append(("content-length", str(len(body))))
        await self.send(h11.Request(method=method, target=target, headers=hdrs))
        if body:
            await self.send(h11.Data(data=body))
        await self.send(h11.EndOfMessage())
        reply = await self.read_reply()
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            self.conn.start_next_cycle()
        return reply


async def read_until_closed(stream: trio.abc.ReceiveStream) -> bytes:
    data = b""
    while True:
        try:
            chunk = await stream.receive_some(65536)
        except trio.BrokenResourceError:
            return data
        if not chunk:
            return data
        data += chunk


def connect_memory(
    nursery: trio.Nursery, server: Server, *, lockstep: bool = False
) -> trio.abc.HalfCloseableStream:
    """A client stream whose other end is served by ``server`` in ``nursery``.

    ``lockstep`` streams hold no buffer: a write waits until the reader took it.
    """
    pair = trio.testing.lockstep_stream_pair if lockstep else trio.testing.memory_stream_pair
    client, server_end = pair()
    nursery.start_soon(handle_connection, server.context, server_end)
    return client
