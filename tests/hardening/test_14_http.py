"""Issue 8 item 14 (server part): HEAD, CL+TE, half-closed clients, ClientGone, cancellations.

* HEAD got no response and a traceback (h11 "Too much data for declared
  Content-Length"); Claude Code sends HEAD on every start. Every GET route
  answers HEAD with the GET's head and no body; POST routes say 405 + Allow.
* A request with both Content-Length and Transfer-Encoding: 400 and close.
* A client that half-closes (SHUT_WR) after its request still gets its answer.
* ClientGone never surfaces as an ExceptionGroup traceback.
* A non-stream client that reads its answer and closes is not a stream cancellation.
"""

from __future__ import annotations

import json
import logging

import h11
import httpx
import pytest
import trio

from gateway.server.exchange import Exchange
from gateway.server.listen import open_listeners
from tests.proxy.fakes import (
    Step,
    eventually,
    openai_chunks,
    openai_reply,
    start_gateway,
    write_transformer,
)
from tests.server.helpers import H11Client, Probe, make_server, read_until_closed

CHAT = {"model": "p/up", "messages": [{"role": "user", "content": "hi"}]}


async def _gateway(nursery, tmp_path, provider):
    write_transformer(
        tmp_path,
        "p",
        {"format": "openai", "base_url": provider.url + "/v1", "models": {"up": "up"}},
    )
    write_transformer(tmp_path, "mock", {"format": "mock", "models": {"*": "*"}})
    return await start_gateway(nursery, tmp_path)


async def _connect(port: int) -> H11Client:
    return H11Client(await trio.open_tcp_stream("127.0.0.1", port))


@pytest.mark.parametrize(
    "path", ["/health/live", "/health/ready", "/health/startup", "/v1/models", "/v1/models/p/up"]
)
async def test_head_answers_every_get_route_with_its_head_and_no_body(
    nursery, tmp_path, provider, path
):
    gw = await _gateway(nursery, tmp_path, provider)
    client = await _connect(gw.port)
    got = await client.request("GET", path)
    head = await client.request("HEAD", path)  # h11 knows a HEAD answer has no body
    assert head.status == got.status
    assert head.body == b""
    assert head.headers[b"content-length"] == got.headers[b"content-length"]
    assert head.headers[b"content-type"] == got.headers[b"content-type"]
    # the connection stays in step: another request on it works
    assert (await client.request("GET", path)).body == got.body
    await client.stream.aclose()


async def test_head_on_metrics_and_on_unknown_paths(nursery, tmp_path, provider):
    gw = await _gateway(nursery, tmp_path, provider)
    client = await _connect(gw.port)
    head = await client.request("HEAD", "/metrics")
    assert head.status == 200
    assert head.body == b""
    assert int(head.headers[b"content-length"]) > 0
    missing = await client.request("HEAD", "/nowhere")
    assert missing.status == 404
    assert missing.body == b""
    assert (await client.request("GET", "/health/live")).status == 200
    await client.stream.aclose()


@pytest.mark.parametrize(
    "path", ["/v1/chat/completions", "/v1/messages", "/v1beta/models/p/up:generateContent"]
)
async def test_head_on_a_post_route_is_405_with_allow(nursery, tmp_path, provider, path):
    gw = await _gateway(nursery, tmp_path, provider)
    client = await _connect(gw.port)
    reply = await client.request("HEAD", path)
    assert reply.status == 405
    assert reply.headers[b"allow"] == b"POST"
    assert reply.body == b""
    assert (await client.request("GET", "/health/live")).status == 200
    await client.stream.aclose()


async def test_405_on_a_get_route_allows_head_too(nursery, tmp_path, provider):
    gw = await _gateway(nursery, tmp_path, provider)
    async with httpx.AsyncClient(base_url=gw.url) as client:
        reply = await client.delete("/health/live")
    assert reply.status_code == 405
    assert reply.headers["allow"] == "GET, HEAD"


async def test_content_length_with_transfer_encoding_is_400_and_closes(nursery, tmp_path, provider):
    gw = await _gateway(nursery, tmp_path, provider)
    stream = await trio.open_tcp_stream("127.0.0.1", gw.port)
    body = json.dumps(CHAT).encode()
    await stream.send_all(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: t\r\ncontent-length: %d\r\n"
        b"transfer-encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(body), len(body), body)
    )
    with trio.fail_after(5):
        data = await read_until_closed(stream)
    assert data.startswith(b"HTTP/1.1 400 ")
    assert b"connection: close" in data
    assert b"Content-Length and Transfer-Encoding" in data
    assert data.count(b"HTTP/1.1 ") == 1  # the smuggled body was not read as a request
    assert provider.seen == []
    await stream.aclose()


async def _half_closed_request(port: int, body: dict) -> tuple[list[int], bytes]:
    """Send a request, shut our side (SHUT_WR), read the answer: (statuses, body)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    data = json.dumps(body).encode()
    await stream.send_all(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n%s" % (len(data), data)
    )
    await stream.send_eof()
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="POST", target="/", headers=[("host", "t")]))
    statuses: list[int] = []
    content = b""
    with trio.fail_after(10):
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await stream.receive_some(65536))
            elif isinstance(event, (h11.InformationalResponse, h11.Response)):
                statuses.append(event.status_code)
            elif isinstance(event, h11.Data):
                content += event.data
            else:
                break
    await stream.aclose()
    return statuses, content


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_a_half_closed_client_still_gets_its_answer(nursery, tmp_path, provider, stream):
    gw = await _gateway(nursery, tmp_path, provider)
    if stream:
        provider.then(Step("sse", events=openai_chunks(["half", "closed"]), delay_s=0.5))
    else:
        provider.then(Step("json", body=openai_reply("half closed"), delay_s=0.5))
    statuses, content = await _half_closed_request(gw.port, {**CHAT, "stream": stream})
    assert statuses[-1] == 200
    assert set(statuses[:-1]) <= {100}  # at most the probe that told it is still there
    assert b"half" in content
    assert b"closed" in content
    if stream:
        assert content.rstrip().endswith(b"data: [DONE]")
    assert not provider.handler_gone.is_set()


@pytest.mark.parametrize("watched", [True, False])
async def test_client_gone_from_a_handlers_nursery_is_not_a_traceback(nursery, caplog, watched):
    """Two tasks of a handler both fail to send when the client leaves: a group of ClientGone."""
    probe = Probe()
    server = make_server(probe)

    async def two_writers(ex: Exchange) -> None:
        await ex.start(200, content_type=b"text/plain")
        lock = trio.Lock()

        async def writer() -> None:
            while True:
                async with lock:  # one writer at a time, as a keep-alive task and a relay
                    await ex.send(b"x" * 65536)

        async with trio.open_nursery() as inner:
            inner.start_soon(writer)
            inner.start_soon(writer)

    from gateway.server.routes import Route, Router

    server.router = Router([Route("GET", "/two", two_writers, watch_disconnect=watched)])
    listeners = await open_listeners("127.0.0.1", 0)
    port = (await nursery.start(server.serve, listeners))[0][1]
    caplog.set_level(logging.DEBUG, logger="gateway")
    for _ in range(3):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(b"GET /two HTTP/1.1\r\nhost: t\r\n\r\n")
        await stream.receive_some(1000)
        await stream.aclose()
    await eventually(lambda: server.connections == 0, timeout_s=5)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    assert "Traceback" not in caplog.text


async def test_clients_that_read_their_answer_and_close_are_not_cancellations(
    nursery, tmp_path, provider
):
    gw = await _gateway(nursery, tmp_path, provider)
    handle = gw.app.proxy.handle

    async def answer_then_tidy_up(ex, call) -> None:
        await handle(ex, call)
        await trio.sleep(0.2)  # work after the answer (closing upstream, bookkeeping)

    gw.app.proxy.handle = answer_then_tidy_up
    provider.then(Step("json", body=openai_reply("ok")))
    data = json.dumps(CHAT).encode()
    for _ in range(5):  # as curl does: one request, read the whole answer, close
        stream = await trio.open_tcp_stream("127.0.0.1", gw.port)
        await stream.send_all(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: t\r\ncontent-length: %d\r\n\r\n%s"
            % (len(data), data)
        )
        client = H11Client(stream)
        client.conn.send(h11.Request(method="POST", target="/", headers=[("host", "t")]))
        assert (await client.read_reply()).status == 200
        await stream.aclose()
    await eventually(lambda: gw.app.server.connections == 0, timeout_s=5)
    metrics = gw.app.metrics.render().decode()
    cancelled = [
        line
        for line in metrics.splitlines()
        if line.startswith("gateway_stream_cancellations_total{") and not line.endswith(" 0.0")
    ]
    assert cancelled == []
