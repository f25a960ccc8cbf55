"""``bench.py transport``: httpx.AsyncClient with its default transport vs with PooledTransport.

    python scripts/bench.py transport [--duration 3] [--concurrency 32] [--repeat 1] [--json]

The mock upstream (rig/mock_upstream.py: keep-alive, a fixed ~300-byte JSON 200 reply to
every non-stream request) runs in a child process, so it has a core of its own and this
process measures only the client side. Each request is a ``POST /v1/chat/completions``
with a small JSON body, read to the end.

Scenarios, each for ``--duration`` seconds after a short warm-up:

- ``sequential``: one request at a time (latency = the client's cost + one
  loopback round trip + the upstream's cost);
- ``concurrent``: ``--concurrency`` tasks sending back to back.

Clients, in the same run:

- ``raw h11``: the floor: no httpx, one hand-driven h11 connection per task;
- ``PooledTransport alone``: ``handle_async_request`` with one prebuilt
  ``httpx.Request``, no ``AsyncClient`` (the transport's own cost);
- ``httpx default``: ``httpx.AsyncClient(trust_env=False)`` (httpcore pool,
  default limits: 100 connections, 20 kept alive);
- ``httpx + PooledTransport``: ``AsyncClient(transport=PooledTransport())``.

Printed per row: requests/s, p50 and p99 latency in ms, the CPU use of the
client process and of the upstream (near 100% means that side is the limit),
and requests per CPU-second of the client (req/s per core: the figure that
survives a machine shared with other work). Then, per scenario, the
PooledTransport / default ratios and the p50 latency PooledTransport adds over
raw h11. With ``--repeat N`` each row is the run with the median requests/s.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import h11
import httpx
import trio
from rig.cpu import Cpu
from rig.gw import PooledTransport
from rig.mock_upstream import REPLY
from rig.procs import HOST, Proc
from rig.report import percentile
from rig.stack import start_upstream

REQUEST = json.dumps(
    {"model": "bench-model", "messages": [{"role": "user", "content": "Hello there"}]}
).encode()
PATH = "/v1/chat/completions"
WARM_UP_S = 0.5
RECEIVE_BYTES = 64 * 1024

Send = Callable[[], Awaitable[None]]
Results = dict[str, dict[str, dict[str, float]]]  # scenario -> client -> figures


class _RawH11:
    """The floor: one h11 connection, no httpx (per task)."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._stream: trio.SocketStream | None = None
        self._conn = h11.Connection(h11.CLIENT)
        self._request = h11.Request(
            method="POST",
            target=PATH,
            headers=[
                ("host", f"{HOST}:{port}"),
                ("content-type", "application/json"),
                ("content-length", str(len(REQUEST))),
            ],
        )

    async def send(self) -> None:
        if self._stream is None:
            self._stream = await trio.open_tcp_stream(HOST, self._port)
        conn = self._conn
        out = conn.send(self._request) + conn.send(h11.Data(data=REQUEST))
        await self._stream.send_all(out + conn.send(h11.EndOfMessage()))
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await self._stream.receive_some(RECEIVE_BYTES))
            elif type(event) is h11.EndOfMessage:
                break
        conn.start_next_cycle()

    async def aclose(self) -> None:
        if self._stream is not None:
            await self._stream.aclose()


async def _load(senders: list[Send], duration: float) -> list[float]:
    """Each sender sends back to back until `duration` is over; returns latencies (s)."""
    latencies: list[float] = []
    deadline = time.perf_counter() + duration

    async def worker(send: Send) -> None:
        while (start := time.perf_counter()) < deadline:
            await send()
            latencies.append(time.perf_counter() - start)

    async with trio.open_nursery() as nursery:
        for send in senders:
            nursery.start_soon(worker, send)
    return latencies


def _httpx_sender(client: httpx.AsyncClient, url: str) -> Send:
    headers = {"content-type": "application/json"}

    async def send() -> None:
        response = await client.post(url, content=REQUEST, headers=headers)
        if response.status_code != 200 or len(response.content) != len(REPLY):
            raise RuntimeError(f"bad reply: {response.status_code} {response.content[:80]!r}")

    return send


def _transport_sender(transport: PooledTransport, url: str) -> Send:
    """PooledTransport alone: one prebuilt request, no AsyncClient around it."""
    request = httpx.Request(
        "POST",
        url,
        content=REQUEST,
        headers={"content-type": "application/json"},
        extensions={"timeout": httpx.Timeout(5.0).as_dict()},
    )

    async def send() -> None:
        response = await transport.handle_async_request(request)
        body = await response.aread()
        await response.aclose()
        if response.status_code != 200 or len(body) != len(REPLY):
            raise RuntimeError(f"bad reply: {response.status_code} {body[:80]!r}")

    return send


async def _measure(
    client_name: str, upstream: Proc, port: int, tasks: int, duration: float
) -> dict[str, float]:
    url = f"http://{HOST}:{port}{PATH}"
    raw: list[_RawH11] = []
    client: httpx.AsyncClient | PooledTransport | None = None
    if client_name == "raw h11":
        raw = [_RawH11(port) for _ in range(tasks)]
        senders: list[Send] = [r.send for r in raw]
    elif client_name == "PooledTransport alone":
        client = PooledTransport()
        senders = [_transport_sender(client, url)] * tasks
    else:
        transport = PooledTransport() if client_name == "httpx + PooledTransport" else None
        client = httpx.AsyncClient(transport=transport, trust_env=False)
        senders = [_httpx_sender(client, url)] * tasks
    try:
        await _load(senders, WARM_UP_S)
        cpu = Cpu({"upstream": upstream})
        latencies = await _load(senders, duration)
        used = cpu.stop()
    finally:
        for r in raw:
            await r.aclose()
        if client is not None:
            await client.aclose()
    return {
        "rps": len(latencies) / duration,
        "p50_ms": 1000 * percentile(latencies, 50),
        "p99_ms": 1000 * percentile(latencies, 99),
        "client_cpu": used["client"] / used["wall"],
        "upstream_cpu": used["upstream"] / used["wall"],
    }


CLIENTS = ("raw h11", "PooledTransport alone", "httpx default", "httpx + PooledTransport")


async def _run(upstream: Proc, port: int, args: argparse.Namespace) -> Results:
    results: Results = {}
    for scenario, tasks in (("sequential", 1), ("concurrent", args.concurrency)):
        results[scenario] = {}
        for name in CLIENTS:
            runs = [
                await _measure(name, upstream, port, tasks, args.duration)
                for _ in range(args.repeat)
            ]
            runs.sort(key=lambda run: run["rps"])
            results[scenario][name] = runs[len(runs) // 2]
    return results


def _print(results: Results, args: argparse.Namespace) -> None:
    print(f"upstream: the mock upstream in a child process, {len(REPLY)}-byte JSON reply")
    print(
        f"{'scenario':<16} {'client':<26} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}"
        f" {'CPU':>5} {'req/CPU-s':>9} {'upstream CPU':>12}"
    )
    for scenario, rows in results.items():
        label = scenario if scenario == "sequential" else f"{scenario} x{args.concurrency}"
        for name, row in rows.items():
            print(
                f"{label:<16} {name:<26} {row['rps']:>8.0f} {row['p50_ms']:>8.3f}"
                f" {row['p99_ms']:>8.3f} {row['client_cpu']:>5.0%}"
                f" {row['rps'] / row['client_cpu']:>9.0f} {row['upstream_cpu']:>12.0%}"
            )
        pooled, default = rows["httpx + PooledTransport"], rows["httpx default"]
        per_cpu = (pooled["rps"] / pooled["client_cpu"]) / (default["rps"] / default["client_cpu"])
        line = (
            f"{'':<16} PooledTransport / default: {pooled['rps'] / default['rps']:.2f}x req/s,"
            f" {per_cpu:.2f}x req/CPU-s"
        )
        if scenario == "sequential":  # under concurrency, p50 is mostly queueing
            added = pooled["p50_ms"] - rows["raw h11"]["p50_ms"]
            line += f"; p50 added over raw h11: {added:.3f} ms"
        print(line)


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="gateway-bench-transport-") as tmp:
        upstream, port = start_upstream(Path(tmp) / "upstream.log")
        try:
            results = trio.run(_run, upstream, port, args)
        finally:
            upstream.stop()
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        _print(results, args)
    return 0


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per row (3)")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent tasks (32)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per row; the median is kept")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


COMMAND = ("httpx's default transport vs PooledTransport, client side only", options, run)
