"""A fake provider that records every request target it gets (any path), and a raw client.

The proxy tests' FakeProvider serves only the paths a provider has; a request the
gateway sends anywhere else would be a 404 there and go unseen. Security tests
need the opposite: every target the provider host receives, exactly as sent.
"""

from __future__ import annotations

import trio

from gateway.config import Config
from gateway.dialects import DEFAULT, dialect_for_path
from gateway.server.listen import Server, open_listeners
from gateway.server.routes import Route, Router
from tests.proxy.fakes import FakeProvider


class RecordingProvider(FakeProvider):
    """FakeProvider answering (and recording) a POST to any path."""

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        routes = [Route("POST", "/{rest:path}", self.handle, watch_disconnect=True)]
        server = Server(
            Config(),
            Router(routes),
            tls=self.tls,
            dialect=DEFAULT,
            dialect_for_path=dialect_for_path,
        )
        listeners = await open_listeners("127.0.0.1", 0)
        self.port = listeners[0].socket.getsockname()[1]
        await server.serve(listeners, task_status=task_status)


async def raw_request(
    port: int, method: str, target: str, body: bytes = b"", **headers: str
) -> bytes:
    """Send one request exactly as written (no client-side path normalisation); the raw answer."""
    head = [f"{method} {target} HTTP/1.1", "host: 127.0.0.1", "connection: close"]
    head += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    head.append(f"content-length: {len(body)}")
    data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    out = bytearray()
    async with stream:
        await stream.send_all(data)
        with trio.fail_after(10):
            while chunk := await stream.receive_some(65536):
                out += chunk
    return bytes(out)


def status_of(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1])
