"""The socket under a connection's stream: read size, peer address, pending errors.

A connection's stream is a trio ``SocketStream``, TLS over one, or (in tests)
a memory stream with no socket at all; these helpers find the socket when
there is one and say what they can without it.
"""

from __future__ import annotations

import socket as stdlib_socket
from typing import Any

__all__ = ["READ_SIZE", "peer_name", "reset_pending", "socket_of"]

#: Bytes asked of the socket per read.
READ_SIZE = 64 * 1024


def socket_of(stream: Any) -> Any:
    """The socket under ``stream`` (a trio socket, TLS over one, or None)."""
    return getattr(stream, "socket", None) or getattr(
        getattr(stream, "transport_stream", None), "socket", None
    )


def peer_name(stream: Any) -> str:
    """``host:port`` of the other end, or ``-`` when there is no socket or it is gone."""
    sock = socket_of(stream)
    if sock is None:
        return "-"
    try:
        addr = sock.getpeername()
    except OSError:
        return "-"
    return f"{addr[0]}:{addr[1]}" if isinstance(addr, tuple) else str(addr)


def reset_pending(sock: Any) -> bool:
    """True when ``sock`` holds a pending error (the peer reset it) or cannot be asked.

    After EOF, ``recv()`` reports EOF again even once a reset came; the reset
    shows as the socket's pending error (EPIPE or ECONNRESET).
    """
    try:
        return bool(sock.getsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_ERROR))
    except OSError:
        return True
