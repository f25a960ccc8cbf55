"""Our load generator, on asyncio and :class:`~rig.clients.ClientConnection`.

Pure Python, it needs about a core for itself (beside it nginx measures the generator's
ceiling): wrk is preferred for requests; streams (SSE events counted as they arrive),
streams held open and cancellations are ours alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from rig.clients import ClientConnection
from rig.report import percentile

#: Bounds on what one run may do, whatever the options say.
MAX_CONNECTIONS = 2000
MAX_REQUESTS = 5_000_000
P = ParamSpec("P")
T = TypeVar("T")


def synchronous(fn: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, T]:
    """``fn`` run to completion in an event loop of its own."""
    return functools.wraps(fn)(lambda *args, **kwargs: asyncio.run(fn(*args, **kwargs)))


@dataclass
class LoadResult:
    """What a request generator (wrk or ours) measured."""

    generator: str
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    errors: int = 0
    non_2xx: int = 0
    header_values: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        rounded = ("rps", "p50_ms", "p90_ms", "p99_ms")
        return {k: round(v, 3) if k in rounded else v for k, v in vars(self).items()
                if k != "header_values"}  # fmt: skip


@dataclass
class Load:
    """What :func:`run_load` saw in its window (events: partial streams included)."""

    duration_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    non_2xx: int = 0
    header_values: list[float] = field(default_factory=list)
    events: int = 0
    first_event_ms: list[float] = field(default_factory=list)
    events_per_stream: list[int] = field(default_factory=list)  # per 2xx response

    @property
    def streams(self) -> int:
        return len(self.events_per_stream)

    def per_s(self, count: float) -> float:
        return count / self.duration_s if self.duration_s else 0.0

    def result(self) -> LoadResult:
        ms = self.latencies_ms
        return LoadResult(
            "asyncio", len(ms), round(self.duration_s, 3), self.per_s(len(ms)),
            *(percentile(ms, p) for p in (50, 90, 99)), self.errors, self.non_2xx,
            self.header_values,
        )  # fmt: skip


@synchronous
async def run_load(
    port: int, requests: list[bytes], connections: int, duration_s: float,
    header: bytes | None = None, *, stream: bool = False,
) -> Load:  # fmt: skip
    """``connections`` connections sending ``requests`` in turn, back to back, for
    ``duration_s``. Requests in flight at the end are not counted (as wrk does), streams
    are cut there (``stream``); events are counted as they arrive. Also reads ``header``
    (``x-gateway-overhead-ms``) from every response, as the wrk script does."""
    out, sent = Load(), [0]
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + duration_s

    def on_event(new: int) -> None:
        out.events += new

    async def worker() -> None:
        while loop.time() < deadline:
            conn = None
            try:
                conn = await ClientConnection.open(port)
                conn.on_event = on_event
                while loop.time() < deadline and sent[0] < MAX_REQUESTS:
                    resp = await conn.send(requests[sent[0] % len(requests)])
                    sent[0] += 1
                    if loop.time() > deadline:
                        break
                    out.latencies_ms.append((resp.finished - resp.started) * 1000)
                    if header is not None and header in resp.headers:
                        out.header_values.append(float(resp.headers[header]))
                    if not 200 <= resp.status < 300:
                        out.non_2xx += 1
                        continue
                    out.events_per_stream.append(resp.events)
                    if resp.first_event:
                        out.first_event_ms.append((resp.first_event - resp.started) * 1000)
            except (OSError, ConnectionError):
                out.errors += 1
                await asyncio.sleep(0.01)
            finally:
                if conn is not None:
                    conn.close()

    tasks = [loop.create_task(worker()) for _ in range(min(connections, MAX_CONNECTIONS))]
    await asyncio.sleep(duration_s)
    deadline = loop.time()  # the window: what the workers count ends here
    out.duration_s, in_window = deadline - started, out.events
    if stream:
        for task in tasks:
            task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(0.05 if stream else 0)
    out.events = in_window
    return out


async def _open_stream(
    port: int, data: bytes, events: int, count: list[int]
) -> tuple[ClientConnection, asyncio.Future[None]]:
    """A stream of ``data`` on a new connection, and a future set once it brought
    ``events`` events; its events are added to ``count[0]``."""
    conn = await ClientConnection.open(port)
    reached: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_event(new: int) -> None:
        count[0] += new
        if conn.resp.events >= events and not reached.done():
            reached.set_result(None)

    conn.on_event = on_event
    conn.send(data).add_done_callback(lambda f: f.exception())
    return conn, reached


@synchronous
async def hold_streams(
    port: int, data: bytes, count: int, *, sample: Callable[[], Any], hold_s: float
) -> dict[str, Any]:
    """Open ``count`` streams (50 at a time), wait for each one's first event, call
    ``sample()`` every 0.25 s while holding them for ``hold_s``, close them."""
    events, conns, firsts, failed = [0], [], [], 0
    started = time.monotonic()
    try:
        for i in range(min(count, MAX_CONNECTIONS)):
            try:
                conn, first = await _open_stream(port, data, 1, events)
                conns.append(conn)
                firsts.append(first)
            except OSError:
                failed += 1
            if (i + 1) % 50 == 0:
                await asyncio.sleep(0.01)  # let the servers accept a batch at a time
        done, pending = await asyncio.wait(firsts, timeout=30) if firsts else ((), ())
        out = {"streams_open": len(done), "streams_failed": failed + len(pending),
               "open_s": round(time.monotonic() - started, 3), "hold_s": hold_s}  # fmt: skip
        until = time.monotonic() + hold_s
        while True:
            sample()
            if time.monotonic() >= until:
                return {**out, "events_while_held": events[0]}
            await asyncio.sleep(min(0.25, max(0.0, until - time.monotonic())))
    finally:
        for conn in conns:
            conn.close()
        await asyncio.sleep(0.05)


@synchronous
async def cancel_trials(
    port: int, make_request: Callable[[str], bytes], ids: list[str]
) -> dict[str, float]:
    """Per id: a stream, 3 events read, the connection closed (FIN, or RST with unread
    bytes); ``{id: time.monotonic() of the close}``, comparable with the mock upstream's."""
    closed: dict[str, float] = {}
    for rid in ids:
        conn, reached = await _open_stream(port, make_request(rid), 3, [0])
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(reached, 10)
            closed[rid] = time.monotonic()
        conn.close()
        await asyncio.wait_for(conn.lost, 10)
        await asyncio.sleep(0.02)
    return closed
