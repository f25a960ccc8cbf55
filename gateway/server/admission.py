"""Admission by memory: how much the requests in flight may hold at once.

Theory of operation: a request body costs far more once decoded than its
bytes (``jsonscan.estimate_memory``: 10-25x for object-heavy JSON), so four
big bodies at once could take gigabytes. Each request *reserves* its cost in
one counter shared by the server's connections: the declared (or so far
received) body length while the body is read, then the body's estimated
decoded size once it is whole, held until the handler returns (streams
included). A reservation that would take the total past
``server.max_inflight_bytes`` is refused with 503 and ``Retry-After``, unless
nothing else is in flight: a lone request is always admitted (its size is
bounded by ``max_body_bytes``), so no request is refused forever and memory
stays under ``max(max_inflight_bytes, one request)``. Requests without a
body (health probes, model lists) reserve nothing and are never refused.
Reservations are released in ``finally`` blocks, so cancellation and errors
release them too.
"""

from __future__ import annotations

from typing import ClassVar

from gateway.errors import ErrorKind, GatewayError

__all__ = ["Admission", "Overloaded", "OverloadedMidBody", "Reservation"]

#: What ``Retry-After`` tells a refused client: bodies in flight finish in seconds.
RETRY_AFTER_S = 1


class Overloaded(GatewayError):
    """503: the requests in flight already hold the memory this one would need."""

    kind = ErrorKind.OVERLOADED
    default_status = 503


class OverloadedMidBody(Overloaded):
    """503 before the body was read whole: the connection must close."""

    closes_connection: ClassVar[bool] = True


class Admission:
    """The in-flight total, shared by every connection of a server."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.total = 0

    def reservation(self) -> Reservation:
        return Reservation(self)


class Reservation:
    """One request's share of :class:`Admission`; grows, then is released once."""

    __slots__ = ("_admission", "held")

    def __init__(self, admission: Admission) -> None:
        self._admission = admission
        self.held = 0

    def grow_to(self, amount: int, *, body_read: bool) -> None:
        """Hold ``amount`` bytes in all (more than now), or raise :class:`Overloaded`."""
        extra = amount - self.held
        if extra <= 0:
            return
        adm = self._admission
        others = adm.total - self.held
        if others > 0 and adm.total + extra > adm.limit:
            cls = Overloaded if body_read else OverloadedMidBody
            raise cls(
                "The gateway is handling as much request data as it admits at once "
                f"(server.max_inflight_bytes = {adm.limit}); retry in {RETRY_AFTER_S} s.",
                retry_after_s=RETRY_AFTER_S,
            )
        adm.total += extra
        self.held = amount

    def release(self) -> None:
        self._admission.total -= self.held
        self.held = 0
