"""Throw mutated and random bytes at the server; it must answer sanely and keep serving."""

from __future__ import annotations

import h11
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.server.helpers import H11Client, Probe, connect_memory, make_server, read_until_closed

VALID = [
    b"GET /hello HTTP/1.1\r\nhost: t\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nhost: t\r\ncontent-length: 5\r\n\r\nhello",
    b"POST /echo HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    b"GET /hello?a=b HTTP/1.1\r\nhost: t\r\nx-request-id: r1\r\nexpect: 100-continue\r\n\r\n",
]


@st.composite
def mutated_requests(draw: st.DrawFn) -> bytes:
    base = bytearray(b"".join(draw(st.lists(st.sampled_from(VALID), min_size=1, max_size=3))))
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        pos = draw(st.integers(0, max(len(base) - 1, 0)))
        if op == "flip" and base:
            base[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            base[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and base:
            del base[pos : pos + draw(st.integers(1, 8))]
        elif op == "truncate":
            del base[pos:]
    return bytes(base)


def _check_output(data: bytes) -> None:
    """Whatever came back must be a sequence of well-formed HTTP/1.1 responses."""
    client = h11.Connection(h11.CLIENT)
    client.receive_data(data)
    while client.trailing_data[0] or client.their_state is not h11.IDLE:
        # h11 parses a response only after a request was "sent"; any GET will do.
        if client.our_state is h11.IDLE:
            client.send(h11.Request(method="GET", target="/", headers=[("host", "t")]))
            client.send(h11.EndOfMessage())
        event = client.next_event()
        while isinstance(event, h11.InformationalResponse):
            event = client.next_event()
        assert isinstance(event, h11.Response), (event, data)
        assert 100 <= event.status_code < 600
        while not isinstance(event, h11.EndOfMessage):
            event = client.next_event()
            assert event is not h11.NEED_DATA, ("truncated response", data)
        if client.their_state is h11.MUST_CLOSE:
            assert not client.trailing_data[0], ("bytes after a closing response", data)
            return
        client.start_next_cycle()


@settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(raw=st.one_of(mutated_requests(), st.binary(max_size=300)))
async def test_garbage_never_breaks_the_server(raw):
    probe = Probe()
    server = make_server(probe, header_timeout_s=2, body_timeout_s=2, keep_alive_s=2)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            stream = connect_memory(nursery, server)
            await stream.send_all(raw)
            await stream.send_eof()
            _check_output(await read_until_closed(stream))
            await stream.aclose()
            # The same server still serves a normal request on a new connection.
            client = H11Client(connect_memory(nursery, server))
            assert (await client.request("POST", "/echo", b"still alive")).body == b"still alive"
            await client.stream.aclose()
