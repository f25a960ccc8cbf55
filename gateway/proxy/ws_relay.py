"""Two WebSockets relayed to each other: messages both ways, closes mirrored.

Theory of operation (design.md, "Client keys, limits, CORS, secrets": frames
and close codes are relayed unchanged both ways). One task per direction
takes a message from one side and sends it to the other, text as text and
bytes as bytes. Each side's reader (trio-websocket) hands over a message
through a channel of size 0 and reads nothing more from its socket until the
message is taken (gateway.server.websocket.MESSAGE_QUEUE_SIZE), and a task
takes the next message only once the last one is sent: a slow reader on one
side stops the reads from the other (backpressure). A session holds at most,
per direction, the message being sent and the one being read, each capped at
``MAX_MESSAGE_BYTES`` (trio-websocket closes a side that sends more with 1009).
Pings and pongs are answered by each hop (trio-websocket), not relayed.

The ending: the first side whose messages end (its close arrived, after every
message it sent before it was passed on) decides, and its code and reason go
to the other side unchanged: 1000, 1001, 4xxx application codes, and a close
without a code (1005) as a close without a code. The codes that never travel
in a frame mean the connection broke (1006: it dropped without a close; 1015):
the client then gets 1011 ("the provider's connection broke") and the provider
1001 ("the client went away"). The gateway's own ending (the server drains:
``going_away`` returns; or the relay is cancelled) closes both with 1001.
Closing waits at most ``CLOSE_TIMEOUT_S`` for the close handshakes, shielded
from cancellation (``HURRIED_CLOSE_S`` once the relay is cancelled: the readers
that would see the answers are cancelled too); trio-websocket then closes the
streams. Close reasons from
the provider pass the redactor (it may echo a key), and every reason is cut to
the 123 bytes a close frame holds.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Literal

import attrs
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

__all__ = ["CLOSE_TIMEOUT_S", "Ending", "Relay", "Tally", "closing_codes"]

LOG = logging.getLogger("gateway.proxy")

#: The longest wait for a side to answer our close frame before its stream is closed.
CLOSE_TIMEOUT_S = 5.0
#: The same when the relay is cancelled: its readers are cancelled too, so no answer
#: can be seen; this is time for the close frames to go out.
HURRIED_CLOSE_S = 0.5
#: The close codes of a connection that broke instead of closing (RFC 6455 section 7.4.1):
#: they are never sent in a frame.
BROKEN = frozenset({1006, 1015})
#: What a close frame holds of a reason, in UTF-8 bytes (125 minus the code's 2).
MAX_REASON_BYTES = 123

Side = Literal["client", "upstream", "gateway"]


@attrs.frozen
class Ending:
    """How a relayed session ended: who closed first, with what code and reason."""

    by: Side
    code: int
    reason: str | None = None


#: The gateway's own ending: shutdown, or the session cancelled.
GOING_AWAY = Ending("gateway", 1001, "the gateway is shutting down")


@attrs.define
class Tally:
    """Messages and their bytes (UTF-8 for text) passed on in one direction."""

    messages: int = 0
    nbytes: int = 0

    def add(self, message: str | bytes) -> None:
        self.messages += 1
        if isinstance(message, bytes) or message.isascii():
            self.nbytes += len(message)
        else:
            self.nbytes += len(message.encode("utf-8", "surrogatepass"))


def _reason(text: str | None) -> str | None:
    """``text`` cut to what a close frame holds, never inside a character."""
    if not text:
        return None
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= MAX_REASON_BYTES:
        return text
    return data[:MAX_REASON_BYTES].decode("utf-8", "ignore")


def closing_codes(
    ending: Ending, redact: Callable[[str], str] = str
) -> tuple[tuple[int, str | None], tuple[int, str | None]]:
    """``((code, reason) to the client, (code, reason) to the provider)`` after ``ending``.

    The side that closed first gets its own code back (its close is already
    answered; trio-websocket sends nothing more to it).
    """
    code, reason = ending.code, ending.reason
    if ending.by == "upstream":
        if code in BROKEN:
            return (1011, "the provider's connection broke"), (code, None)
        return (code, _reason(redact(reason) if reason else None)), (code, None)
    if ending.by == "client":
        if code in BROKEN:
            return (code, None), (1001, "the client went away")
        return (code, None), (code, _reason(reason))
    return (code, reason), (code, reason)


class Relay:
    """The relay between a client's WebSocket and a provider's, until one side ends.

    Args:
        client: the client's WebSocket (accepted by the server).
        upstream: the provider's.
        redact: cleans the provider's close reason of secrets.
    """

    def __init__(
        self,
        client: WebSocketConnection,
        upstream: WebSocketConnection,
        *,
        redact: Callable[[str], str] = str,
    ) -> None:
        self.client = client
        self.upstream = upstream
        self.redact = redact
        self.to_client = Tally()
        self.to_upstream = Tally()
        self.ending: Ending | None = None

    async def run(self, going_away: Callable[[], Awaitable[None]] | None = None) -> Ending:
        """Relay until one side ends or ``going_away`` returns; close both; how it ended.

        Cancelled, it still closes both with 1001, in a hurry (``HURRIED_CLOSE_S``:
        the readers that would see the close handshakes are cancelled too), and
        lets the cancellation go on.
        """
        closing = trio.CancelScope(shield=True)
        async with trio.open_nursery() as outer:
            outer.start_soon(_hurry_when_cancelled, closing)
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._pump, self.upstream, self.client, "upstream", nursery)
                    nursery.start_soon(self._pump, self.client, self.upstream, "client", nursery)
                    if going_away is not None:
                        nursery.start_soon(self._go_away, going_away, nursery)
            finally:
                bound = CLOSE_TIMEOUT_S if self.ending is not None else HURRIED_CLOSE_S
                closing.deadline = min(closing.deadline, trio.current_time() + bound)
                with closing:
                    await self._close(self.ending or GOING_AWAY)
                outer.cancel_scope.cancel()
        return self.ending or GOING_AWAY

    def _end(self, ending: Ending, nursery: trio.Nursery) -> None:
        if self.ending is None:
            self.ending = ending
        nursery.cancel_scope.cancel()

    async def _pump(
        self,
        source: WebSocketConnection,
        sink: WebSocketConnection,
        side: Side,
        nursery: trio.Nursery,
    ) -> None:
        """Messages from ``source`` (the ``side``) to ``sink``, until ``source`` ends."""
        tally = self.to_client if side == "upstream" else self.to_upstream
        while True:
            try:
                message = await source.get_message()
            except ConnectionClosed as exc:
                reason = exc.reason
                code = reason.code if reason is not None else 1006
                self._end(Ending(side, code, reason.reason if reason else None), nursery)
                return
            try:
                await sink.send_message(message)
            except ConnectionClosed:
                # The sink is closing: the other task reports how, once it has passed
                # on what the sink sent before its close.
                return
            tally.add(message)

    async def _go_away(
        self, going_away: Callable[[], Awaitable[None]], nursery: trio.Nursery
    ) -> None:
        await going_away()
        self._end(GOING_AWAY, nursery)

    async def _close(self, ending: Ending) -> None:
        """Both sides closed as ``ending`` says (:func:`closing_codes`), concurrently."""
        to_client, to_upstream = closing_codes(ending, self.redact)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_close_side, self.client, *to_client)
            nursery.start_soon(_close_side, self.upstream, *to_upstream)


async def _hurry_when_cancelled(closing: trio.CancelScope) -> None:
    """Shorten ``closing`` to ``HURRIED_CLOSE_S`` once this task is cancelled: the relay
    was cancelled from outside (or has closed, when it no longer matters)."""
    try:
        await trio.sleep_forever()
    finally:
        closing.deadline = min(closing.deadline, trio.current_time() + HURRIED_CLOSE_S)


async def _close_side(ws: WebSocketConnection, code: int, reason: str | None) -> None:
    """Close ``ws`` with ``code`` (a no-op when it is closed already)."""
    await ws.aclose(code, reason)
