"""``bench.py state``: what the shared state adds to a request, at c=1, in process.

A local ``redis-server`` (no persistence) in a child process; one task calls, back to
back, ``--count`` times after 200 warm-up calls: a ``PING`` (our client's floor), a
``LocalState`` admit + settle, a ``RedisState`` admit alone (what a request waits for
before it goes upstream) and admit + settle (the whole added cost; two ``EVALSHA``). The
key has every limit (rpm, tpm, concurrency, day and month budgets) set high enough never
to refuse, so each script does all its work. Per row: latency p50 / p99 / mean, and CPU
per call of this process and of redis-server. The issue's target: under 0.3 ms added per
request at c=1.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio
from rig.procs import HOST, Cpu, Proc, free_port
from rig.report import columns, median_run, percentile

from gateway.redis import RedisClient
from gateway.state import Admitted, Ask, KeyLimits, LocalState, RedisState, Used

WARM_UP = 200
LIMITS = KeyLimits(
    rpm=10**9, tpm=10**12, concurrency=10**6, tokens_per_day=10**15, tokens_per_month=10**15
)
ASK = Ask("bench-key", LIMITS, tokens=500)
USED = Used(tokens_in=420, tokens_out=80)
Call = Callable[[], Awaitable[None]]


def _start_redis(workdir: Path) -> tuple[Proc, int]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install -y redis-server)")
    port = free_port()
    cmd = [binary, "--bind", HOST, "--port", str(port), "--save", "", "--appendonly", "no"]
    proc = Proc("redis", cmd, workdir / "redis.log")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return proc, port
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"redis-server did not listen:\n{proc.tail()}")


def _calls(local: LocalState, shared: RedisState, client: RedisClient) -> dict[str, Call]:
    async def ping() -> None:
        await client.execute("PING")

    async def pair(state: LocalState | RedisState) -> None:
        result = await state.admit(ASK)
        assert isinstance(result, Admitted), result
        await state.settle(result.ticket, USED)

    async def admit_only() -> None:
        result = await shared.admit(Ask("bench-admit-only", KeyLimits(rpm=10**9, tpm=10**12)))
        assert isinstance(result, Admitted), result

    async def local_pair() -> None:
        await pair(local)

    async def shared_pair() -> None:
        await pair(shared)

    return {
        "PING (client floor)": ping,
        "LocalState admit+settle": local_pair,
        "RedisState admit": admit_only,
        "RedisState admit+settle": shared_pair,
    }


async def _measure(call: Call, count: int, redis: Proc) -> dict[str, float]:
    for _ in range(WARM_UP):
        await call()
    latencies = []
    cpu = Cpu({"redis": redis})
    for _ in range(count):
        start = time.perf_counter()
        await call()
        latencies.append(time.perf_counter() - start)
    used = cpu.stop()
    return {
        "p50_ms": 1000 * percentile(latencies, 50),
        "p99_ms": 1000 * percentile(latencies, 99),
        "mean_ms": 1000 * sum(latencies) / count,
        "client_us": 1e6 * used["client"] / count,
        "redis_us": 1e6 * used["redis"] / count,
        "other_cores": used["other"] / used["wall"],
    }


async def _run(redis: Proc, port: int, args: argparse.Namespace) -> dict[str, Any]:
    client = RedisClient(f"redis://{HOST}:{port}")
    shared = RedisState(client, prefix="bench:")
    calls = _calls(LocalState(), shared, client)
    results = {}
    for name, call in calls.items():
        runs = [await _measure(call, args.count, redis) for _ in range(args.repeat)]
        results[name] = median_run(runs, "p50_ms")
    await client.aclose()
    return results


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="gateway-bench-state-") as tmp:
        redis, port = _start_redis(Path(tmp))
        try:
            results = trio.run(_run, redis, port, args)
        finally:
            redis.stop()
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    spec = [("call", "{call}"), ("p50 ms", "{p50_ms:.3f}"), ("p99 ms", "{p99_ms:.3f}"),
            ("mean ms", "{mean_ms:.3f}"), ("our CPU µs", "{client_us:.0f}"),
            ("redis CPU µs", "{redis_us:.0f}"), ("other cores", "{other_cores:.2f}")]  # fmt: skip
    rows = [{"call": name, **row} for name, row in results.items()]
    pair = results["RedisState admit+settle"]["p50_ms"]
    verdict = "met" if pair < 0.3 else "NOT met"
    notes = (f"{args.count} calls per row at c=1, median of {args.repeat} run(s) by p50; "
             f"target: admit+settle p50 < 0.3 ms: {verdict} ({pair:.3f} ms)")  # fmt: skip
    columns("shared state against a local redis-server", spec, rows, sys.stdout, notes)
    return 0


def options(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--count", type=int, default=2000, help="calls per row (2000)")
    add("--repeat", type=int, default=3, help="runs per row; the median by p50 is kept (3)")
    add("--json", action="store_true", help="print the results as JSON")


COMMAND = ("the shared state's added latency per request (Redis, c=1)", options, run)
