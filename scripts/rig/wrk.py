"""The wrk driver: N keep-alive connections at one path on 127.0.0.1 for a fixed time.

wrk runs a small generated Lua script whose ``done()`` prints one JSON line (exact
microsecond percentiles from wrk's own histogram, error counts), so nothing depends on
the layout of wrk's human-readable report. Two parts are added only when asked, since
wrk then calls into Lua for every request and runs slower:

- several bodies: a ``request()`` hook makes each connection send them in turn;
- a response header (``x-gateway-overhead-ms``): a ``response()`` hook keeps each value
  in its thread, and ``done()`` writes them all to a file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence

from rig.load import LoadResult
from rig.procs import HOST

_LUA = """\
wrk.method = "{method}"
local bodies = {{}}
for i, path in ipairs({{{bodies}}}) do
  local f = assert(io.open(path, "rb"))
  bodies[i] = f:read("*a")
  f:close()
end
if #bodies > 0 then
  wrk.body = bodies[1]
  wrk.headers["Content-Type"] = "application/json"
end
{hooks}
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {{"requests":%d,"duration_us":%d,"p50_us":%.1f,"p90_us":%.1f,' ..
    '"p99_us":%.1f,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\\n',
    summary.requests, summary.duration, latency:percentile(50.0), latency:percentile(90.0),
    latency:percentile(99.0), e.connect, e.read, e.write, e.status, e.timeout))
  {write_values}
end
"""
_TURNS = """\
local turn = 0
function request()
  turn = turn + 1
  return wrk.format(nil, nil, nil, bodies[turn % #bodies + 1])
end
"""
_COLLECT = """\
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function init(args) vals = {{}}; nvals = 0 end
function response(status, headers, body)
  local v = headers["{header}"]
  if v ~= nil and nvals < 2000000 then nvals = nvals + 1; vals[nvals] = v end
end
"""
_WRITE_VALUES = """local out = assert(io.open("{values}", "w"))
  for _, t in ipairs(threads) do
    local v = t:get("vals")
    if v then for i = 1, #v do out:write(v[i], "\\n") end end
  end
  out:close()"""


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(
    port: int,
    path: str,
    bodies: Sequence[bytes],
    *,
    method: str,
    connections: int,
    duration_s: float,
    threads: int = 1,
    header: str | None = None,
    timeout_s: float = 10.0,
) -> LoadResult:
    """``method path`` with ``bodies`` (in turn; none for a GET); collects ``header``."""
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        paths = [os.path.join(tmp, f"body{i}") for i in range(len(bodies))]
        for name, body in zip(paths, bodies, strict=True):
            with open(name, "wb") as f:
                f.write(body)
        values = os.path.join(tmp, "values")
        hooks = _TURNS if len(bodies) > 1 else ""
        if header:
            hooks += _COLLECT.format(header=header)
        script = os.path.join(tmp, "bench.lua")
        with open(script, "w") as f:
            f.write(
                _LUA.format(
                    method=method,
                    bodies=", ".join(json.dumps(p) for p in paths),
                    hooks=hooks,
                    write_values=_WRITE_VALUES.format(values=values) if header else "",
                )
            )
        cmd = ["wrk", f"-t{max(1, min(threads, connections))}", f"-c{connections}"]
        cmd += [f"-d{max(1, round(duration_s))}s", f"--timeout={max(1, round(timeout_s))}s"]
        cmd += ["-s", script, f"http://{HOST}:{port}{path}"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration_s + 60)
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH_RESULT ")), "")
        if proc.returncode != 0 or not line:
            raise RuntimeError(
                f"wrk failed (exit {proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}"
            )
        header_values = []
        if header:
            with open(values) as f:
                header_values = [float(v) for v in f.read().split()]
    raw = json.loads(line.split(" ", 1)[1])
    duration = raw["duration_us"] / 1e6
    return LoadResult(
        "wrk",
        int(raw["requests"]),
        round(duration, 3),
        raw["requests"] / duration if duration else 0.0,
        *(raw[f"p{p}_us"] / 1000 for p in (50, 90, 99)),
        errors=sum(int(raw[k]) for k in ("connect", "read", "write", "timeout")),
        non_2xx=int(raw["status"]),
        header_values=header_values,
    )
