#!/usr/bin/env python
"""httpx.AsyncClient with its default transport vs with PooledTransport, same run.

    python scripts/bench_transport.py [--duration 3] [--concurrency 32] [--repeat 1] [--json]

An upstream on 127.0.0.1 (trio + h11, keep-alive, a fixed ~300-byte JSON 200
reply to every request) runs in a child process, so it has a core of its own
and the client process measures only the client side. Each request is a
``POST /v1/chat/completions`` with a small JSON body, read to the end.

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
The upstream child is stopped on the way out, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from functools import partial

import h11
import httpx
import trio

from gateway.upstream_transport import PooledTransport

REPLY = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "bench-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello! How can I help you today?"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 9, "total_tokens": 18},
    }
).encode()
REQUEST = json.dumps(
    {"model": "bench-model", "messages": [{"role": "user", "content": "Hello there"}]}
).encode()
PATH = "/v1/chat/completions"
WARM_UP_S = 0.5
RECEIVE_BYTES = 64 * 1024

Send = Callable[[], Awaitable[None]]
Results = dict[str, dict[str, dict[str, float]]]  # scenario -> client -> figures


# ---------------------------------------------------------------- upstream (child process)


async def _upstream_connection(stream: trio.SocketStream) -> None:
    conn = h11.Connection(h11.SERVER)
    reply_head = h11.Response(
        status_code=200,
        headers=[("content-type", "application/json"), ("content-length", str(len(REPLY)))],
    )
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await stream.receive_some(RECEIVE_BYTES))
            elif type(event) is h11.EndOfMessage:
                out = conn.send(reply_head) + conn.send(h11.Data(data=REPLY))
                await stream.send_all(out + conn.send(h11.EndOfMessage()))
                conn.start_next_cycle()
            elif type(event) is h11.ConnectionClosed:
                return
    except (trio.BrokenResourceError, h11.ProtocolError):
        return
    finally:
        await trio.aclose_forcefully(stream)


async def _serve_upstream() -> None:
    async with trio.open_nursery() as nursery:
        serve = partial(trio.serve_tcp, _upstream_connection, 0, host="127.0.0.1", backlog=1024)
        listeners = await nursery.start(serve)
        print(listeners[0].socket.getsockname()[1], flush=True)


class _Upstream:
    """The upstream child process: its port, its CPU time, and stopping it."""

    def __init__(self) -> None:
        self.child = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--serve-upstream"],
            stdout=subprocess.PIPE,
        )
        assert self.child.stdout is not None
        line = self.child.stdout.readline()
        if not line:
            self.stop()
            raise SystemExit("the upstream process did not start")
        self.port = int(line)

    def cpu_s(self) -> float:
        """User + system CPU seconds of the child (Linux /proc; NaN elsewhere)."""
        try:
            with open(f"/proc/{self.child.pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            return math.nan
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.child.terminate()
        try:
            self.child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.child.kill()
            self.child.wait()


# ---------------------------------------------------------------- clients


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
                ("host", f"127.0.0.1:{port}"),
                ("content-type", "application/json"),
                ("content-length", str(len(REQUEST))),
            ],
        )

    async def send(self) -> None:
        if self._stream is None:
            self._stream = await trio.open_tcp_stream("127.0.0.1", self._port)
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
    client_name: str, upstream: _Upstream, tasks: int, duration: float
) -> dict[str, float]:
    port = upstream.port
    url = f"http://127.0.0.1:{port}{PATH}"
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
        before = _cpu_s(), upstream.cpu_s(), time.perf_counter()
        latencies = await _load(senders, duration)
        wall = time.perf_counter() - before[2]
        cpu = (_cpu_s() - before[0]) / wall
        upstream_cpu = (upstream.cpu_s() - before[1]) / wall
    finally:
        for r in raw:
            await r.aclose()
        if client is not None:
            await client.aclose()
    latencies.sort()
    return {
        "rps": len(latencies) / duration,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "client_cpu": cpu,
        "upstream_cpu": upstream_cpu,
    }


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


CLIENTS = ("raw h11", "PooledTransport alone", "httpx default", "httpx + PooledTransport")


async def _run(upstream: _Upstream, args: argparse.Namespace) -> Results:
    results: Results = {}
    for scenario, tasks in (("sequential", 1), ("concurrent", args.concurrency)):
        results[scenario] = {}
        for name in CLIENTS:
            runs = [
                await _measure(name, upstream, tasks, args.duration) for _ in range(args.repeat)
            ]
            runs.sort(key=lambda run: run["rps"])
            results[scenario][name] = runs[len(runs) // 2]
    return results


def _print(results: Results, args: argparse.Namespace) -> None:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per row")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=1, help="runs per row; the median is kept")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--serve-upstream", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_upstream:
        try:
            trio.run(_serve_upstream)
        except KeyboardInterrupt:
            pass
        return
    upstream = _Upstream()
    try:
        results = trio.run(_run, upstream, args)
    finally:
        upstream.stop()
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"upstream: trio + h11 in a child process, {len(REPLY)}-byte JSON reply")
        _print(results, args)


if __name__ == "__main__":
    main()
