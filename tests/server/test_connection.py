"""The connection loop, driven through memory streams with an h11 client (autojump clock)."""

from __future__ import annotations

import logging

import h11
import pytest
import trio
import trio.testing

from tests.server.helpers import H11Client, Probe, connect_memory, make_server, read_until_closed


@pytest.fixture
def probe() -> Probe:
    return Probe()


async def test_keep_alive_serves_several_requests_on_one_connection(nursery, probe):
    client = H11Client(connect_memory(nursery, make_server(probe)))
    for i in range(5):
        reply = await client.request("POST", "/echo", b"body %d" % i)
        assert reply.status == 200
        assert reply.body == b"body %d" % i
        assert reply.headers[b"content-length"] == b"%d" % len(reply.body)
        assert b"connection" not in reply.headers
    assert probe.bodies == [b"body %d" % i for i in range(5)]


async def test_every_response_carries_request_id_and_overhead(nursery, probe):
    client = H11Client(connect_memory(nursery, make_server(probe)))
    reply = await client.request("GET", "/hello", headers=[("x-request-id", "client-id-7")])
    assert reply.headers[b"x-request-id"] == b"client-id-7"
    assert float(reply.headers[b"x-gateway-overhead-ms"]) >= 0
    assert reply.headers[b"date"].endswith(b"GMT")
    generated = await client.request("GET", "/hello")
    assert len(generated.headers[b"x-request-id"]) == 32
    # An id that is not a sane token is replaced, not echoed.
    odd = await client.request("GET", "/hello", headers=[("x-request-id", "a b<script>")])
    assert odd.headers[b"x-request-id"] != b"a b<script>"


async def test_pipelined_requests_are_answered_in_order(nursery, probe):
    stream = connect_memory(nursery, make_server(probe))
    raw = b"".join(
        b"POST /echo HTTP/1.1\r\nhost: t\r\ncontent-length: 2\r\n\r\n%02d" % i for i in range(6)
    )
    raw += b"GET /hello HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n"
    await stream.send_all(raw)
    data = await read_until_closed(stream)
    client = h11.Connection(h11.CLIENT)
    # Parse the replies with a client that "sent" the same requests.
    for i in range(6):
        client.send(
            h11.Request(
                method="POST", target="/echo", headers=[("host", "t"), ("content-length", "2")]
            )
        )
        client.send(h11.Data(data=b"%02d" % i))
        client.send(h11.EndOfMessage())
        client.receive_data(data)
        data = b""
        assert client.next_event().status_code == 200
        assert client.next_event().data == b"%02d" % i
        assert type(client.next_event()) is h11.EndOfMessage
        client.start_next_cycle()
    client.send(
        h11.Request(method="GET", target="/hello", headers=[("host", "t"), ("connection", "close")])
    )
    client.send(h11.EndOfMessage())
    assert client.next_event().status_code == 200


async def test_chunked_request_body_is_reassembled(nursery, probe):
    stream = connect_memory(nursery, make_server(probe))
    await stream.send_all(
        b"POST /echo HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\n\r\n"
    )
    client = H11Client(stream)
    client.conn.send(
        h11.Request(
            method="POST", target="/echo", headers=[("host", "t"), ("transfer-encoding", "chunked")]
        )
    )
    client.conn.send(h11.EndOfMessage())
    reply = await client.read_reply()
    assert reply.status == 200
    assert reply.body == b"hello world"


async def test_expect_100_continue_is_answered_before_the_body(nursery, probe):
    stream = connect_memory(nursery, make_server(probe))
    await stream.send_all(
        b"POST /echo HTTP/1.1\r\nhost: t\r\ncontent-length: 4\r\nexpect: 100-continue\r\n\r\n"
    )
    first = await stream.receive_some(1000)
    assert first.startswith(b"HTTP/1.1 100 ")
    await stream.send_all(b"ping")
    rest = await stream.receive_some(1000)
    assert rest.startswith(b"HTTP/1.1 200 ")
    assert rest.endswith(b"ping")


async def test_oversized_declared_body_is_413_before_reading_and_closes(nursery, probe):
    server = make_server(probe, max_body_bytes=1000)
    stream = connect_memory(nursery, server)
    await stream.send_all(
        b"POST /echo HTTP/1.1\r\nhost: t\r\ncontent-length: 5000\r\nexpect: 100-continue\r\n\r\n"
    )
    data = await read_until_closed(stream)
    assert data.startswith(b"HTTP/1.1 413 ")  # no 100 Continue was sent first
    assert b"connection: close" in data
    assert b"1000" in data  # the message says what the limit is
    assert probe.bodies == []


async def test_oversized_chunked_body_is_413(nursery, probe):
    stream = connect_memory(nursery, make_server(probe, max_body_bytes=10))
    await stream.send_all(
        b"POST /echo HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n"
        b"8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n"
    )
    data = await read_until_closed(stream)
    assert data.startswith(b"HTTP/1.1 413 ")
    assert probe.bodies == []


async def test_oversized_head_is_431(nursery, probe):
    stream = connect_memory(nursery, make_server(probe, max_header_bytes=2048))
    await stream.send_all(b"GET /hello HTTP/1.1\r\nhost: t\r\nx-big: " + b"a" * 5000 + b"\r\n\r\n")
    data = await read_until_closed(stream)
    assert data.startswith(b"HTTP/1.1 431 ")


async def test_slow_request_head_is_408_and_closed(nursery, probe, autojump_clock):
    stream = connect_memory(nursery, make_server(probe, header_timeout_s=10))
    await stream.send_all(b"GET /hello HTTP/1.1\r\nhost: t\r\n")  # never finished
    start = trio.current_time()
    data = await read_until_closed(stream)
    assert data.startswith(b"HTTP/1.1 408 ")
    assert b"connection: close" in data
    assert 9 <= trio.current_time() - start <= 11


async def test_slowloris_trickle_still_times_out(nursery, probe, autojump_clock):
    stream = connect_memory(nursery, make_server(probe, header_timeout_s=10))
    await stream.send_all(b"GET /hello HTTP/1.1\r\n")
    start = trio.current_time()
    with pytest.raises(trio.BrokenResourceError):  # noqa: PT012
        for _ in range(100):  # one header byte every 2 s would never end without the cap
            await trio.sleep(2)
            await stream.send_all(b"x")
    assert trio.current_time() - start <= 12
    assert (await read_until_closed(stream)).startswith(b"HTTP/1.1 408 ")


async def test_pause_inside_body_is_408(nursery, probe, autojump_clock):
    stream = connect_memory(nursery, make_server(probe, body_timeout_s=30))
    await stream.send_all(b"POST /echo HTTP/1.1\r\nhost: t\r\ncontent-length: 10\r\n\r\n12345")
    start = trio.current_time()
    data = await read_until_closed(stream)
    assert data.startswith(b"HTTP/1.1 408 ")
    assert 29 <= trio.current_time() - start <= 31
    assert probe.bodies == []


async def test_idle_keep_alive_connection_is_closed_quietly(nursery, probe, autojump_clock):
    stream = connect_memory(nursery, make_server(probe, keep_alive_s=75))
    client = H11Client(stream)
    assert (await client.request("GET", "/hello")).status == 200
    start = trio.current_time()
    assert await read_until_closed(stream) == b""  # closed without a response
    assert 74 <= trio.current_time() - start <= 76


async def test_fresh_connection_that_sends_nothing_is_closed(nursery, probe, autojump_clock):
    stream = connect_memory(nursery, make_server(probe, header_timeout_s=10))
    start = trio.current_time()
    assert await read_until_closed(stream) == b""
    assert trio.current_time() - start <= 11


@pytest.mark.parametrize(
    "raw",
    [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nbad header line\r\n\r\n",
        b"GET / HTTP/1.1\r\nhost: a\r\nhost: b\r\ncontent-length: x\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\nZZ\r\n",
        b"GET / HTTP/1.1\r\nhost: t\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
    ],
)
async def test_malformed_request_is_400_and_closes(nursery, probe, raw):
    stream = connect_memory(nursery, make_server(probe))
    await stream.send_all(raw)
    data = await read_until_closed(stream)
    assert data.startswith(b"HTTP/1.1 400 ")
    assert b"connection: close" in data
    assert b'"type":"invalid_request_error"' in data


async def test_unsupported_http_version_is_505(nursery, probe):
    stream = connect_memory(nursery, make_server(probe))
    await stream.send_all(b"GET /hello HTTP/9.9\r\nhost: t\r\n\r\n")
    assert (await read_until_closed(stream)).startswith(b"HTTP/1.1 505 ")


async def test_handler_exception_is_500_and_connection_keeps_serving(nursery, probe, caplog):
    client = H11Client(connect_memory(nursery, make_server(probe)))
    with caplog.at_level(logging.ERROR, logger="gateway"):
        reply = await client.request("GET", "/boom")
    assert reply.status == 500
    body = reply.json()
    assert "secret detail" not in reply.body.decode()  # our exception text stays in the log
    assert reply.headers[b"x-request-id"].decode() in body["error"]["message"]
    assert any(r.exc_info and "secret detail" in str(r.exc_info[1]) for r in caplog.records)
    assert (await client.request("GET", "/hello")).status == 200


async def test_handler_that_never_answers_is_500(nursery, probe):
    client = H11Client(connect_memory(nursery, make_server(probe)))
    assert (await client.request("GET", "/mute")).status == 500
    assert (await client.request("GET", "/hello")).status == 200


async def test_404_and_405_keep_the_connection_open(nursery, probe):
    client = H11Client(connect_memory(nursery, make_server(probe)))
    missing = await client.request("POST", "/nowhere", b'{"a": 1}')
    assert missing.status == 404
    assert b"connection" not in missing.headers
    assert missing.json()["error"]["type"] == "invalid_request_error"
    wrong = await client.request("GET", "/echo")
    assert wrong.status == 405
    assert wrong.headers[b"allow"] == b"POST"
    assert (await client.request("GET", "/hello")).status == 200


async def test_errors_come_in_the_route_format(nursery, probe):
    client = H11Client(connect_memory(nursery, make_server(probe, max_body_bytes=4)))
    reply = await client.request("POST", "/gemini/m:generateContent", b"123456")
    assert reply.status == 413
    assert reply.json() == {
        "error": {
            "code": 413,
            "message": reply.json()["error"]["message"],
            "status": "INVALID_ARGUMENT",
        }
    }


async def test_client_disconnect_cancels_the_handler(nursery, probe):
    stream = connect_memory(nursery, make_server(probe))
    await stream.send_all(b"GET /wait HTTP/1.1\r\nhost: t\r\n\r\n")
    await probe.started.wait()
    await stream.aclose()
    with trio.fail_after(1):
        await probe.cancelled.wait()
    assert not probe.finished.is_set()


async def test_watched_handler_finishes_normally_and_keeps_pipelined_bytes(nursery, probe):
    stream = connect_memory(nursery, make_server(probe))
    await stream.send_all(b"GET /wait HTTP/1.1\r\nhost: t\r\n\r\n")
    await probe.started.wait()
    # A pipelined request arrives while the handler runs: the watchdog keeps it.
    await stream.send_all(b"GET /hello HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
    await trio.testing.wait_all_tasks_blocked()
    probe.release.set()
    data = await read_until_closed(stream)
    assert data.count(b"HTTP/1.1 200 ") == 2
    assert b'{"released":true}' in data
    assert b'"hello":"/hello"' in data
    assert not probe.cancelled.is_set()


async def test_streaming_response_is_chunked_and_waits_for_a_slow_reader(nursery, probe):
    stream = connect_memory(nursery, make_server(probe), lockstep=True)
    await stream.send_all(b"GET /stream?n=500 HTTP/1.1\r\nhost: t\r\n\r\n")
    await trio.testing.wait_all_tasks_blocked()
    # Nobody reads: the handler must be stuck on its first send (lockstep streams
    # hold no buffer), not have produced all 500 chunks into some unbounded queue.
    assert probe.chunks_sent == 0
    client = H11Client(stream)
    client.conn.send(h11.Request(method="GET", target="/stream?n=500", headers=[("host", "t")]))
    client.conn.send(h11.EndOfMessage())
    reply = await client.read_reply()
    assert reply.headers[b"transfer-encoding"] == b"chunked"
    assert reply.body.count(b"data: ") == 500
    assert probe.chunks_sent == 500


async def test_client_leaving_mid_stream_cancels_the_stream(nursery, probe):
    stream = connect_memory(nursery, make_server(probe))
    await stream.send_all(b"GET /stream?n=100000 HTTP/1.1\r\nhost: t\r\n\r\n")
    await stream.receive_some(5000)
    await stream.aclose()
    with trio.fail_after(1):
        await probe.stopped.wait()
    assert probe.chunks_sent < 100000


async def test_a_bad_connection_does_not_disturb_another(nursery, probe):
    server = make_server(probe)
    good = H11Client(connect_memory(nursery, server))
    bad = connect_memory(nursery, server)
    await bad.send_all(b"\x00\xff garbage \r\n\r\n")
    assert (await read_until_closed(bad)).startswith(b"HTTP/1.1 400 ")
    assert (await good.request("GET", "/hello")).status == 200


async def test_access_log_line_per_request(nursery, probe, caplog):
    client = H11Client(connect_memory(nursery, make_server(probe)))
    with caplog.at_level(logging.INFO, logger="gateway.access"):
        await client.request("GET", "/hello?key=SECRETKEY&x=1", headers=[("x-request-id", "rid-1")])
        await client.request("GET", "/nowhere")
    lines = [r for r in caplog.records if r.name == "gateway.access"]
    assert [r.status for r in lines] == [200, 404]
    assert lines[0].request_id == "rid-1"
    assert lines[0].method == "GET"
    assert "SECRETKEY" not in lines[0].getMessage()
    assert "SECRETKEY" not in lines[0].path
    assert lines[0].bytes > 0
    assert 0 <= lines[0].ttfb_ms <= lines[0].duration_ms
