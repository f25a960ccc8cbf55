"""``--workers 2`` as a real process group: one scrape of /metrics, at whichever worker
the kernel hands it to, covers every worker; a stuck worker or a killed one does not
hold a scrape up nor pull the group's counters down.

Which worker serves a connection is the kernel's choice (SO_REUSEPORT hashes each new
connection), so the test does not ask which one answered: every request and every scrape
goes on a new connection, and each scrape must show exactly the requests sent. A scrape
that saw one worker only would show about half (all N on one worker: 2**-(N-1)).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.process import GatewayProcess, run_gateway

BODY = {"model": "mock-1", "messages": [{"role": "user", "content": "hello workers"}]}
SENT = 40
#: A scrape answers within this even when a worker is stuck (1 s for it, then the merge).
PROMPT_S = 2.5


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        kids += [int(k) for k in (task / "children").read_text().split()]
    return sorted(kids)


def _workers(gw: GatewayProcess, count: int = 2) -> list[int]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        kids = _children(gw.proc.pid)
        if len(kids) == count:
            return kids
        time.sleep(0.05)
    raise AssertionError(f"not {count} workers: {_children(gw.proc.pid)}")


@pytest.fixture
def group(tmp_path: Path) -> Iterator[GatewayProcess]:
    tdir = tmp_path / "transformers"
    tdir.mkdir()
    (tdir / "mock.json").write_text('{"format": "mock", "models": {"mock-1": "mock-1"}}')
    with run_gateway(tmp_path, "--workers", "2", transformers=tdir) as gw:
        _workers(gw)
        gw.wait_ready("/health/ready")
        yield gw


def _send(gw: GatewayProcess, count: int) -> None:
    for _ in range(count):  # a new connection each: the kernel spreads them over the workers
        reply = httpx.post(gw.url + "/v1/chat/completions", json=BODY, timeout=10)
        assert reply.status_code == 200
        assert reply.headers["x-gateway-provider"] == "mock"


def _scrape(gw: GatewayProcess, timeout: float = 10) -> dict[str, float]:
    """One scrape, parsed: ``name{labels}`` -> value for the families the test reads."""
    reply = httpx.get(gw.url + "/metrics", timeout=timeout)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(reply.text):
        for s in family.samples:
            if s.name == "gateway_requests_total":
                out[f"requests{{{s.labels['status']}}}"] = s.value
            elif s.name == "gateway_tokens_total":
                out[f"tokens{{{s.labels['direction']}}}"] = s.value
            elif s.name == "gateway_request_duration_seconds_count":
                out["durations"] = s.value
            elif s.name in (
                "gateway_metrics_workers_missing",
                "gateway_worker_restarts_total",
                "gateway_inflight_requests",
            ):
                out[s.name] = s.value
    return out


def _scrape_until(gw: GatewayProcess, want: float, timeout: float = 10) -> dict[str, float]:
    """A request's metrics are recorded as it ends, a moment after its client read it."""
    deadline = time.monotonic() + timeout
    while True:
        got = _scrape(gw)
        if got.get("requests{200}") == want or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def _scrape_skipping(gw: GatewayProcess, stopped: int, attempts: int = 10) -> tuple[dict, float]:
    """A scrape that reached a running worker (a connection the kernel gave to the
    stopped one cannot be answered), and how long that scrape took."""
    for _ in range(attempts):
        started = time.monotonic()
        try:
            got = _scrape(gw, timeout=PROMPT_S)
        except httpx.TimeoutException:
            assert Path(f"/proc/{stopped}").exists()
            continue
        return got, time.monotonic() - started
    raise AssertionError(f"no scrape answered in {attempts} attempts")


def test_one_scrape_covers_every_worker_whichever_answers(group: GatewayProcess) -> None:
    _send(group, SENT)
    first = _scrape_until(group, SENT)
    assert first["requests{200}"] == SENT
    for _ in range(10):  # new connections: both workers answer some of these
        got = _scrape(group)
        assert got["requests{200}"] == SENT
        assert got["durations"] == SENT
        assert got["tokens{in}"] == first["tokens{in}"] > 0
        assert got["tokens{out}"] == first["tokens{out}"] > 0
        assert got["gateway_metrics_workers_missing"] == 0
        assert got["gateway_worker_restarts_total"] == 0
        assert got["gateway_inflight_requests"] == 0


def test_a_stuck_worker_is_left_out_promptly_and_its_counts_kept(group: GatewayProcess) -> None:
    _send(group, SENT)
    assert _scrape_until(group, SENT)["requests{200}"] == SENT  # both workers answered it
    stuck = _workers(group)[0]
    os.kill(stuck, signal.SIGSTOP)
    try:
        for _ in range(2):
            got, took = _scrape_skipping(group, stuck)
            assert took < PROMPT_S
            assert got["gateway_metrics_workers_missing"] == 1
            assert got["requests{200}"] == SENT  # its share as of its last answer
    finally:
        os.kill(stuck, signal.SIGCONT)
    again = _scrape_until(group, SENT)
    assert again["gateway_metrics_workers_missing"] == 0


def test_a_killed_worker_leaves_its_counts_and_scrapes_answer_promptly(
    group: GatewayProcess,
) -> None:
    _send(group, SENT)
    assert _scrape_until(group, SENT)["requests{200}"] == SENT
    victim = _workers(group)[0]
    os.kill(victim, signal.SIGKILL)
    for _ in range(5):
        started = time.monotonic()
        got = _scrape(group)
        assert time.monotonic() - started < PROMPT_S
        assert got["requests{200}"] == SENT  # the dead worker's share is kept
    deadline = time.monotonic() + 20
    while victim in _children(group.proc.pid) or len(_children(group.proc.pid)) < 2:
        assert time.monotonic() < deadline, "the worker was not restarted"
        time.sleep(0.05)
    group.wait_ready("/health/ready")
    _send(group, 10)
    got = _scrape_until(group, SENT + 10)
    assert got["requests{200}"] == SENT + 10
    assert got["gateway_worker_restarts_total"] == 1
    assert got["gateway_metrics_workers_missing"] == 0
    assert group.terminate() == 0
