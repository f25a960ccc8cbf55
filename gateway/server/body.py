"""Reading one request body whole: the size cap, the pause and the total timeouts.

Phase 3 of a connection's loop (connection.py). A declared ``content-length``
over ``max_body_bytes`` is a 413 before a byte of it is read (no ``100
Continue`` goes out); a chunked body is counted as it arrives. Each pause is
bounded by ``body_timeout_s`` and the whole body by ``body_total_timeout_s``
(408 and close: a byte dripped every 29 s would otherwise hold the slot
forever). The request's memory reservation (admission.py) grows with the body,
the declared length up front, so a body that would take the in-flight total
past its limit is refused early.

It lived in connection.py until the WebSocket upgrade (websocket.py) needed the room.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import h11
import trio

from gateway.errors import PayloadTooLarge, RequestTimeout
from gateway.server.exchange import ClientGone

if TYPE_CHECKING:
    from gateway.config import ServerConfig
    from gateway.server.admission import Reservation
    from gateway.server.exchange import Request

__all__ = ["read_body"]


async def read_body(
    conn: h11.Connection,
    receive_event: Callable[[], Awaitable[Any]],
    config: ServerConfig,
    request: Request,
    reservation: Reservation,
) -> bytes:
    """The whole body of ``request``, under the size cap, the pause and total timeouts.

    Args:
        conn: the connection's h11 state (events already buffered are read first).
        receive_event: reads the socket until h11 has the next event (the connection's).
        config: ``config.server``.
        request: its head; the body is not set here.
        reservation: the request's memory reservation, grown as the body arrives.

    Raises:
        PayloadTooLarge: over ``max_body_bytes`` (declared or counted).
        RequestTimeout: a pause or the whole body took too long.
        ClientGone: the client left mid-body.
    """
    limit = config.max_body_bytes
    length = request.header(b"content-length")
    if length is not None and int(length) > limit:
        raise PayloadTooLarge(
            f"The request body is {int(length)} bytes; this gateway accepts at most {limit}."
        )
    if length is not None:
        reservation.grow_to(int(length), body_read=False)
    chunks: list[bytes] = []
    total = 0
    deadline = trio.current_time() + config.body_total_timeout_s
    while True:
        # The timeout scope costs microseconds; enter it only when we must wait.
        event = conn.next_event()
        if event is h11.NEED_DATA:
            pause_end = trio.current_time() + config.body_timeout_s
            try:
                with trio.fail_at(min(pause_end, deadline)):
                    event = await receive_event()
            except trio.TooSlowError:
                if pause_end < deadline:
                    message = f"The request body paused for more than {config.body_timeout_s:g} s."
                else:
                    message = (
                        f"The request body took more than {config.body_total_timeout_s:g} s "
                        "to arrive."
                    )
                raise RequestTimeout(message) from None
        if type(event) is h11.Data:
            total += len(event.data)
            if total > limit:
                raise PayloadTooLarge(
                    f"The request body is over {limit} bytes, the most this gateway accepts."
                )
            reservation.grow_to(total, body_read=False)
            chunks.append(event.data)
        elif type(event) is h11.EndOfMessage:
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        else:  # ConnectionClosed: the client left mid-body
            raise ClientGone
