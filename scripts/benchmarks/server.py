"""``bench.py server`` (issue 2): the HTTP server itself, beside nginx.

    python scripts/bench.py server [--duration 10] [--connections 64] [--workers 1,2]
                                   [--repeat 1] [--quick] [--json] [--generator auto|wrk|asyncio]

Requests/s and p50/p99 latency of the HTTP server itself, for ``GET /health/live``
and for a ``POST`` echo of a 1 KiB JSON body, at 1 and 2 workers, beside nginx
serving the same where nginx is installed (the machine's reference; the ratio is
taken within the same run).

- ``GET /health/live`` is served by the real ``python -m gateway --port P
  --transformers <empty dir> [--workers N]`` process.
- The echo is served by rig/echo_server.py: ``python -m gateway``'s own ``main()``
  with the same flags, its App given one extra ``POST /echo`` route (the gateway
  has no echo endpoint); at N workers, N such processes with ``--worker-id I``
  share the port with SO_REUSEPORT, as the supervisor's workers do.
- Gateway processes run with the default settings and the same logging as
  ``python -m gateway`` (``setup_logging``; text access lines on), their stderr
  written to a file, so requests cost their real access-log lines. The "logged"
  column counts the lines written for the measured window: the gateway's log
  queue drops lines when its writer thread falls behind, and a warning under the
  table names any shortfall.
- nginx: a generated nginx.conf with ``worker_processes N``, ``reuseport``,
  ``access_log`` to a file, ``return 200 '{"status":"live"}'`` for the GET and,
  for the echo, stock modules only: ``mirror`` with ``mirror_request_body on``
  makes nginx read the body, then a 404 from the empty root goes to a named
  location that does ``return 200 $request_body``. The echo is checked
  byte-for-byte before it is measured; if it does not echo, only the GET
  reference is given.
- Load: wrk when installed, else our own generator (rig/load.py), which needs a
  core of its own and so caps what it can measure.

The table shows the CPU the servers, the load generator and everything else used
during each run ("other CPU" is noise from other work; rerun, or use ``--repeat 3``
for the median of three runs, when it is not near 0). The gateway's settings come
from the environment as usual, so ``GATEWAY_LOGGING__LEVEL=warning`` measures it
without access lines.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import h11
import trio
from rig.cpu import Cpu
from rig.measure import add_load_options, run_load
from rig.procs import (
    HOST,
    Proc,
    copy_logs,
    find,
    free_port,
    http_request,
    running,
    settled_count,
    version,
    wait_ready,
)
from rig.report import note, print_block

#: One row of the results: the JSON document's fields (the table shows most of them).
Row = dict[str, Any]
TARGET_RPS = 2500  # issue 2: one worker, GET /health/live, access logging on
LIVE = "GET /health/live"


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    method: str
    path: str
    body: bytes = b""


def json_body(size: int = 1024) -> bytes:
    """A chat-completions-shaped JSON body of exactly ``size`` bytes."""
    head, tail = b'{"model":"bench","messages":[{"role":"user","content":"', b'"}]}'
    body = head + b"x" * (size - len(head) - len(tail)) + tail
    json.loads(body)
    return body


SCENARIOS = {
    "live": Scenario("live", LIVE, "GET", "/health/live"),
    "echo": Scenario("echo", "POST /echo 1 KiB", "POST", "/echo", json_body(1024)),
}

NGINX_CONF = """\
worker_processes {workers};
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log {dir}/access.log;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  keepalive_timeout 75s;
  keepalive_requests 1000000;
  server {{
    listen {host}:{port} reuseport;
    default_type application/json;
    client_body_buffer_size 64k;
    client_max_body_size 32m;
    location = /health/live {{ return 200 '{{"status":"live"}}'; }}
    # Echo with stock modules: mirror reads the body, the empty root's 404 goes to @echo.
    location = /echo {{
      mirror /_bench_mirror;
      mirror_request_body on;
      root {dir}/empty;
      log_not_found off;
      error_page 404 405 = @echo;
    }}
    location = /_bench_mirror {{ internal; return 204; }}
    location @echo {{ return 200 $request_body; }}
  }}
}}
"""


def start_gateway(tmp: Path, sc: Scenario, workers: int, port: int) -> list[Proc]:
    """``python -m gateway`` (live) or the echo server (echo), ready."""
    flags = ["--host", HOST, "--port", str(port), "--transformers", str(tmp / "transformers")]
    log = tmp / f"{sc.key}-w{workers}.log"
    if sc.key == "live":
        cmd = [sys.executable, "-m", "gateway", *flags, "--workers", str(workers)]
        procs = [Proc(f"python -m gateway --workers {workers}", cmd, log)]
    else:  # --worker-id is what the supervisor passes its workers: it turns on SO_REUSEPORT.
        cmd = [sys.executable, "-m", "rig.echo_server", "serve", *flags]
        ids = [[]] if workers == 1 else [["--worker-id", str(i)] for i in range(workers)]
        procs = [Proc(f"echo server {' '.join(i)}".rstrip(), [*cmd, *i], log) for i in ids]
    try:
        wait_ready(procs, port, "/health/live", log_marker=b"listening on", markers=workers)
    except BaseException:
        for proc in procs:
            proc.stop()
        raise
    return procs


def start_nginx(tmp: Path, workers: int, port: int) -> list[Proc]:
    ndir = tmp / f"nginx-w{workers}"
    (ndir / "empty").mkdir(parents=True)
    # nginx workers run as another user (nobody) when started as root: let them reach the
    # empty root (a 404, not a 403 with an error-log line per request); files stay private.
    tmp.chmod(0o711)
    for path in (ndir, ndir / "empty"):
        path.chmod(0o755)
    conf = ndir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(workers=workers, dir=ndir, host=HOST, port=port))
    cmd = [find("nginx") or "nginx", "-p", str(ndir), "-c", str(conf)]
    cmd += ["-e", str(ndir / "error.log")]
    procs = [Proc(f"nginx ({workers} workers)", cmd, ndir / "stderr.log")]
    wait_ready(procs, port, "/health/live")
    return procs


def measure(
    args: argparse.Namespace, sc: Scenario, server: str, workers: int, procs: list[Proc],
    port: int, log: Path, marker: bytes, warmup: bool,
) -> Row:  # fmt: skip
    """Warm up, then one measured run: load, CPU and log figures."""
    bodies = [sc.body] if sc.body else []
    if warmup and args.warmup > 0:
        run_load(args, port, sc.path, bodies, args.warmup, method=sc.method)
    before = settled_count(log, marker)
    cpu = Cpu({"server": procs})
    res = run_load(args, port, sc.path, bodies, args.duration, method=sc.method)
    used = cpu.stop()
    wall = used["wall"]
    loaded = ("generator", "requests", "duration_s", "rps", "p50_ms", "p99_ms", "errors", "non_2xx")
    return {
        "scenario": sc.label,
        "server": server,
        "workers": workers,
        "connections": args.connections,
        **{key: getattr(res, key) for key in loaded},
        "server_cpu_cores": used["server"] / wall,
        "server_cpu_us_per_req": used["server"] / res.requests * 1e6 if res.requests else 0.0,
        "loadgen_cpu_cores": used["client"] / wall,
        "other_cpu_cores": used["other"] / wall,
        "access_lines": settled_count(log, marker) - before,
        "ratio_to_nginx": None,
        "note": "",
        "extra": {},
    }


def run_scenario(args: argparse.Namespace, sc: Scenario, server: str, workers: int,
                 procs: list[Proc], port: int, log: Path, marker: bytes) -> Row:  # fmt: skip
    """``--repeat`` runs against the same server; the median (by req/s)."""
    note(f"{sc.label:18} {server:8} workers={workers} c={args.connections} ({args.generator}) ...")
    runs = []
    for i in range(args.repeat):
        row = measure(args, sc, server, workers, procs, port, log, marker, warmup=i == 0)
        note(
            f"  {row['rps']:,.0f} req/s  p50 {row['p50_ms']:.2f} ms  p99 {row['p99_ms']:.2f} ms  "
            f"server CPU {row['server_cpu_cores']:.2f} cores, "
            f"other CPU {row['other_cpu_cores']:.2f}"
        )
        runs.append(row)
    runs.sort(key=lambda r: r["rps"])
    row = runs[len(runs) // 2]
    if len(runs) > 1:
        row["extra"]["runs_rps"] = [round(r["rps"], 1) for r in runs]
    return row


def echoes(port: int, body: bytes) -> str:
    """ "" if ``POST /echo`` answers ``body`` as it came, else what it answered."""
    status, got = http_request(port, "POST", "/echo", body)
    return "" if status == 200 and got == body else f"{status} with {len(got)} bytes"


def server_rows(args: argparse.Namespace, with_nginx: bool, tmp: Path) -> list[Row]:
    (tmp / "transformers").mkdir()
    chosen = [SCENARIOS[k] for k in args.scenarios]
    rows: list[Row] = []
    for workers in args.workers:
        for sc in chosen:  # a fresh gateway process (group) per scenario
            port = free_port()
            with running(start_gateway(tmp, sc, workers, port)) as procs:
                if sc.key == "echo" and (got := echoes(port, sc.body)):
                    raise RuntimeError(f"the gateway's /echo answered {got}: not an echo")
                log, marker = procs[0].log, b"gateway.access"
                rows.append(run_scenario(args, sc, "gateway", workers, procs, port, log, marker))
        if not with_nginx:
            continue
        port = free_port()
        with running(start_nginx(tmp, workers, port)) as procs:
            log, marker = tmp / f"nginx-w{workers}" / "access.log", b'HTTP/1.1" 200'
            for sc in chosen:
                if sc.key == "echo" and (got := echoes(port, sc.body)):
                    note(f"nginx's /echo answered {got}: no echo reference")
                    continue
                rows.append(run_scenario(args, sc, "nginx", workers, procs, port, log, marker))
    for row in rows:
        ref = [
            r["rps"]
            for r in rows
            if r["server"] == "nginx"
            and (r["scenario"], r["workers"]) == (row["scenario"], row["workers"])
        ]
        if row["server"] == "gateway" and ref and ref[0]:
            row["ratio_to_nginx"] = row["rps"] / ref[0]
    return rows


def environment(args: argparse.Namespace, with_nginx: bool) -> dict[str, Any]:
    wrk = args.generator == "wrk"
    return {
        "python": sys.version.split()[0],
        "trio": trio.__version__,
        "h11": h11.__version__,
        "cpus": os.cpu_count(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "generator": args.generator,
        "wrk": version(["wrk", "--version"]) if wrk else "",
        "wrk_threads": args.threads if wrk else None,
        "nginx": version([find("nginx") or "nginx", "-v"]) if with_nginx else "",
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "connections": args.connections,
        "access_log": "gateway: text lines on stderr -> file; nginx: access_log -> file",
    }


def rounded(row: Row) -> Row:
    """``row`` for the JSON document: floats to 3 places (the ratio to nginx to 4)."""
    places = {"ratio_to_nginx": 4, "duration_s": 3}
    return {k: round(v, places.get(k, 3)) if isinstance(v, float) else v for k, v in row.items()}


def print_report(meta: dict[str, Any], rows: list[Row], out: TextIO) -> None:
    gen = meta["generator"]
    if gen == "wrk":
        gen = f"{meta['wrk'].split(' [')[0]} ({meta['wrk_threads']} thread)"
    print(
        f"python {meta['python']}, trio {meta['trio']}, h11 {meta['h11']}, {meta['cpus']} CPUs, "
        f"load average {meta['loadavg_at_start'][0]} at start\nload: {gen}, "
        f"{meta['connections']} keep-alive connections, {meta['duration_s']:g} s after "
        f"{meta['warmup_s']:g} s warm-up"
        + (f"; reference: {meta['nginx']}" if meta["nginx"] else "; no nginx reference")
        + "\n",
        file=out,
    )
    head = ["scenario", "server", "workers", "conns", "req/s", "p50 ms", "p99 ms", "vs nginx",
            "srv CPU", "CPU us/req", "gen CPU", "other CPU", "logged", "errors"]  # fmt: skip
    table = []
    for r in rows:
        ratio, count = r["ratio_to_nginx"], r["requests"]
        table.append([
            r["scenario"], r["server"], str(r["workers"]), str(r["connections"]),
            f"{r['rps']:,.0f}", f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}",
            "-" if ratio is None else f"{ratio:.1%}", f"{r['server_cpu_cores']:.2f}",
            f"{r['server_cpu_us_per_req']:.0f}", f"{r['loadgen_cpu_cores']:.2f}",
            f"{r['other_cpu_cores']:.2f}", f"{r['access_lines'] / count:.0%}" if count else "-",
            str(r["errors"] + r["non_2xx"]),
        ])  # fmt: skip
    notes = (
        "srv CPU: cores the server's processes used during the run (2 CPUs on this machine, "
        "shared with the load generator);\ngen CPU: cores the load generator used; "
        "other CPU: cores the rest of the machine used (noise);\n"
        "logged: access lines written / requests counted during the run."
    )
    print_block(None, head, table, out, "\n" + notes, left=2, indent="")
    for r in rows:
        if r["requests"] and r["access_lines"] < 0.99 * r["requests"]:
            print(
                f"WARNING: {r['server']} {r['scenario']}, workers={r['workers']}: wrote "
                f"{r['access_lines']:,} access lines for {r['requests']:,} requests: "
                f"{r['requests'] - r['access_lines']:,} lines missing "
                "(dropped by the log queue?)\n",
                file=out,
            )


def run(args: argparse.Namespace) -> int:
    with_nginx = not args.no_nginx and find("nginx") is not None
    if not args.no_nginx and not with_nginx:
        note("nginx is not installed: no reference figures (apt-get install nginx)")
    meta = environment(args, with_nginx)
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmpname:
        tmp = Path(tmpname)
        try:
            rows = server_rows(args, with_nginx, tmp)
        finally:
            copy_logs(tmp, args.keep_logs, lambda path: f"{path.parent.name}-{path.name}")
    target = next(
        (r for r in rows if (r["server"], r["workers"], r["scenario"]) == ("gateway", 1, LIVE)),
        None,
    )
    verdict = None
    if target is not None:
        verdict = {"target_rps": TARGET_RPS, "measured_rps": round(target["rps"], 1),
                   "met": target["rps"] >= TARGET_RPS}  # fmt: skip
    # With --json the JSON goes to stdout and the table to stderr, beside the progress lines.
    out = sys.stderr if args.json else sys.stdout
    print_report(meta, rows, out)
    if verdict:
        print(
            f"target: 1 worker, {LIVE} >= {TARGET_RPS:,} req/s with access logging: "
            f"{'met' if verdict['met'] else 'MISSED'} ({verdict['measured_rps']:,.0f} req/s)",
            file=out,
        )
    if args.json:
        doc = {"meta": meta, "target": verdict, "results": [rounded(r) for r in rows]}
        print(json.dumps(doc, indent=2))
    return 1 if args.fail_under and target is not None and target["rps"] < args.fail_under else 0


def _csv_ints(text: str) -> list[int]:
    values = [int(x) for x in text.split(",") if x.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("a comma-separated list of positive integers")
    return values


def _csv_scenarios(text: str) -> list[str]:
    keys = [x.strip() for x in text.split(",") if x.strip()]
    if not keys or any(k not in SCENARIOS for k in keys):
        raise argparse.ArgumentTypeError(f"choose from {', '.join(SCENARIOS)}")
    return keys


def options(parser: argparse.ArgumentParser) -> None:
    add_load_options(parser)
    add = parser.add_argument
    add(
        "--workers",
        type=_csv_ints,
        default=[1, 2],
        help="worker counts to run, comma-separated (1,2)",
    )
    add(
        "--scenarios",
        type=_csv_scenarios,
        default=["live", "echo"],
        help="live (GET /health/live), echo (POST 1 KiB), comma-separated",
    )
    add("--no-nginx", action="store_true", help="skip the nginx reference")
    add(
        "--fail-under",
        type=float,
        metavar="RPS",
        help="exit 1 if 1-worker GET /health/live is below RPS",
    )


COMMAND = ("the HTTP server alone: health GET and 1 KiB POST echo, vs nginx", options, run)
