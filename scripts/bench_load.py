"""Load generators for scripts/bench.py: wrk where installed, else our own on Trio + h11.

Both drive N concurrent keep-alive connections at one URL on this machine for
a fixed time and report completed requests/s and p50/p99 latency. Requests
still in flight when the time runs out are not counted (wrk does the same).

wrk is driven with a small Lua script whose ``done()`` prints one JSON line
(exact microsecond percentiles, error counts), so nothing depends on the
layout of wrk's human-readable report.

Our generator is pure Python: on a 2-core machine it needs about a core for
itself and tops out well below what nginx serves, so its nginx figures are the
generator's ceiling, not nginx's. Prefer wrk for figures worth quoting.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

__all__ = ["LoadResult", "LoadSpec", "have_wrk", "run_load"]

#: Hard cap on the requests one trio run makes, whatever the duration (loops stay bounded).
MAX_REQUESTS = 5_000_000
#: Only the loopback range is a valid target for a load test here.
_LOOPBACK_PREFIXES = ("127.", "localhost", "[::1]", "::1")


@dataclass
class LoadSpec:
    """One load run: ``method url`` with ``body`` over ``connections`` for ``duration_s``."""

    url: str
    method: str = "GET"
    body: bytes = b""
    content_type: str = "application/json"
    connections: int = 64
    duration_s: float = 10.0
    threads: int = 1
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        host = urlsplit(self.url).hostname or ""
        if not host.startswith(_LOOPBACK_PREFIXES):
            raise ValueError(f"load goes to the loopback interface only, not to {host!r}")
        if self.connections < 1 or self.duration_s <= 0:
            raise ValueError("need at least one connection and a positive duration")


@dataclass
class LoadResult:
    generator: str
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int = 0
    non_2xx: int = 0
    detail: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def run_load(spec: LoadSpec, generator: str = "auto") -> LoadResult:
    """Run ``spec`` with ``generator`` (``auto``: wrk if installed, else ``trio``)."""
    if generator == "auto":
        generator = "wrk" if have_wrk() else "trio"
    if generator == "wrk":
        return _run_wrk(spec)
    if generator == "trio":
        return _run_trio(spec)
    raise ValueError(f"unknown load generator {generator!r}")


# -- wrk ---------------------------------------------------------------------------------

_WRK_LUA = """\
wrk.method = "{method}"
{body_lines}
wrk.headers["Content-Type"] = "{content_type}"

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {{"requests":%d,"duration_us":%d,"p50_us":%.1f,"p99_us":%.1f,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\\n',
    summary.requests, summary.duration, latency:percentile(50.0), latency:percentile(99.0),
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def _run_wrk(spec: LoadSpec) -> LoadResult:
    threads = max(1, min(spec.threads, spec.connections))
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        body_lines = ""
        if spec.body:
            body_path = os.path.join(tmp, "body")
            with open(body_path, "wb") as f:
                f.write(spec.body)
            body_lines = (
                f'local f = assert(io.open("{body_path}", "rb"))\n'
                'wrk.body = f:read("*a")\nf:close()'
            )
        script = os.path.join(tmp, "bench.lua")
        with open(script, "w") as f:
            f.write(
                _WRK_LUA.format(
                    method=spec.method, body_lines=body_lines, content_type=spec.content_type
                )
            )
        cmd = [
            "wrk",
            f"-t{threads}",
            f"-c{spec.connections}",
            f"-d{max(1, round(spec.duration_s))}s",
            f"--timeout={max(1, round(spec.timeout_s))}s",
            "-s",
            script,
            spec.url,
        ]
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=spec.duration_s + spec.timeout_s + 30
        )
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH_RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(
            f"wrk failed (exit {proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}"
        )
    raw = json.loads(line.split(" ", 1)[1])
    duration = raw["duration_us"] / 1e6
    detail = {k: int(raw[k]) for k in ("connect", "read", "write", "timeout")}
    return LoadResult(
        generator="wrk",
        requests=int(raw["requests"]),
        duration_s=round(duration, 3),
        rps=raw["requests"] / duration if duration else 0.0,
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        errors=sum(detail.values()),
        non_2xx=int(raw["status"]),
        detail=detail,
    )


# -- our own: trio + h11 -----------------------------------------------------------------


class _Tally:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors = 0
        self.non_2xx = 0


async def _one_connection(spec: LoadSpec, host: str, port: int, path: str, tally: _Tally) -> None:
    import h11
    import trio

    headers = [("host", f"{host}:{port}"), ("user-agent", "gateway-bench")]
    if spec.body or spec.method in ("POST", "PUT", "PATCH"):
        headers += [("content-type", spec.content_type), ("content-length", str(len(spec.body)))]
    while len(tally.latencies) < MAX_REQUESTS:
        try:
            stream = await trio.open_tcp_stream(host, port)
        except OSError:
            tally.errors += 1
            await trio.sleep(0.05)
            continue
        conn = h11.Connection(h11.CLIENT)
        try:
            while len(tally.latencies) < MAX_REQUESTS:
                started = time.perf_counter()
                out = conn.send(h11.Request(method=spec.method, target=path, headers=headers))
                if spec.body:
                    out += conn.send(h11.Data(data=spec.body))
                out += conn.send(h11.EndOfMessage())
                await stream.send_all(out)
                status = 0
                while True:
                    event = conn.next_event()
                    if event is h11.NEED_DATA:
                        conn.receive_data(await stream.receive_some(65536))
                        continue
                    kind = type(event)
                    if kind is h11.Response:
                        status = event.status_code
                    elif kind is h11.EndOfMessage:
                        break
                    elif kind is h11.ConnectionClosed:
                        raise ConnectionError("server closed the connection mid-response")
                tally.latencies.append(time.perf_counter() - started)
                if not 200 <= status < 300:
                    tally.non_2xx += 1
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    break  # the server asked to close: reconnect
                conn.start_next_cycle()
        except (OSError, h11.ProtocolError, ConnectionError, trio.BrokenResourceError):
            tally.errors += 1
        finally:
            await trio.aclose_forcefully(stream)


async def _drive(spec: LoadSpec) -> tuple[_Tally, float]:
    import trio

    parts = urlsplit(spec.url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 80
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    tally = _Tally()
    started = time.perf_counter()
    with trio.move_on_after(spec.duration_s):  # in-flight requests at the end are dropped
        async with trio.open_nursery() as nursery:
            for _ in range(spec.connections):
                nursery.start_soon(_one_connection, spec, host, port, path, tally)
    return tally, time.perf_counter() - started


def _percentile(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return float("nan")
    rank = max(0, min(len(sorted_values) - 1, round(pct / 100 * len(sorted_values)) - 1))
    return sorted_values[rank]


def _run_trio(spec: LoadSpec) -> LoadResult:
    import trio

    tally, elapsed = trio.run(_drive, spec)
    lat = sorted(tally.latencies)
    return LoadResult(
        generator="trio",
        requests=len(lat),
        duration_s=round(elapsed, 3),
        rps=len(lat) / elapsed if elapsed else 0.0,
        p50_ms=_percentile(lat, 50) * 1000,
        p99_ms=_percentile(lat, 99) * 1000,
        errors=tally.errors,
        non_2xx=tally.non_2xx,
    )
