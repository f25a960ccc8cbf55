"""Issue 8 item 5: a big conversion does not stall the event loop.

A ~3 MB OpenAI request of 80,000 short user messages goes to an Anthropic-format provider
through the running gateway. While it is converted (in a worker thread now: it used to
take seconds on the loop, quadratically), a probe times ``GET /health/live`` again and
again: every answer must come within a second, and the probe must have been answered
several times while the big request was in flight (so the test cannot pass without the
two overlapping).
"""

from __future__ import annotations

import json
import socket
import threading
import time

import trio

from tests.proxy.fakes import Step, anthropic_reply, start_gateway, write_transformer

MESSAGES = 80_000


async def _exchange(port: int, head: bytes, body: bytes = b"") -> bytes:
    """One request on a fresh connection (``Connection: close``); the whole answer."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(head + body)
        chunks = []
        while chunk := await stream.receive_some(65536):
            chunks.append(chunk)
    return b"".join(chunks)


async def test_health_live_answers_while_a_big_request_converts(nursery, provider, tmp_path):
    tdir = tmp_path / "transformers"
    tdir.mkdir()
    write_transformer(
        tdir,
        "up",
        {
            "format": "anthropic",
            "base_url": provider.url + "/v1",
            "keys": ["${UP_KEY}"],
            "models": {"the-model": "up-model"},
        },
    )
    provider.then(Step("json", body=anthropic_reply("done")))
    gw = await start_gateway(nursery, tdir, {"UP_KEY": "pk-123"})
    messages = [{"role": "user", "content": f"message number {i}"} for i in range(MESSAGES)]
    body = json.dumps({"model": "the-model", "messages": messages}).encode()
    assert len(body) > 2_500_000
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
        b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    probe = b"GET /health/live HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n"
    answer: list[bytes] = []
    done = threading.Event()
    latencies: list[float] = []

    def prober() -> None:
        """Times /health/live from a thread of its own: a prober on the event loop would
        stall with it and never see the stall."""
        while not done.is_set():
            start = time.monotonic()
            with socket.create_connection(("127.0.0.1", gw.port), timeout=60) as sock:
                sock.sendall(probe)
                reply = b""
                while chunk := sock.recv(65536):
                    reply += chunk
            assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
            latencies.append(time.monotonic() - start)
            time.sleep(0.02)

    async def big() -> None:
        try:
            answer.append(await _exchange(gw.port, head, body))
        finally:
            done.set()

    with trio.fail_after(120):
        async with trio.open_nursery() as inner:
            inner.start_soon(big)
            inner.start_soon(trio.to_thread.run_sync, prober)
    assert answer[0].startswith(b"HTTP/1.1 200"), answer[0][:300]
    assert b"done" in answer[0]
    assert len(provider.seen[-1].body["messages"]) == 1  # merged into one user turn
    assert len(latencies) >= 3, latencies
    assert max(latencies) < 1.0, latencies
