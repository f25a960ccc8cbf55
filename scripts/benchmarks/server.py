"""``bench.py server`` (issue 2): the HTTP server itself, beside nginx.

Requests/s, p50/p99 and CPU of ``GET /health/live`` (the real ``python -m gateway``, no
transformers) and of a 1 KiB ``POST /echo`` (rig/echo_server.py, one process per worker),
at 1 and 2 workers, beside nginx serving the same (data/nginx.conf, its echo checked byte
for byte). The gateway runs with its default settings, access lines on (to a file):
"logged" counts the lines written in the measured window, since its log queue drops
lines when the writer falls behind (``GATEWAY_LOGGING__LEVEL=warning``: no lines).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, TextIO

import h11
import trio
from rig import procs as p
from rig.measure import add_load_options, measured, send
from rig.report import columns, emit, median_run, note

Row = dict[str, Any]
TARGET_RPS = 2500  # issue 2: one worker, GET /health/live, access logging on
LIVE = "GET /health/live"
NGINX_CONF = Path(__file__).parent / "data" / "nginx.conf"


class Scenario(NamedTuple):
    key: str
    label: str
    method: str
    path: str
    body: bytes = b""


def json_body(size: int = 1024) -> bytes:
    """A chat-completions-shaped JSON body of exactly ``size`` bytes."""
    head, tail = b'{"model":"bench","messages":[{"role":"user","content":"', b'"}]}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


SCENARIOS = {
    "live": Scenario("live", LIVE, "GET", "/health/live"),
    "echo": Scenario("echo", "POST /echo 1 KiB", "POST", "/echo", json_body(1024)),
}
COLUMNS = [
    ("scenario", "{scenario}"), ("server", "{server}"), ("workers", "{workers}"),
    ("conns", "{connections}"), ("req/s", "{rps:,.0f}"), ("p50 ms", "{p50_ms:.2f}"),
    ("p99 ms", "{p99_ms:.2f}"), ("vs nginx", "{ratio_to_nginx:.1%}"),
    ("srv CPU", "{server_cpu_cores:.2f}"), ("CPU us/req", "{server_cpu_us_per_req:.0f}"),
    ("gen CPU", "{loadgen_cpu_cores:.2f}"), ("other CPU", "{other_cpu_cores:.2f}"),
    ("logged", "{logged:.0%}"), ("errors", "{all_errors}"),
]  # fmt: skip
NOTES = """
srv CPU: cores the server's processes used during the run (2 CPUs on this machine, shared with the load generator);
gen CPU: cores the load generator used; other CPU: cores the rest of the machine used (noise);
logged: access lines written / requests counted during the run."""  # noqa: E501


def start_gateway(tmp: Path, sc: Scenario, workers: int, port: int) -> list[p.Proc]:
    """``python -m gateway`` (live) or the echo server (echo), ready."""
    flags = ["--host", p.HOST, "--port", str(port), "--transformers", str(tmp / "transformers")]
    log = tmp / f"{sc.key}-w{workers}.log"
    if sc.key == "live":
        cmd = [sys.executable, "-m", "gateway", *flags, "--workers", str(workers)]
        procs = [p.Proc(f"python -m gateway --workers {workers}", cmd, log)]
    else:  # --worker-id is what the supervisor passes its workers: it turns on SO_REUSEPORT.
        cmd = [sys.executable, "-m", "rig.echo_server", "serve", *flags]
        ids = [[]] if workers == 1 else [["--worker-id", str(i)] for i in range(workers)]
        procs = [p.Proc(f"echo server {' '.join(i)}".rstrip(), [*cmd, *i], log) for i in ids]
    p.wait_ready(procs, port, "/health/live", log_marker=b"listening on", markers=workers)
    return procs


def start_nginx(tmp: Path, workers: int, port: int) -> list[p.Proc]:
    ndir = tmp / f"nginx-w{workers}"
    (ndir / "empty").mkdir(parents=True)
    # nginx workers run as another user (nobody) when started as root: let them reach the
    # empty root (a 404, not a 403 with an error-log line per request); files stay private.
    tmp.chmod(0o711)
    for path in (ndir, ndir / "empty"):
        path.chmod(0o755)
    conf = NGINX_CONF.read_text()
    for name, value in {"workers": workers, "dir": ndir, "host": p.HOST, "port": port}.items():
        conf = conf.replace(f"@{name}@", str(value))
    (ndir / "nginx.conf").write_text(conf)
    cmd = [p.find("nginx") or "nginx", "-p", str(ndir), "-c", str(ndir / "nginx.conf")]
    cmd += ["-e", str(ndir / "error.log")]
    procs = [p.Proc(f"nginx ({workers} workers)", cmd, ndir / "stderr.log")]
    p.wait_ready(procs, port, "/health/live")
    return procs


def run_scenario(args: argparse.Namespace, sc: Scenario, server: str, workers: int,
                 procs: list[p.Proc], port: int, log: Path, marker: bytes) -> Row:  # fmt: skip
    """``--repeat`` runs against the same server (a warm-up before the first), with the
    access lines written during each; the median by req/s."""
    note(f"{sc.label:18} {server:8} workers={workers} c={args.connections} ({args.generator}) ...")
    bodies = [sc.body] if sc.body else []

    def load(seconds: float) -> Any:
        return send(args, port, sc.path, bodies, seconds, method=sc.method)

    runs = []
    for i in range(args.repeat):
        if i == 0 and args.warmup > 0:
            load(args.warmup)
        before = p.settled_count(log, marker)
        res, used = measured(args, {"server": procs}, load, warmup=False)
        wall, req = used["wall"], res.requests
        runs.append(r := {
            "scenario": sc.label, "server": server, "workers": workers,
            "connections": args.connections, "generator": res.generator, "requests": req,
            "duration_s": res.duration_s, "rps": res.rps, "p50_ms": res.p50_ms,
            "p99_ms": res.p99_ms, "errors": res.errors, "non_2xx": res.non_2xx,
            "server_cpu_cores": used["server"] / wall,
            "server_cpu_us_per_req": used["server"] / req * 1e6 if req else 0.0,
            "loadgen_cpu_cores": used["client"] / wall, "other_cpu_cores": used["other"] / wall,
            "access_lines": p.settled_count(log, marker) - before, "ratio_to_nginx": None,
        })  # fmt: skip
        note(f"  {r['rps']:,.0f} req/s  p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms  "
             f"server CPU {r['server_cpu_cores']:.2f} cores, "
             f"other CPU {r['other_cpu_cores']:.2f}")  # fmt: skip
    return median_run(runs, "rps")


def echoes(port: int, body: bytes) -> str:
    """ "" if ``POST /echo`` answers ``body`` as it came, else what it answered."""
    status, got = p.http_request(port, "POST", "/echo", body)
    return "" if status == 200 and got == body else f"{status} with {len(got)} bytes"


def server_rows(args: argparse.Namespace, with_nginx: bool, tmp: Path) -> list[Row]:
    (tmp / "transformers").mkdir()
    chosen, rows = [SCENARIOS[k] for k in args.scenarios], []
    for workers in args.workers:
        for sc in chosen:  # a fresh gateway process (group) per scenario
            port = p.free_port()
            with p.running(start_gateway(tmp, sc, workers, port)) as procs:
                if sc.key == "echo" and (got := echoes(port, sc.body)):
                    raise RuntimeError(f"the gateway's /echo answered {got}: not an echo")
                marker = b"gateway.access"
                rows.append(
                    run_scenario(args, sc, "gateway", workers, procs, port, procs[0].log, marker)
                )
        if with_nginx:
            port, log = p.free_port(), tmp / f"nginx-w{workers}" / "access.log"
            with p.running(start_nginx(tmp, workers, port)) as procs:
                for sc in chosen:
                    if sc.key == "echo" and (got := echoes(port, sc.body)):
                        note(f"nginx's /echo answered {got}: no echo reference")
                    else:
                        marker = b'HTTP/1.1" 200'
                        rows.append(
                            run_scenario(args, sc, "nginx", workers, procs, port, log, marker)
                        )
    nginx = {(r["scenario"], r["workers"]): r["rps"] for r in rows if r["server"] == "nginx"}
    for row in rows:
        if row["server"] == "gateway" and (ref := nginx.get((row["scenario"], row["workers"]))):
            row["ratio_to_nginx"] = row["rps"] / ref
    return rows


def environment(args: argparse.Namespace, with_nginx: bool) -> dict[str, Any]:
    wrk = args.generator == "wrk"
    return {
        "python": sys.version.split()[0], "trio": trio.__version__, "h11": h11.__version__,
        "cpus": os.cpu_count(), "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "generator": args.generator, "wrk": p.version(["wrk", "--version"]) if wrk else "",
        "wrk_threads": args.threads if wrk else None,
        "nginx": p.version([p.find("nginx") or "nginx", "-v"]) if with_nginx else "",
        "duration_s": args.duration, "warmup_s": args.warmup, "connections": args.connections,
        "access_log": "gateway: text lines on stderr -> file; nginx: access_log -> file",
    }  # fmt: skip


def print_report(meta: dict[str, Any], rows: list[Row], verdict: Any, out: TextIO) -> None:
    gen = meta["generator"]
    if gen == "wrk":
        gen = f"{meta['wrk'].split(' [')[0]} ({meta['wrk_threads']} thread)"
    ref = f"reference: {meta['nginx']}" if meta["nginx"] else "no nginx reference"
    print(f"python {meta['python']}, trio {meta['trio']}, h11 {meta['h11']}, {meta['cpus']} "
          f"CPUs, load average {meta['loadavg_at_start'][0]} at start\nload: {gen}, "
          f"{meta['connections']} keep-alive connections, {meta['duration_s']:g} s after "
          f"{meta['warmup_s']:g} s warm-up; {ref}\n", file=out)  # fmt: skip
    shown = [{**r, "logged": r["access_lines"] / r["requests"] if r["requests"] else None,
              "all_errors": r["errors"] + r["non_2xx"]} for r in rows]  # fmt: skip
    columns(None, COLUMNS, shown, out, NOTES, left=2, indent="")
    for r in rows:
        if r["requests"] and r["access_lines"] < 0.99 * r["requests"]:
            print(f"WARNING: {r['server']} {r['scenario']}, workers={r['workers']}: wrote "
                  f"{r['access_lines']:,} access lines for {r['requests']:,} requests: "
                  f"{r['requests'] - r['access_lines']:,} lines missing "
                  "(dropped by the log queue?)\n", file=out)  # fmt: skip
    if verdict:
        print(f"target: 1 worker, {LIVE} >= {TARGET_RPS:,} req/s with access logging: "
              f"{'met' if verdict['met'] else 'MISSED'} ({verdict['measured_rps']:,.0f} req/s)",
              file=out)  # fmt: skip


def run(args: argparse.Namespace) -> int:
    with_nginx = not args.no_nginx and p.find("nginx") is not None
    if not args.no_nginx and not with_nginx:
        note("nginx is not installed: no reference figures (apt-get install nginx)")
    meta = environment(args, with_nginx)
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmpname:
        tmp = Path(tmpname)
        try:
            rows = server_rows(args, with_nginx, tmp)
        finally:
            p.copy_logs(tmp, args.keep_logs, lambda path: f"{path.parent.name}-{path.name}")
    key = ("gateway", 1, LIVE)
    target = next((r for r in rows if (r["server"], r["workers"], r["scenario"]) == key), None)
    verdict = target and {"target_rps": TARGET_RPS, "measured_rps": round(target["rps"], 1),
                          "met": target["rps"] >= TARGET_RPS}  # fmt: skip
    results = [{k: round(v, 4 if k == "ratio_to_nginx" else 3) if isinstance(v, float) else v
                for k, v in r.items()} for r in rows]  # fmt: skip
    doc = {"meta": meta, "target": verdict, "results": results}
    emit(doc, args.json, lambda _doc, out: print_report(meta, rows, verdict, out))
    return 1 if args.fail_under and target is not None and target["rps"] < args.fail_under else 0


def _csv(kind: Callable[[str], Any], ok: Callable[[Any], bool], what: str) -> Any:
    """An argparse type: a comma-separated list of ``kind`` values, each ``ok``."""

    def parse(text: str) -> list[Any]:
        try:
            values = [kind(x.strip()) for x in text.split(",") if x.strip()]
        except ValueError:
            values = []
        if not values or not all(map(ok, values)):
            raise argparse.ArgumentTypeError(what)
        return values

    return parse


def options(parser: argparse.ArgumentParser) -> None:
    add_load_options(parser)
    workers = _csv(int, lambda n: n >= 1, "a comma-separated list of positive integers")
    scenarios = _csv(str, SCENARIOS.__contains__, "choose from live, echo")
    # fmt: off
    add = parser.add_argument
    add("--workers", type=workers, default=[1, 2],
        help="worker counts to run, comma-separated (1,2)")
    add("--scenarios", type=scenarios, default=["live", "echo"],
        help="live (GET /health/live), echo (POST 1 KiB), comma-separated")
    add("--no-nginx", action="store_true", help="skip the nginx reference")
    add("--fail-under", type=float, metavar="RPS",
        help="exit 1 if 1-worker GET /health/live is below RPS")
    # fmt: on


COMMAND = ("the HTTP server alone: health GET and 1 KiB POST echo, vs nginx", options, run)
