#!/usr/bin/env python
"""Benchmarks of the gateway on this machine (all load goes to 127.0.0.1).

    python scripts/bench.py server [--duration 10] [--connections 64] [--workers 1,2]
                                   [--repeat 1] [--quick] [--json] [--generator auto|wrk|trio]

``server``: requests/s and p50/p99 latency of the HTTP server itself, for
``GET /health/live`` and for a ``POST`` echo of a 1 KiB JSON body, at 1 and 2
workers, beside nginx serving the same where nginx is installed (the machine's
reference; the ratio is taken within the same run).

- ``GET /health/live`` is served by the real ``python -m gateway --port P
  --transformers <empty dir> [--workers N]`` process.
- The echo is served by scripts/bench_echo_server.py: ``python -m gateway``'s
  own ``main()`` with the same flags, its App given one extra ``POST /echo``
  route (the gateway has no echo endpoint); at N workers, N such processes
  with ``--worker-id I`` share the port with SO_REUSEPORT, as the
  supervisor's workers do.
- Gateway processes run with the default settings and the same logging as
  ``python -m gateway`` (``setup_logging``; text access lines on), their
  stderr written to a file, so requests cost their real access-log lines.
  The "logged" column counts the lines written for the measured window: the
  gateway's log queue drops lines when its writer thread falls behind, and
  a warning under the table names any shortfall.
- nginx: a generated nginx.conf with ``worker_processes N``, ``reuseport``,
  ``access_log`` to a file, ``return 200 '{"status":"live"}'`` for the GET and,
  for the echo, stock modules only: ``mirror`` with ``mirror_request_body on``
  makes nginx read the body, then a 404 from the empty root goes to a named
  location that does ``return 200 $request_body``. The echo is checked
  byte-for-byte before it is measured; if it does not echo, only the GET
  reference is given.
- Load: wrk (with a Lua ``done()`` printing exact percentiles) when installed,
  else our own generator on trio + h11 (scripts/bench_load.py), which needs a
  core of its own and so caps what it can measure.

The machine is small and shared: the table shows the CPU the servers, the load
generator and everything else used during each run ("other CPU" is noise from
other work; rerun, or use ``--repeat 3`` for the median of three runs, when it
is not near 0). The gateway's settings come from the environment as usual, so
``GATEWAY_LOGGING__LEVEL=warning`` measures it without access lines.

Every process started here is stopped on the way out (SIGTERM, then SIGKILL
to its process group), including on Ctrl-C and SIGTERM.

More subcommands (``proxy``, ``convert``) plug in through :data:`COMMANDS`;
the helpers they share are :class:`Proc` and :func:`wait_ready` (start a
process, wait for its port), :func:`measure` (warm up, load, collect CPU and log counts) and
:func:`print_table`.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_load import LoadSpec, have_wrk, run_load

# Subcommand modules `import bench`: make that this very module, also when run as a script,
# so that there is one Proc class and stop_all() stops every process they start.
sys.modules.setdefault("bench", sys.modules[__name__])

HOST = "127.0.0.1"
SCRIPTS = Path(__file__).resolve().parent
REPO = SCRIPTS.parent
TARGET_RPS = 2500  # issue 2: one worker, GET /health/live, access logging on
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- processes -----------------------------------------------------------------------------


class Proc:
    """A server process in its own process group, stderr (and stdout) to ``log``.

    ``stop()`` sends SIGTERM to the leader (the gateway drains and exits 0),
    then SIGKILL to whatever of the group is left after ``STOP_TIMEOUT_S``.
    """

    live: list[Proc] = []

    def __init__(self, name: str, cmd: list[str], log: Path, *, env: dict[str, str] | None = None):
        self.name = name
        self.cmd = cmd
        self.log = log
        with open(log, "ab") as out:  # O_APPEND: several workers may write to it
            self.popen = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                cwd=REPO,
                env=env,
                start_new_session=True,
            )
        self.pgid = self.popen.pid
        Proc.live.append(self)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def group_pids(self) -> list[int]:
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    rest = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(rest[2]) == self.pgid:
                pids.append(int(entry))
        return pids

    def cpu_seconds(self) -> float:
        """User + system CPU of every live process in the group (threads included)."""
        total = 0
        for pid in self.group_pids():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    rest = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(rest[11]) + int(rest[12])
        return total / CLK_TCK

    def stop(self) -> None:
        if self in Proc.live:
            Proc.live.remove(self)
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(STOP_TIMEOUT_S)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pgid, signal.SIGKILL)  # leftovers of our own group only
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(STOP_TIMEOUT_S)

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def stop_all() -> None:
    for proc in list(Proc.live):
        proc.stop()


@contextlib.contextmanager
def running(procs: list[Proc]) -> Iterator[list[Proc]]:
    try:
        yield procs
    finally:
        for proc in procs:
            proc.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def http_request(
    port: int, method: str, path: str, body: bytes = b"", timeout: float = 2.0
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        headers = {"content-type": "application/json"} if body else {}
        conn.request(method, path, body=body or None, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_ready(
    procs: list[Proc], port: int, path: str, *, log_marker: bytes = b"", markers: int = 0
) -> None:
    """Wait until ``GET path`` answers 200 and the logs hold ``markers`` x ``log_marker``."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        for proc in procs:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited early:\n{proc.tail()}")
        seen = (
            sum(count_marker(log, log_marker) for log in {p.log for p in procs}) if markers else 0
        )
        if seen >= markers:
            with contextlib.suppress(OSError, http.client.HTTPException):
                if http_request(port, "GET", path)[0] == 200:
                    return
        time.sleep(0.1)
    raise RuntimeError(f"{procs[0].name} not ready after {READY_TIMEOUT_S:g} s:\n{procs[0].tail()}")


def count_marker(path: Path, marker: bytes) -> int:
    """Lines of ``path`` containing ``marker``."""
    try:
        with open(path, "rb") as f:
            return sum(1 for line in f if marker in line)
    except FileNotFoundError:
        return 0


def settled_count(
    path: Path | None, marker: bytes, *, quiet_s: float = 0.5, limit_s: float = 10.0
) -> int:
    """``count_marker`` once the file stopped growing for ``quiet_s`` (log writers lag)."""
    if path is None:
        return 0
    deadline = time.monotonic() + limit_s
    last = -1
    while True:
        size = path.stat().st_size if path.exists() else 0
        if size == last or time.monotonic() > deadline:
            return count_marker(path, marker)
        last = size
        time.sleep(quiet_s)


# -- measuring -----------------------------------------------------------------------------


@dataclass
class Row:
    scenario: str
    server: str
    workers: int
    connections: int
    generator: str = ""
    requests: int = 0
    duration_s: float = 0.0
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    errors: int = 0
    non_2xx: int = 0
    server_cpu_cores: float = 0.0
    server_cpu_us_per_req: float = 0.0
    loadgen_cpu_cores: float = 0.0
    other_cpu_cores: float = 0.0
    access_lines: int = 0
    ratio_to_nginx: float | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (not idle, not iowait) since boot."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / CLK_TCK


def _children_cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def measure(
    row: Row,
    spec: LoadSpec,
    procs: list[Proc],
    *,
    generator: str,
    warmup_s: float,
    access_log: Path | None,
    access_marker: bytes,
) -> Row:
    """Warm up, then one measured run; fills ``row`` with load, CPU and log figures."""
    if warmup_s > 0:
        run_load(
            LoadSpec(**{**spec.__dict__, "duration_s": warmup_s}),
            generator,
        )
    before_lines = settled_count(access_log, access_marker)
    cpu0 = sum(p.cpu_seconds() for p in procs)
    gen0 = _children_cpu()
    busy0 = machine_busy_seconds()
    t0 = time.perf_counter()
    result = run_load(spec, generator)
    wall = time.perf_counter() - t0
    cpu1 = sum(p.cpu_seconds() for p in procs)
    gen1 = _children_cpu()
    busy1 = machine_busy_seconds()
    after_lines = settled_count(access_log, access_marker)
    row.generator = result.generator
    row.requests = result.requests
    row.duration_s = result.duration_s
    row.rps = result.rps
    row.p50_ms = result.p50_ms
    row.p99_ms = result.p99_ms
    row.errors = result.errors
    row.non_2xx = result.non_2xx
    row.server_cpu_cores = (cpu1 - cpu0) / wall if wall else 0.0
    row.server_cpu_us_per_req = (cpu1 - cpu0) / result.requests * 1e6 if result.requests else 0.0
    row.loadgen_cpu_cores = (gen1 - gen0) / wall if wall else 0.0
    row.other_cpu_cores = max(0.0, (busy1 - busy0) - (cpu1 - cpu0) - (gen1 - gen0)) / wall
    row.access_lines = after_lines - before_lines
    return row


# -- the `server` benchmark ----------------------------------------------------------------


def json_body(size: int = 1024) -> bytes:
    """A chat-completions-shaped JSON body of exactly ``size`` bytes."""
    head, tail = b'{"model":"bench","messages":[{"role":"user","content":"', b'"}]}'
    body = head + b"x" * (size - len(head) - len(tail)) + tail
    json.loads(body)
    return body


LIVE = "GET /health/live"


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    method: str
    path: str
    body: bytes = b""


def scenarios() -> dict[str, Scenario]:
    return {
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


def start_gateway(tmp: Path, workers: int, port: int, empty: Path) -> list[Proc]:
    log = tmp / f"gateway-w{workers}.log"
    cmd = [sys.executable, "-m", "gateway", "--host", HOST, "--port", str(port)]
    cmd += ["--transformers", str(empty), "--workers", str(workers)]
    return [Proc(f"python -m gateway --workers {workers}", cmd, log)]


def start_echo(tmp: Path, workers: int, port: int, empty: Path) -> list[Proc]:
    """``python -m gateway`` plus ``POST /echo``; N processes as the supervisor's workers run."""
    log = tmp / f"echo-w{workers}.log"
    base = [sys.executable, str(SCRIPTS / "bench_echo_server.py"), "serve", "--host", HOST]
    base += ["--port", str(port), "--transformers", str(empty)]
    if workers == 1:
        return [Proc("bench_echo_server", base, log)]
    # --worker-id is what the supervisor passes its workers: it turns on SO_REUSEPORT.
    return [
        Proc(f"bench_echo_server worker {i}", [*base, "--worker-id", str(i)], log)
        for i in range(workers)
    ]


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
    nginx = find_nginx() or "nginx"
    cmd = [nginx, "-p", str(ndir), "-c", str(conf), "-e", str(ndir / "error.log")]
    return [Proc(f"nginx ({workers} workers)", cmd, ndir / "stderr.log")]


def find_nginx() -> str | None:
    return shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None
    )


def _run_scenario(
    args: argparse.Namespace,
    generator: str,
    sc: Scenario,
    server: str,
    workers: int,
    procs: list[Proc],
    port: int,
    access_log: Path,
    access_marker: bytes,
) -> Row:
    spec = LoadSpec(
        url=f"http://{HOST}:{port}{sc.path}",
        method=sc.method,
        body=sc.body,
        connections=args.connections,
        duration_s=args.duration,
        threads=args.threads,
    )
    note(f"{sc.label:18} {server:8} workers={workers} c={args.connections} ({generator}) ...")
    runs = []
    for i in range(args.repeat):
        row = Row(sc.label, server, workers, args.connections)
        measure(
            row,
            spec,
            procs,
            generator=generator,
            warmup_s=args.warmup if i == 0 else 0.0,
            access_log=access_log,
            access_marker=access_marker,
        )
        note(
            f"  {row.rps:,.0f} req/s  p50 {row.p50_ms:.2f} ms  p99 {row.p99_ms:.2f} ms  "
            f"server CPU {row.server_cpu_cores:.2f} cores, other CPU {row.other_cpu_cores:.2f}"
        )
        runs.append(row)
    runs.sort(key=lambda r: r.rps)
    row = runs[len(runs) // 2]  # the median run (by req/s)
    if len(runs) > 1:
        row.extra["runs_rps"] = [round(r.rps, 1) for r in runs]
    return row


def _echoes(port: int, body: bytes) -> tuple[bool, str]:
    status, got = http_request(port, "POST", "/echo", body)
    return status == 200 and got == body, f"{status} with {len(got)} bytes"


def _server_rows(
    args: argparse.Namespace, generator: str, with_nginx: bool, tmp: Path
) -> list[Row]:
    empty = tmp / "transformers"
    empty.mkdir()
    chosen = [scenarios()[k] for k in args.scenarios]
    rows: list[Row] = []
    for workers in args.workers:
        for sc in chosen:  # a fresh gateway process (group) per scenario
            port = free_port()
            if sc.key == "live":
                procs = start_gateway(tmp, workers, port, empty)
            else:
                procs = start_echo(tmp, workers, port, empty)
            with running(procs):
                wait_ready(procs, port, "/health/live", log_marker=b"listening on", markers=workers)
                if sc.key == "echo":
                    ok, got = _echoes(port, sc.body)
                    if not ok:
                        raise RuntimeError(f"the gateway's /echo answered {got}: not an echo")
                rows.append(
                    _run_scenario(
                        args, generator, sc, "gateway", workers, procs, port, procs[0].log,
                        b"gateway.access",
                    )
                )  # fmt: skip
        if not with_nginx:
            continue
        port = free_port()
        procs = start_nginx(tmp, workers, port)
        with running(procs):
            wait_ready(procs, port, "/health/live")
            access = tmp / f"nginx-w{workers}" / "access.log"
            for sc in chosen:
                if sc.key == "echo":
                    ok, got = _echoes(port, sc.body)
                    if not ok:
                        note(f"nginx's /echo answered {got}: no echo reference")
                        continue
                rows.append(
                    _run_scenario(
                        args, generator, sc, "nginx", workers, procs, port, access,
                        b'HTTP/1.1" 200',
                    )
                )  # fmt: skip
    for row in rows:
        ref = [
            r.rps
            for r in rows
            if r.server == "nginx" and r.scenario == row.scenario and r.workers == row.workers
        ]
        if row.server == "gateway" and ref and ref[0]:
            row.ratio_to_nginx = row.rps / ref[0]
    return rows


def cmd_server(args: argparse.Namespace) -> int:
    generator = args.generator
    if generator == "auto":
        generator = "wrk" if have_wrk() else "trio"
    if generator == "wrk" and not have_wrk():
        note("bench: wrk is not installed (apt-get install wrk)")
        return 2
    with_nginx = not args.no_nginx and find_nginx() is not None
    if not args.no_nginx and not with_nginx:
        note("nginx is not installed: no reference figures (apt-get install nginx)")
    meta = environment(generator, with_nginx, args)
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmpname:
        tmp = Path(tmpname)
        try:
            rows = _server_rows(args, generator, with_nginx, tmp)
        finally:
            if args.keep_logs:
                keep = Path(args.keep_logs)
                keep.mkdir(parents=True, exist_ok=True)
                for path in tmp.rglob("*.log"):
                    shutil.copy(path, keep / f"{path.parent.name}-{path.name}")
    target = next(
        (r for r in rows if r.server == "gateway" and r.workers == 1 and r.scenario == LIVE),
        None,
    )
    verdict = None
    if target is not None:
        verdict = {
            "target_rps": TARGET_RPS,
            "measured_rps": round(target.rps, 1),
            "met": target.rps >= TARGET_RPS,
        }
    # With --json the JSON goes to stdout and the table to stderr, beside the progress lines.
    out = sys.stderr if args.json else sys.stdout
    print_meta(meta, out)
    print_table(rows, out)
    for r in rows:
        if r.requests and r.access_lines < 0.99 * r.requests:
            print(
                f"\nWARNING: {r.server} {r.scenario}, workers={r.workers}: wrote "
                f"{r.access_lines:,} access lines for {r.requests:,} requests: "
                f"{r.requests - r.access_lines:,} lines missing (dropped by the log queue?)",
                file=out,
            )
    if verdict:
        print(
            f"\ntarget: 1 worker, {LIVE} >= {TARGET_RPS:,} req/s with access logging: "
            f"{'met' if verdict['met'] else 'MISSED'} ({verdict['measured_rps']:,.0f} req/s)",
            file=out,
        )
    if args.json:
        doc = {"meta": meta, "target": verdict, "results": [row_dict(r) for r in rows]}
        print(json.dumps(doc, indent=2))
    if args.fail_under and target is not None and target.rps < args.fail_under:
        return 1
    return 0


# -- output --------------------------------------------------------------------------------


def note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def row_dict(row: Row) -> dict[str, Any]:
    out = dict(row.__dict__)
    for key in (
        "rps",
        "p50_ms",
        "p99_ms",
        "server_cpu_cores",
        "server_cpu_us_per_req",
        "loadgen_cpu_cores",
        "other_cpu_cores",
    ):
        out[key] = round(out[key], 3)
    if row.ratio_to_nginx is not None:
        out["ratio_to_nginx"] = round(row.ratio_to_nginx, 4)
    return out


def _version(cmd: list[str]) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (proc.stdout + proc.stderr).strip().splitlines()[0] if proc.stdout + proc.stderr else ""


def environment(generator: str, with_nginx: bool, args: argparse.Namespace) -> dict[str, Any]:
    import h11
    import trio

    return {
        "python": platform.python_version(),
        "trio": trio.__version__,
        "h11": h11.__version__,
        "cpus": os.cpu_count(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "generator": generator,
        "wrk": _version(["wrk", "--version"]) if generator == "wrk" else "",
        "wrk_threads": args.threads if generator == "wrk" else None,
        "nginx": _version([find_nginx() or "nginx", "-v"]) if with_nginx else "",
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "connections": args.connections,
        "access_log": "gateway: text lines on stderr -> file; nginx: access_log -> file",
    }


def print_meta(meta: dict[str, Any], out: TextIO = sys.stdout) -> None:
    gen = meta["generator"]
    if gen == "wrk":
        gen = f"{meta['wrk'].split(' [')[0]} ({meta['wrk_threads']} thread)"
    print(
        f"python {meta['python']}, trio {meta['trio']}, h11 {meta['h11']}, "
        f"{meta['cpus']} CPUs, load average {meta['loadavg_at_start'][0]} at start",
        file=out,
    )
    print(
        f"load: {gen}, {meta['connections']} keep-alive connections, "
        f"{meta['duration_s']:g} s after {meta['warmup_s']:g} s warm-up"
        + (f"; reference: {meta['nginx']}" if meta["nginx"] else "; no nginx reference"),
        file=out,
    )
    print(file=out)


def print_table(rows: list[Row], out: TextIO = sys.stdout) -> None:
    head = [
        "scenario",
        "server",
        "workers",
        "conns",
        "req/s",
        "p50 ms",
        "p99 ms",
        "vs nginx",
        "srv CPU",
        "CPU us/req",
        "gen CPU",
        "other CPU",
        "logged",
        "errors",
    ]
    table = [head]
    for r in rows:
        ratio = f"{r.ratio_to_nginx:.1%}" if r.ratio_to_nginx is not None else "-"
        logged = f"{r.access_lines / r.requests:.0%}" if r.requests else "-"
        table.append(
            [
                r.scenario,
                r.server,
                str(r.workers),
                str(r.connections),
                f"{r.rps:,.0f}",
                f"{r.p50_ms:.2f}",
                f"{r.p99_ms:.2f}",
                ratio,
                f"{r.server_cpu_cores:.2f}",
                f"{r.server_cpu_us_per_req:.0f}",
                f"{r.loadgen_cpu_cores:.2f}",
                f"{r.other_cpu_cores:.2f}",
                logged,
                str(r.errors + r.non_2xx),
            ]
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(head))]
    for n, line in enumerate(table):
        cells = [
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=False))
        ]
        print("  ".join(cells).rstrip(), file=out)
        if n == 0:
            print("  ".join("-" * w for w in widths), file=out)
    print(
        "\nsrv CPU: cores the server's processes used during the run (2 CPUs on this machine, "
        "shared with the load generator);\ngen CPU: cores the load generator used; "
        "other CPU: cores the rest of the machine used (noise);\n"
        "logged: access lines written / requests counted during the run.",
        file=out,
    )


# -- command line --------------------------------------------------------------------------


def _csv_ints(text: str) -> list[int]:
    values = [int(x) for x in text.split(",") if x.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("a comma-separated list of positive integers")
    return values


def _csv_scenarios(text: str) -> list[str]:
    keys = [x.strip() for x in text.split(",") if x.strip()]
    known = scenarios()
    bad = [k for k in keys if k not in known]
    if bad or not keys:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(known)}")
    return keys


def add_load_options(parser: argparse.ArgumentParser) -> None:
    """Options every load benchmark shares."""
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run (10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds (2)")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections (64)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measured runs per row, against the same server; the median (by req/s) is shown",
    )
    parser.add_argument(
        "--generator",
        choices=["auto", "wrk", "trio"],
        default="auto",
        help="load generator: wrk if installed (auto), or ours on trio+h11",
    )
    parser.add_argument("--quick", action="store_true", help="short runs: 3 s after 1 s warm-up")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--keep-logs", metavar="DIR", help="copy the servers' logs here")


COMMANDS: dict[
    str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]
] = {}


def _server_options(parser: argparse.ArgumentParser) -> None:
    add_load_options(parser)
    parser.add_argument(
        "--workers",
        type=_csv_ints,
        default=[1, 2],
        help="worker counts to run, comma-separated (1,2)",
    )
    parser.add_argument(
        "--scenarios",
        type=_csv_scenarios,
        default=["live", "echo"],
        help="live (GET /health/live), echo (POST 1 KiB), comma-separated",
    )
    parser.add_argument("--no-nginx", action="store_true", help="skip the nginx reference")
    parser.add_argument(
        "--fail-under",
        type=float,
        metavar="RPS",
        help="exit 1 if 1-worker GET /health/live is below RPS",
    )


COMMANDS["server"] = (
    "the HTTP server alone: health GET and 1 KiB POST echo, vs nginx",
    _server_options,
    cmd_server,
)


# Subcommands in modules of their own (they import the helpers above from `bench`).
import bench_convert  # noqa: E402
import bench_proxy  # noqa: E402

COMMANDS["proxy"] = bench_proxy.COMMAND
COMMANDS["convert"] = bench_convert.COMMAND


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scripts/bench.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="{" + ",".join(COMMANDS) + "}"
    )
    for name, (help_text, add_options, _run) in COMMANDS.items():
        add_options(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "repeat", 1) < 1:
        parser.error("--repeat must be at least 1")
    if getattr(args, "quick", False):
        args.duration, args.warmup = min(args.duration, 3.0), min(args.warmup, 1.0)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks
    try:
        return COMMANDS[args.command][2](args)
    except KeyboardInterrupt:
        return 130
    except RuntimeError as exc:
        note(f"bench: {exc}")
        return 1
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main())
