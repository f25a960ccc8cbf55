"""gateway.proxy.ws_relay on memory streams: the close-code rules, and a cancelled relay.

The relay through the running gateway (frames, closes from either side, a slow
reader, shutdown) is tests/proxy/test_realtime.py.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing
import trio_websocket
from trio_websocket import ConnectionClosed, WebSocketConnection
from wsproto.frame_protocol import CloseReason

from gateway.proxy.ws_relay import CLOSE_TIMEOUT_S, Ending, Relay, closing_codes

LIMIT_S = 5


@pytest.mark.parametrize(
    ("ending", "to_client", "to_upstream"),
    [
        (Ending("upstream", 4000, "bye"), (4000, "bye"), (4000, None)),
        (Ending("upstream", 1000), (1000, None), (1000, None)),
        (Ending("upstream", 1006), (1011, "the provider's connection broke"), (1006, None)),
        (Ending("upstream", 1015), (1011, "the provider's connection broke"), (1015, None)),
        (Ending("client", 4001, "done"), (4001, None), (4001, "done")),
        (Ending("client", 1006), (1006, None), (1001, "the client went away")),
        (Ending("gateway", 1001, "x"), (1001, "x"), (1001, "x")),
    ],
)
def test_closing_codes(ending, to_client, to_upstream):
    assert closing_codes(ending) == (to_client, to_upstream)


def test_a_close_without_a_code_stays_one_and_reasons_are_redacted_and_cut():
    no_status = Ending("upstream", CloseReason.NO_STATUS_RCVD)
    (code, reason), _ = closing_codes(no_status)
    assert code is CloseReason.NO_STATUS_RCVD  # wsproto sends a close without a code for it
    assert reason is None
    long = Ending("upstream", 4000, "é" * 100 + " secret-value")
    (_, reason), _ = closing_codes(long, redact=lambda s: s.replace("secret-value", "[x]"))
    assert len(reason.encode()) <= 123
    assert reason == "é" * 61  # cut at 123 bytes, never inside a character


async def _pair(
    server_nursery: trio.Nursery, client_nursery: trio.Nursery
) -> tuple[WebSocketConnection, WebSocketConnection]:
    """(server side, client side) of one WebSocket over a memory stream pair, each side's
    reader in its nursery."""
    server_end, client_end = trio.testing.memory_stream_pair()
    accepted: list[WebSocketConnection] = []

    async def serve() -> None:
        proposal = await trio_websocket.wrap_server_stream(server_nursery, server_end)
        accepted.append(await proposal.accept())

    async with trio.open_nursery() as both:
        both.start_soon(serve)
        client = await trio_websocket.wrap_client_stream(client_nursery, client_end, "t", "/")
    return accepted[0], client


async def test_a_cancelled_relay_closes_both_sides_with_1001_in_a_hurry():
    """Its own readers are cancelled with it: the close frames go out, no answer is awaited."""
    with trio.fail_after(LIMIT_S):
        async with trio.open_nursery() as peers:
            async with trio.open_nursery() as relay_side:
                # The gateway's sides (and their readers) are in the cancelled nursery.
                client, client_peer = await _pair(relay_side, peers)
                upstream_peer, upstream = await _pair(peers, relay_side)
                relay = Relay(client, upstream)
                relay_side.start_soon(relay.run)
                await client_peer.send_message("to the provider")
                assert await upstream_peer.get_message() == "to the provider"
                started = trio.current_time()
                relay_side.cancel_scope.cancel()
            took = trio.current_time() - started
            for peer in (client_peer, upstream_peer):
                with pytest.raises(ConnectionClosed) as closed:
                    await peer.get_message()
                assert closed.value.reason.code == 1001
            peers.cancel_scope.cancel()
    assert took < CLOSE_TIMEOUT_S / 2
