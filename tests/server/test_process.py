"""A real ``python -m gateway`` process: signals, exit status, workers."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx

from tests.process import run_gateway


def _children(pid: int) -> set[int]:
    kids = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        kids.update(int(k) for k in text)
    return kids


def test_sigterm_answers_503_on_ready_then_exits_zero(tmp_path):
    env = {"GATEWAY_SERVER__SHUTDOWN_DELAY_S": "1.5"}
    with run_gateway(tmp_path, env=env) as gw:
        ready = httpx.get(gw.url + "/health/ready")
        assert ready.status_code == 200
        assert ready.json()["status"] == "ready"
        gw.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        seen_503 = None
        while time.monotonic() < deadline and seen_503 is None:
            r = httpx.get(gw.url + "/health/ready")
            if r.status_code == 503:
                seen_503 = r.json()
        assert seen_503 == {
            "status": "shutting_down",
            "transformers": seen_503["transformers"],
        }
        assert httpx.get(gw.url + "/health/live").status_code == 200  # still serving
        assert gw.proc.wait(10) == 0
        assert "SIGTERM received" in gw.log()


def test_sigint_also_shuts_down_cleanly(tmp_path):
    with run_gateway(tmp_path) as gw:
        gw.proc.send_signal(signal.SIGINT)
        assert gw.proc.wait(10) == 0
        assert "Traceback" not in gw.log()


def test_keep_alive_client_is_closed_at_shutdown(tmp_path):
    with run_gateway(tmp_path) as gw, httpx.Client() as client:
        assert client.get(gw.url + "/health/live").status_code == 200
        start = time.monotonic()
        assert gw.terminate() == 0
        assert time.monotonic() - start < 5  # an idle pooled connection does not hold exit


def test_workers_share_the_port_and_a_dead_worker_is_restarted(tmp_path):
    with run_gateway(tmp_path, "--workers", "2") as gw:
        deadline = time.monotonic() + 20
        while len(_children(gw.proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        workers = _children(gw.proc.pid)
        assert len(workers) == 2
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            now = _children(gw.proc.pid)
            if len(now) == 2 and victim not in now:
                break
            time.sleep(0.05)
        assert victim not in _children(gw.proc.pid)
        assert len(_children(gw.proc.pid)) == 2
        # Every request is served while workers come and go.
        gw.wait_ready()
        for _ in range(20):
            assert httpx.get(gw.url + "/health/live").status_code == 200
        survivors = _children(gw.proc.pid)
        assert gw.terminate() == 0
        for pid in survivors:
            assert (
                not Path(f"/proc/{pid}").exists()
                or "zombie" in Path(f"/proc/{pid}/status").read_text()
            )
        assert "worker 0 started" in gw.log() or "worker 1 started" in gw.log()
        assert "died" in gw.log()


def test_workers_finish_in_flight_requests_on_sigterm(tmp_path):
    # A request held open by a slow upload is still answered after SIGTERM reaches
    # the parent: the parent forwards it, the worker drains.
    with run_gateway(tmp_path, "--workers", "2") as gw:
        import socket

        sock = socket.create_connection(("127.0.0.1", gw.port))
        sock.sendall(b"GET /health/live HTTP/1.1\r\nhost: t\r\n")  # head not finished yet
        time.sleep(0.3)
        result: dict[str, bytes] = {}

        def finish() -> None:
            time.sleep(0.5)
            sock.sendall(b"\r\n")
            result["reply"] = sock.recv(4096)

        t = threading.Thread(target=finish)
        t.start()
        gw.proc.send_signal(signal.SIGTERM)
        t.join(10)
        assert result["reply"].startswith(b"HTTP/1.1 200 ")
        assert gw.proc.wait(15) == 0
        sock.close()


def test_every_request_gets_an_access_line_under_load(tmp_path):
    import concurrent.futures

    requests_per_client, clients = 300, 8
    with run_gateway(tmp_path, "--log-format", "json") as gw:

        def hammer(i: int) -> int:
            with httpx.Client(base_url=gw.url) as client:
                for n in range(requests_per_client):
                    client.get("/health/live", headers={"x-request-id": f"load-{i}-{n}"})
            return requests_per_client

        with concurrent.futures.ThreadPoolExecutor(clients) as pool:
            sent = sum(pool.map(hammer, range(clients)))
        assert gw.terminate() == 0
        import json

        lines = [json.loads(line) for line in gw.log().splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "gateway.access"]
    ids = {line["request_id"] for line in access if line["request_id"].startswith("load-")}
    assert len(ids) == sent == clients * requests_per_client
    sample = access[0]
    for field in ("request_id", "method", "path", "status", "bytes", "duration_ms", "client"):
        assert field in sample
