"""What scripts/bench.py ``proxy`` and ``convert`` share: the mock upstream and the gateway
in front of it, wrk runs that also read a response header, CPU and memory readings, and
the tables.

Imported by bench.py's subcommand modules after bench.py has registered itself as the
module ``bench`` (so :class:`bench.Proc` is the one class whose processes ``stop_all``
stops, Ctrl-C included).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from bench import (
    HOST,
    SCRIPTS,
    Proc,
    _children_cpu,
    free_port,
    http_request,
    machine_busy_seconds,
    wait_ready,
)
from bench_clients import percentile, run_requests

__all__ = [
    "Cpu",
    "Rig",
    "Verdict",
    "WrkResult",
    "print_block",
    "rss_kib",
    "run_wrk",
]

MIB = 1024


# -- processes ------------------------------------------------------------------------------


@dataclass
class Rig:
    """A mock upstream and a gateway whose one transformer points at it."""

    tmp: Path
    upstream: Proc
    upstream_port: int
    gateways: list[tuple[Proc, int]] = field(default_factory=list)

    @classmethod
    def start(cls, tmp: Path) -> Rig:
        port = free_port()
        cmd = [sys.executable, str(SCRIPTS / "bench_upstream.py"), "--port", str(port)]
        upstream = Proc("mock upstream", cmd, tmp / "upstream.log")
        wait_ready([upstream], port, "/health")
        tdir = tmp / "transformers"
        tdir.mkdir(exist_ok=True)
        spec = {
            "name": "bench",
            "format": "openai",
            "base_url": f"http://{HOST}:{port}/v1",
            "models": {"*": "*"},
            "retry": {"retries": 0, "backoff_s": 0},
            "default": True,
        }
        (tdir / "bench.json").write_text(json.dumps(spec, indent=2))
        return cls(tmp, upstream, port)

    def start_gateway(self, label: str = "gateway") -> tuple[Proc, int]:
        """``python -m gateway --transformers DIR --port P``: 1 worker, access log on."""
        port = free_port()
        n = len(self.gateways)
        cmd = [sys.executable, "-m", "gateway", "--transformers", str(self.tmp / "transformers")]
        cmd += ["--host", HOST, "--port", str(port)]
        env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
        proc = Proc(f"python -m gateway ({label})", cmd, self.tmp / f"gateway-{n}.log", env=env)
        wait_ready([proc], port, "/health/ready", log_marker=b"listening on", markers=1)
        self.gateways.append((proc, port))
        return proc, port

    def upstream_json(self, path: str) -> Any:
        status, body = http_request(self.upstream_port, "GET", path, timeout=10)
        if status != 200:
            raise RuntimeError(f"the mock upstream answered {status} to GET {path}")
        return json.loads(body)

    def keep_logs(self, where: str | None) -> None:
        if not where:
            return
        keep = Path(where)
        keep.mkdir(parents=True, exist_ok=True)
        for path in self.tmp.rglob("*.log"):
            shutil.copy(path, keep / path.name)


def rss_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of ``pid``, in KiB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":", 1)
                out[key] = int(value.split()[0])
    return out


# -- CPU ------------------------------------------------------------------------------------


class Cpu:
    """CPU seconds of some processes, of us (our clients and wrk) and of the machine."""

    def __init__(self, procs: dict[str, Proc]) -> None:
        self.procs = procs
        self.t0 = time.perf_counter()
        self.proc0 = {name: p.cpu_seconds() for name, p in procs.items()}
        self.own0 = _children_cpu()
        self.busy0 = machine_busy_seconds()

    def stop(self) -> dict[str, float]:
        """Seconds of CPU per process name, plus ``client`` and ``other``; and ``wall``."""
        wall = time.perf_counter() - self.t0
        out = {name: p.cpu_seconds() - self.proc0[name] for name, p in self.procs.items()}
        out["client"] = _children_cpu() - self.own0
        busy = machine_busy_seconds() - self.busy0
        out["other"] = max(0.0, busy - sum(out.values()))
        out["wall"] = wall
        return out


# -- wrk with a header read -----------------------------------------------------------------

_WRK_LUA = """\
wrk.method = "POST"
local bodies = {{}}
for i, path in ipairs({{{bodies}}}) do
  local f = assert(io.open(path, "rb"))
  bodies[i] = f:read("*a")
  f:close()
end
wrk.body = bodies[1]
wrk.headers["Content-Type"] = "application/json"
{request}local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function init(args) vals = {{}}; nvals = 0 end
function response(status, headers, body)
  local v = headers["{header}"]
  if v ~= nil and nvals < 2000000 then nvals = nvals + 1; vals[nvals] = v end
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {{"requests":%d,"duration_us":%d,"p50_us":%.1f,"p90_us":%.1f,' ..
    '"p99_us":%.1f,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\\n',
    summary.requests, summary.duration, latency:percentile(50.0), latency:percentile(90.0),
    latency:percentile(99.0), e.connect, e.read, e.write, e.status, e.timeout))
  local out = assert(io.open("{values}", "w"))
  for _, t in ipairs(threads) do
    local v = t:get("vals")
    if v then for i = 1, #v do out:write(v[i], "\\n") end end
  end
  out:close()
end
"""


@dataclass
class WrkResult:
    generator: str
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    errors: int
    non_2xx: int
    header_values: list[float]

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out.pop("header_values")
        for key in ("rps", "p50_ms", "p90_ms", "p99_ms"):
            out[key] = round(out[key], 3)
        return out


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


#: wrk calls request() for every request when it is defined (slower), so only for several bodies.
_WRK_TURNS = """\
local turn = 0
function request()
  turn = turn + 1
  return wrk.format(nil, nil, nil, bodies[turn % #bodies + 1])
end
"""


def run_wrk(
    port: int,
    path: str,
    body: bytes | list[bytes],
    *,
    connections: int,
    duration_s: float,
    header: str = "x-gateway-overhead-ms",
    generator: str = "wrk",
) -> WrkResult:
    """POST ``body`` to ``path`` over ``connections`` for ``duration_s``; collects ``header``.

    ``body`` may be a list: each connection sends them in turn. ``generator="asyncio"``
    uses our own client (bench_clients.run_requests) instead of wrk.
    """
    bodies = body if isinstance(body, list) else [body]
    if generator != "wrk":
        data = [_request_bytes(port, path, b) for b in bodies]
        load = run_requests(port, data, connections, duration_s, header.encode())
        return WrkResult(
            "asyncio",
            load.requests,
            round(load.duration_s, 3),
            load.rps,
            percentile(load.latencies, 50) * 1000,
            percentile(load.latencies, 90) * 1000,
            percentile(load.latencies, 99) * 1000,
            load.errors,
            load.non_2xx,
            load.header_values,
        )
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        paths = []
        for i, b in enumerate(bodies):
            paths.append(os.path.join(tmp, f"body{i}"))
            with open(paths[-1], "wb") as f:
                f.write(b)
        values = os.path.join(tmp, "values")
        script = os.path.join(tmp, "bench.lua")
        with open(script, "w") as f:
            f.write(
                _WRK_LUA.format(
                    bodies=", ".join(json.dumps(p) for p in paths),
                    request=_WRK_TURNS if len(bodies) > 1 else "",
                    values=values,
                    header=header,
                )
            )
        cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration_s))}s"]
        cmd += ["--timeout=10s", "-s", script, f"http://{HOST}:{port}{path}"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration_s + 60)
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH_RESULT ")), "")
        if proc.returncode != 0 or not line:
            raise RuntimeError(f"wrk failed (exit {proc.returncode}): {proc.stderr or proc.stdout}")
        with open(values) as f:
            header_values = [float(v) for v in f.read().split()]
    raw = json.loads(line.split(" ", 1)[1])
    duration = raw["duration_us"] / 1e6
    errors = sum(int(raw[k]) for k in ("connect", "read", "write", "timeout"))
    return WrkResult(
        "wrk",
        int(raw["requests"]),
        round(duration, 3),
        raw["requests"] / duration if duration else 0.0,
        raw["p50_us"] / 1000,
        raw["p90_us"] / 1000,
        raw["p99_us"] / 1000,
        errors,
        int(raw["status"]),
        header_values,
    )


def _request_bytes(port: int, path: str, body: bytes) -> bytes:
    from bench_clients import raw_request

    return raw_request(port, path, body)


# -- verdicts and tables --------------------------------------------------------------------


@dataclass
class Verdict:
    name: str
    target: str
    measured: str
    met: bool
    value: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "target": self.target,
            "measured": self.measured,
            "value": round(self.value, 4),
            "met": self.met,
        }


def print_block(
    title: str, head: list[str], rows: list[list[str]], out: TextIO, notes: str = ""
) -> None:
    """A titled table: first column left-aligned, the rest right-aligned."""
    table = [head, *rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(head))]
    print(title, file=out)
    for n, line in enumerate(table):
        pairs = zip(line, widths, strict=True)
        cells = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(pairs)]
        print("  " + "  ".join(cells).rstrip(), file=out)
        if n == 0:
            print("  " + "  ".join("-" * w for w in widths), file=out)
    if notes:
        print("  " + notes.replace("\n", "\n  "), file=out)
    print(file=out)


def print_verdicts(verdicts: list[Verdict], out: TextIO) -> None:
    rows = [[v.name, v.target, v.measured, "met" if v.met else "MISSED"] for v in verdicts]
    print_block("Targets", ["target", "wanted", "measured", ""], rows, out)


#: Cores used by other processes during a run above which the run is flagged as noisy.
NOISE_CORES = 0.15


def noisy_runs(doc: Any, path: str = "") -> list[str]:
    """Every run in ``doc`` whose ``cpu_s`` shows other work on the machine, as text."""
    found = []
    if isinstance(doc, dict):
        cpu = doc.get("cpu_s")
        if isinstance(cpu, dict) and cpu.get("wall"):
            other = cpu.get("other", 0.0) / cpu["wall"]
            if other > NOISE_CORES:
                found.append(f"{path.strip('/')}: {other:.2f} cores")
        for key, value in doc.items():
            if key != "cpu_s":
                found += noisy_runs(value, f"{path}/{key}")
    return found


def print_noise(doc: Any, out: TextIO) -> None:
    noisy = noisy_runs(doc)
    if noisy:
        print(
            "WARNING: other processes used CPU during these runs (the machine has "
            f"{os.cpu_count()} CPUs; rerun when it is quiet):\n  " + "\n  ".join(noisy),
            file=out,
        )
        print(file=out)


def fmt_num(value: float, digits: int = 0) -> str:
    if value != value:  # NaN
        return "-"
    return f"{value:,.{digits}f}"
