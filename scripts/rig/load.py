"""Our load generator, on asyncio and :class:`~rig.clients.ClientConnection`.

- :func:`run_requests`: N keep-alive connections sending back to back for a fixed time;
  the fallback when wrk is missing. Requests still in flight when the time runs out are
  not counted (wrk does the same). It also reads a response header from every response
  (``x-gateway-overhead-ms``), as the wrk driver does.
- :func:`run_streams`: N connections each running streamed requests back to back;
  counts SSE events as they arrive, partial streams at the deadline included.
- :func:`hold_streams`: opens N streams at once, waits until every one has its first
  event, keeps reading them while ``sample()`` runs, then closes them.
- :func:`cancel_trials`: opens a stream, reads a few events, closes the connection and
  notes when (``time.monotonic()``, comparable with the mock upstream's record of when
  its socket saw EOF).

Pure Python: on a 2-core machine it needs about a core for itself and tops out well
below what nginx serves, so with it the nginx figures are the generator's ceiling, not
nginx's. Prefer wrk for figures worth quoting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rig.clients import ClientConnection
from rig.report import percentile

#: Bounds on what one run may do, whatever the options say.
MAX_CONNECTIONS = 2000
MAX_REQUESTS = 5_000_000
_ROUNDED = ("rps", "p50_ms", "p90_ms", "p99_ms")


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
        out = {k: v for k, v in self.__dict__.items() if k != "header_values"}
        return {k: round(v, 3) if k in _ROUNDED else v for k, v in out.items()}


async def _requests(
    requests: list[bytes], port: int, connections: int, duration_s: float, header: bytes | None
) -> LoadResult:
    latencies: list[float] = []
    values: list[float] = []
    errors = [0, 0]  # connection errors, non-2xx
    deadline = time.perf_counter() + duration_s

    async def worker() -> None:
        conn: ClientConnection | None = None
        while time.perf_counter() < deadline and len(latencies) < MAX_REQUESTS:
            try:
                conn = conn or await ClientConnection.open(port)
                resp = await conn.send(requests[len(latencies) % len(requests)])
            except (OSError, ConnectionError):
                errors[0] += 1
                conn = None
                await asyncio.sleep(0.01)
                continue
            if time.perf_counter() > deadline:
                break
            latencies.append(resp.finished - resp.started)
            errors[1] += not 200 <= resp.status < 300
            if header is not None and header in resp.headers:
                values.append(float(resp.headers[header]))
        if conn is not None:
            conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(connections, MAX_CONNECTIONS))))
    took = min(time.perf_counter(), deadline) - started
    ms = [x * 1000 for x in latencies]
    p50, p90, p99 = (percentile(ms, p) for p in (50, 90, 99))
    rps = len(ms) / took if took else 0.0
    return LoadResult("asyncio", len(ms), round(took, 3), rps, p50, p90, p99, *errors, values)


def run_requests(
    requests: list[bytes],
    port: int,
    connections: int,
    duration_s: float,
    header: bytes | None = None,
) -> LoadResult:
    """``connections`` workers sending ``requests`` (in turn) back to back for ``duration_s``."""
    return asyncio.run(_requests(requests, port, connections, duration_s, header))


@dataclass
class StreamLoad:
    streams: int = 0
    events: int = 0
    errors: int = 0
    non_2xx: int = 0
    duration_s: float = 0.0
    first_event_ms: list[float] = field(default_factory=list)
    events_per_stream: list[int] = field(default_factory=list)

    @property
    def events_per_s(self) -> float:
        return self.events / self.duration_s if self.duration_s else 0.0

    @property
    def streams_per_s(self) -> float:
        return self.streams / self.duration_s if self.duration_s else 0.0


async def _streams(port: int, data: bytes, connections: int, duration_s: float) -> StreamLoad:
    result = StreamLoad()
    counted = [0]  # events received before the deadline, partial streams included
    loop = asyncio.get_running_loop()
    deadline = loop.time() + duration_s
    open_conns: set[ClientConnection] = set()

    async def worker() -> None:
        while loop.time() < deadline:
            try:
                conn = await ClientConnection.open(port)
            except OSError:
                result.errors += 1
                await asyncio.sleep(0.01)
                continue
            open_conns.add(conn)
            seen, first = [0], [0.0]

            def on_event(total: int, seen: list[int] = seen, first: list[float] = first) -> None:
                first[0] = first[0] or time.perf_counter()
                counted[0] += total - seen[0]
                seen[0] = total

            conn.on_event = on_event
            try:
                while loop.time() < deadline:
                    seen[0], first[0] = 0, 0.0
                    resp = await conn.send(data)
                    if not 200 <= resp.status < 300:
                        result.non_2xx += 1
                        continue
                    result.streams += 1
                    result.events_per_stream.append(resp.events)
                    if first[0]:
                        result.first_event_ms.append((first[0] - resp.started) * 1000)
            except (OSError, ConnectionError):
                result.errors += 1
            finally:
                conn.close()
                open_conns.discard(conn)

    started = loop.time()
    tasks = [loop.create_task(worker()) for _ in range(min(connections, MAX_CONNECTIONS))]
    await asyncio.sleep(duration_s)
    result.events, result.duration_s = counted[0], loop.time() - started
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for conn in list(open_conns):
        conn.close()
    await asyncio.sleep(0.05)
    return result


def run_streams(port: int, data: bytes, connections: int, duration_s: float) -> StreamLoad:
    """``connections`` workers running streams of ``data`` back to back; events counted."""
    return asyncio.run(_streams(port, data, connections, duration_s))


async def _open_stream(
    port: int, data: bytes, events: int, seen: list[int]
) -> tuple[ClientConnection, asyncio.Future[None]]:
    """A stream of ``data`` on a new connection, and a future set once it brought
    ``events`` events; every event of it is added to ``seen[0]``."""
    conn = await ClientConnection.open(port)
    reached: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    last = [0]

    def on_event(total: int) -> None:
        seen[0] += total - last[0]
        last[0] = total
        if total >= events and not reached.done():
            reached.set_result(None)

    conn.on_event = on_event
    conn.send(data).add_done_callback(lambda f: f.exception())
    return conn, reached


@dataclass
class HoldResult:
    opened: int = 0
    failed: int = 0
    events: int = 0
    open_s: float = 0.0


async def _hold(
    port: int, data: bytes, count: int, sample: Callable[[], Any], hold_s: float,
    open_timeout_s: float = 30.0, sample_every_s: float = 0.25, batch: int = 50,
) -> HoldResult:  # fmt: skip
    result, events = HoldResult(), [0]
    conns: list[ClientConnection] = []
    firsts: list[asyncio.Future[None]] = []
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        for i in range(min(count, MAX_CONNECTIONS)):
            try:
                conn, first = await _open_stream(port, data, 1, events)
            except OSError:
                result.failed += 1
                continue
            conns.append(conn)
            firsts.append(first)
            if (i + 1) % batch == 0:
                await asyncio.sleep(0.01)  # let the servers accept a batch at a time
        done, pending = await asyncio.wait(firsts, timeout=open_timeout_s) if firsts else ((), ())
        result.opened, result.open_s = len(done), loop.time() - started
        result.failed += len(pending)
        until = loop.time() + hold_s
        while True:
            sample()
            if loop.time() >= until:
                break
            await asyncio.sleep(min(sample_every_s, max(0.0, until - loop.time())))
        result.events = events[0]
    finally:
        for conn in conns:
            conn.close()
        await asyncio.sleep(0.05)
    return result


def hold_streams(
    port: int, data: bytes, count: int, *, sample: Callable[[], Any], hold_s: float
) -> HoldResult:
    """Open ``count`` streams, wait for each one's first event, sample while holding, close."""
    return asyncio.run(_hold(port, data, count, sample, hold_s))


async def _cancel(
    port: int, make_request: Callable[[str], bytes], ids: list[str], after_events: int = 3,
    gap_s: float = 0.02, timeout_s: float = 10.0,
) -> dict[str, float]:  # fmt: skip
    closed: dict[str, float] = {}
    for rid in ids:
        conn, reached = await _open_stream(port, make_request(rid), after_events, [0])
        try:
            await asyncio.wait_for(reached, timeout_s)
        except asyncio.TimeoutError:
            conn.close()
            continue
        closed[rid] = time.monotonic()
        conn.close()  # FIN (or RST: unread bytes may be waiting)
        await asyncio.wait_for(conn.lost, timeout_s)
        await asyncio.sleep(gap_s)
    return closed


def cancel_trials(
    port: int, make_request: Callable[[str], bytes], ids: list[str]
) -> dict[str, float]:
    """Per id: stream, read 3 events, close; ``{id: monotonic close time}``."""
    return asyncio.run(_cancel(port, make_request, ids))
