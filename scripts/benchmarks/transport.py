"""``bench.py transport``: httpx.AsyncClient with its default transport vs with PooledTransport.

Client side only (the mock upstream runs in a child process): small ``POST``s read to the
end, one at a time (``sequential``) and from ``--concurrency`` tasks, by four clients:
``raw h11`` (the floor: one hand-driven h11 connection per task), ``PooledTransport
alone`` (one prebuilt request: the transport's own cost), ``httpx default`` and ``httpx +
PooledTransport``. Per row the CPU of this process and of the upstream (near 100%: that
side is the limit) and req/s per client CPU-second (what survives a shared machine).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import h11
import httpx
import trio
from rig.gw import PooledTransport
from rig.mock_upstream import REPLY
from rig.procs import HOST, Cpu, Proc
from rig.report import columns, median_run, percentile
from rig.stack import start_upstream

REQUEST = b'{"model": "bench-model", "messages": [{"role": "user", "content": "Hello there"}]}'
PATH = "/v1/chat/completions"
HEADERS = {"content-type": "application/json"}
WARM_UP_S = 0.5
CLIENTS = ("raw h11", "PooledTransport alone", "httpx default", "httpx + PooledTransport")
Send = Callable[[], Awaitable[None]]


class _RawH11:
    """The floor: one h11 connection, no httpx (per task)."""

    def __init__(self, port: int) -> None:
        self.port, self.stream, self.conn = port, None, h11.Connection(h11.CLIENT)
        headers = [("host", f"{HOST}:{port}"), *HEADERS.items()]
        headers.append(("content-length", str(len(REQUEST))))
        self.request = h11.Request(method="POST", target=PATH, headers=headers)

    async def send(self) -> None:
        self.stream = self.stream or await trio.open_tcp_stream(HOST, self.port)
        conn = self.conn
        out = conn.send(self.request) + conn.send(h11.Data(data=REQUEST))
        await self.stream.send_all(out + conn.send(h11.EndOfMessage()))
        while type(event := conn.next_event()) is not h11.EndOfMessage:
            if event is h11.NEED_DATA:
                conn.receive_data(await self.stream.receive_some(64 * 1024))
        conn.start_next_cycle()


def _checked(status: int, body: bytes) -> None:
    if status != 200 or len(body) != len(REPLY):
        raise RuntimeError(f"bad reply: {status} {body[:80]!r}")


async def _senders(name: str, port: int, tasks: int, stack: AsyncExitStack) -> list[Send]:
    """``tasks`` senders of client ``name``, closed with ``stack``."""
    url = f"http://{HOST}:{port}{PATH}"
    if name == "raw h11":
        raw = [_RawH11(port) for _ in range(tasks)]

        async def close() -> None:
            for r in raw:
                if r.stream is not None:
                    await r.stream.aclose()

        stack.push_async_callback(close)
        return [r.send for r in raw]
    if name == "PooledTransport alone":
        transport = await stack.enter_async_context(PooledTransport())
        timeout = {"timeout": httpx.Timeout(5.0).as_dict()}
        request = httpx.Request("POST", url, content=REQUEST, headers=HEADERS, extensions=timeout)

        async def send_alone() -> None:
            response = await transport.handle_async_request(request)
            body = await response.aread()
            await response.aclose()
            _checked(response.status_code, body)

        return [send_alone] * tasks
    pooled = PooledTransport() if "Pooled" in name else None
    client = await stack.enter_async_context(httpx.AsyncClient(transport=pooled, trust_env=False))

    async def send() -> None:
        response = await client.post(url, content=REQUEST, headers=HEADERS)
        _checked(response.status_code, response.content)

    return [send] * tasks


async def _load(senders: list[Send], duration: float) -> list[float]:
    """Each sender sends back to back until ``duration`` is over; the latencies (s)."""
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


async def _measure(
    name: str, upstream: Proc, port: int, tasks: int, seconds: float
) -> dict[str, float]:
    async with AsyncExitStack() as stack:
        senders = await _senders(name, port, tasks, stack)
        await _load(senders, WARM_UP_S)
        cpu = Cpu({"upstream": upstream})
        latencies = await _load(senders, seconds)
        used = cpu.stop()
    p50, p99 = (1000 * percentile(latencies, p) for p in (50, 99))
    client, upstream = (used[k] / used["wall"] for k in ("client", "upstream"))
    return {"rps": len(latencies) / seconds, "p50_ms": p50, "p99_ms": p99, "client_cpu": client,
            "upstream_cpu": upstream}  # fmt: skip


async def _run(upstream: Proc, port: int, args: argparse.Namespace) -> dict[str, Any]:
    """``{scenario: {client: figures of the median run by req/s}}``."""
    results: dict[str, Any] = {"sequential": {}, "concurrent": {}}
    for scenario, by_client in results.items():
        tasks = 1 if scenario == "sequential" else args.concurrency
        for name in CLIENTS:
            runs = [await _measure(name, upstream, port, tasks, args.duration)
                    for _ in range(args.repeat)]  # fmt: skip
            by_client[name] = median_run(runs, "rps")
    return results


def _print(results: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"upstream: the mock upstream in a child process, {len(REPLY)}-byte JSON reply\n")
    spec = [("client", "{client}"), ("req/s", "{rps:.0f}"), ("p50 ms", "{p50_ms:.3f}"),
            ("p99 ms", "{p99_ms:.3f}"), ("CPU", "{client_cpu:.0%}"), ("req/CPU-s", "{per_cpu:.0f}"),
            ("upstream CPU", "{upstream_cpu:.0%}")]  # fmt: skip
    for scenario, by_client in results.items():
        rows = {n: {**r, "client": n, "per_cpu": r["rps"] / r["client_cpu"]}
                for n, r in by_client.items()}  # fmt: skip
        pooled, default = rows["httpx + PooledTransport"], rows["httpx default"]
        line = (f"PooledTransport / default: {pooled['rps'] / default['rps']:.2f}x req/s, "
                f"{pooled['per_cpu'] / default['per_cpu']:.2f}x req/CPU-s")  # fmt: skip
        if scenario == "sequential":  # under concurrency, p50 is mostly queueing
            line += (
                f"; p50 added over raw h11: {pooled['p50_ms'] - rows['raw h11']['p50_ms']:.3f} ms"
            )
        title = scenario if scenario == "sequential" else f"{scenario} x{args.concurrency}"
        columns(title, spec, list(rows.values()), sys.stdout, line)


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
    add = parser.add_argument
    add("--duration", type=float, default=3.0, help="seconds per row (3)")
    add("--concurrency", type=int, default=32, help="concurrent tasks (32)")
    add("--repeat", type=int, default=1, help="runs per row; the median is kept")
    add("--json", action="store_true", help="print the results as JSON")


COMMAND = ("httpx's default transport vs PooledTransport, client side only", options, run)
