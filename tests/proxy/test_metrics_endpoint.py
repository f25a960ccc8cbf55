"""/metrics through the running gateway, read back with prometheus_client's parser."""

from __future__ import annotations

import json

import httpx
import trio
from prometheus_client.parser import text_string_to_metric_families

from tests.proxy.fakes import (
    Step,
    eventually,
    openai_chunks,
    openai_reply,
    start_gateway,
    write_transformer,
)

BODY = {"model": "m", "messages": [{"role": "user", "content": "x"}]}


def _samples(text):
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def test_metrics_count_requests_errors_overhead_and_cancellations(nursery, provider, tdir):
    write_transformer(
        tdir,
        "p",
        {
            "format": "openai",
            "base_url": provider.url + "/v1",
            "keys": ["${K}"],
            "models": {"m": "up"},
            "retry": {"retries": 1, "backoff_s": 0.01},
        },
    )
    provider.then(
        Step("status", status=500, body={"error": {"message": "x"}}),
        Step("json", body=openai_reply("ok")),
        Step("silent_after", events=openai_chunks(["a"])[:1]),
    )
    gw = await start_gateway(nursery, tdir, {"K": "secret-key-value-123"})
    async with httpx.AsyncClient(base_url=gw.url) as client:
        assert (await client.post("/v1/chat/completions", json=BODY)).status_code == 200
        assert (
            await client.post("/v1/chat/completions", json={**BODY, "model": "nope"})
        ).status_code == 404
    # a stream the client abandons
    stream = await trio.open_tcp_stream("127.0.0.1", gw.port)
    data = json.dumps({**BODY, "stream": True}).encode()
    await stream.send_all(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: t\r\ncontent-length: %d\r\n\r\n%s"
        % (len(data), data)
    )
    await stream.receive_some(1000)
    await stream.aclose()
    await eventually(lambda: gw.app.server.connections == 0)
    async with httpx.AsyncClient(base_url=gw.url) as client:
        reply = await client.get("/metrics")
    assert reply.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "secret-key-value-123" not in reply.text
    s = _samples(reply.text)
    assert (
        s[("gateway_requests_total", (("model", "m"), ("provider", "p"), ("status", "200")))] == 2
    )
    assert (
        s[("gateway_requests_total", (("model", "nope"), ("provider", "none"), ("status", "404")))]
        == 1
    )
    assert s[("gateway_upstream_errors_total", (("kind", "status_500"), ("provider", "p")))] == 1
    assert s[("gateway_stream_cancellations_total", (("provider", "p"),))] == 1
    assert s[("gateway_overhead_seconds_count", ())] == 3
    assert s[("gateway_time_to_first_byte_seconds_count", (("provider", "p"),))] == 2
    assert s[("gateway_inflight_requests", ())] == 0
    assert s[("gateway_transformer_reloads_total", (("result", "ok"),))] == 1
