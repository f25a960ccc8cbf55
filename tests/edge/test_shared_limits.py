"""Issue 10 item 3: two gateway processes share one limit through a real redis-server,
and keep serving (or refuse, fail-closed) while it is down, sharing again once it is back."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.process import run_gateway

SHIPPED = Path(__file__).parent.parent.parent / "transformers"
KEY = "gw-shared-Vt6Hq2Lp9Xc4Nz8Ka"
CHAT = {"model": "mock-1", "messages": [{"role": "user", "content": "hi"}]}


def _config(tmp: Path, redis_url: str, *, fail_open: bool = True, rpm: int = 4) -> Path:
    path = tmp / "gateway.toml"
    path.write_text(
        f'[state]\nredis_url = "{redis_url}"\nfail_open = {str(fail_open).lower()}\n'
        f'[auth]\nkeys = [{{ name = "team", key = "${{TEAM_KEY}}", rpm = {rpm} }}]\n'
    )
    return path


def _chat(gw) -> httpx.Response:
    return httpx.post(
        gw.url + "/v1/chat/completions",
        json=CHAT,
        headers={"authorization": f"Bearer {KEY}"},
        timeout=10,
    )


def _metric(gw, name: str, **labels: str) -> float | None:
    """One sample of ``/metrics`` (None: not there), read with prometheus_client's parser."""
    text = httpx.get(gw.url + "/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return None


def _wait_redis(gw, state: str, timeout_s: float = 15) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _chat(gw)  # a request notices an outage; the state's watcher notices the return
        ready = httpx.get(gw.url + "/health/ready", timeout=5).json()
        if ready.get("state", {}).get("redis") == state:
            return ready
        time.sleep(0.1)
    raise AssertionError(f"redis never showed as {state}: {ready}")


def test_two_gateways_share_one_limit_and_survive_an_outage(tmp_path, redis_server):
    config = _config(tmp_path, redis_server.url)
    env = {"TEAM_KEY": KEY}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        run_gateway(tmp_path / "a", "--config", str(config), env=env, transformers=SHIPPED) as a,
        run_gateway(tmp_path / "b", "--config", str(config), env=env, transformers=SHIPPED) as b,
    ):
        assert [_chat(gw).status_code for gw in (a, b, a, b)] == [200] * 4
        refused = [_chat(a), _chat(b)]
        assert [r.status_code for r in refused] == [429, 429]
        assert all(int(r.headers["retry-after"]) >= 1 for r in refused)
        assert httpx.get(a.url + "/health/ready").json()["state"] == {"redis": "up"}
        assert _metric(a, "gateway_redis_up") == 1
        assert _metric(a, "gateway_limit_rejections_total", key="team", limit="rpm") == 1

        redis_server.stop()  # fail_open: each gateway goes on with its own, fresh, limits
        ready = _wait_redis(a, "down")
        assert ready["status"] == "degraded"
        assert _metric(a, "gateway_redis_up") == 0
        assert _chat(b).status_code in (200, 429)
        assert "Redis unreachable" in a.log()
        assert a.log().count("Redis unreachable") == 1  # once per outage, not per request

        redis_server.start()  # an empty Redis: the shared bucket starts full again
        _wait_redis(a, "up")
        _wait_redis(b, "up")
        assert _metric(a, "gateway_redis_up") == 1
        statuses = [_chat(gw).status_code for gw in (a, b, a, b, a, b)]
        assert statuses.count(200) <= 4  # one shared bucket of 4 again, not one per process
        assert statuses[-2:] == [429, 429]
        for text in (a.log(), b.log()):
            assert KEY not in text


def test_fail_closed_refuses_with_503_while_redis_is_down(tmp_path, redis_server):
    config = _config(tmp_path, redis_server.url, fail_open=False, rpm=100)
    with run_gateway(
        tmp_path, "--config", str(config), env={"TEAM_KEY": KEY}, transformers=SHIPPED
    ) as gw:
        assert _chat(gw).status_code == 200
        redis_server.stop()
        reply = _chat(gw)
        assert reply.status_code == 503
        assert reply.headers["retry-after"] == "1"
        assert "shared state" in reply.json()["error"]["message"]
        assert "127.0.0.1" not in reply.text  # the client is not told where Redis is
        gemini = httpx.post(
            gw.url + "/v1beta/models/mock-1:generateContent",
            json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
            headers={"x-goog-api-key": KEY},
        )
        assert gemini.status_code == 503
        assert gemini.json()["error"]["status"] == "UNAVAILABLE"
        redis_server.start()
        _wait_redis(gw, "up")
        assert _chat(gw).status_code == 200


@pytest.mark.parametrize("workers", [2])
def test_workers_of_one_gateway_share_the_limit_through_redis(tmp_path, redis_server, workers):
    config = _config(tmp_path, redis_server.url, rpm=6)
    with run_gateway(
        tmp_path,
        "--config",
        str(config),
        "--workers",
        str(workers),
        env={"TEAM_KEY": KEY},
        transformers=SHIPPED,
    ) as gw:
        statuses = []
        for _ in range(12):  # new connections: SO_REUSEPORT spreads them over the workers
            statuses.append(_chat(gw).status_code)
        assert statuses.count(200) == 6
        # One scrape covers both workers: every refusal, whichever worker refused it.
        deadline = time.monotonic() + 10
        while _metric(gw, "gateway_limit_rejections_total", key="team", limit="rpm") != 6:
            assert time.monotonic() < deadline, "the group's rejections never added up to 6"
            time.sleep(0.05)
        assert _metric(gw, "gateway_redis_up") == 1  # every worker reaches Redis
