"""Tiny fake Redis servers on 127.0.0.1 for what a real one will not do on demand: never
answer, answer late, answer garbage, hang up at once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs
import trio

from gateway.redis.resp import NEED_DATA, RespParser

Handler = Callable[[trio.SocketStream, "FakeRedis"], Awaitable[None]]


@attrs.define
class FakeRedis:
    port: int = 0
    connections: int = 0
    commands: list[list[bytes]] = attrs.Factory(list)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"


async def start_fake(nursery: trio.Nursery, handler: Handler) -> FakeRedis:
    """Serve ``handler(stream, fake)`` per connection until the nursery is cancelled."""
    fake = FakeRedis()
    (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    fake.port = listener.socket.getsockname()[1]

    async def serve(stream: trio.SocketStream) -> None:
        fake.connections += 1
        async with stream:
            try:
                await handler(stream, fake)
            except trio.BrokenResourceError:
                pass

    nursery.start_soon(trio.serve_listeners, serve, [listener])
    return fake


async def read_command(stream: trio.SocketStream, parser: RespParser, fake: FakeRedis):
    """The next command from the client, or None at EOF."""
    for _ in range(10_000):
        command = parser.next_reply()
        if command is not NEED_DATA:
            fake.commands.append(command)
            return command
        data = await stream.receive_some(65536)
        if not data:
            return None
        parser.feed(data)
    raise AssertionError("a command never ended")


def replying(answer: Callable[[list[bytes]], Awaitable[bytes]]) -> Handler:
    """A handler that answers each command with ``await answer(command)``."""

    async def handler(stream: trio.SocketStream, fake: FakeRedis) -> None:
        parser = RespParser()
        for _ in range(10_000):
            command = await read_command(stream, parser, fake)
            if command is None:
                return
            await stream.send_all(await answer(command))

    return handler


async def never_answers(stream: trio.SocketStream, fake: FakeRedis) -> None:
    await trio.sleep_forever()


async def hangs_up(stream: trio.SocketStream, fake: FakeRedis) -> None:
    return
