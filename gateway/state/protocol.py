"""The State protocol: where client-key limits, token budgets, the usage ledger,
provider concurrency and provider-key rests are kept.

Two implementations keep the same promises (one test suite runs against both):

- ``LocalState``: this process only (no ``[state] redis_url``).
- ``RedisState``: shared by every worker and replica through Redis, each
  decision one atomic Lua script (one round trip per admission). When Redis
  cannot be reached it serves from a LocalState (``fail_open = true``) or
  refuses (``StateUnavailable``: the app answers 503), logs once per outage,
  and says so in ``up``.

Semantics, for both:

- ``rpm`` and ``tpm`` are token buckets, not windows: a bucket of N holds N,
  refills at N per 60 s, and a full bucket admits a burst of N.
- ``tpm`` and the day/month budgets are charged the request's *estimate* at
  admission; :meth:`State.settle` replaces the estimate by what the provider
  reported (``Used``), so a bucket or budget may go below zero (the debt
  delays later requests). ``used=None`` (nothing reported: the client left,
  the provider failed) keeps the estimate charged for tokens in and charges
  nothing out.
- ``concurrency`` is held from admission until :meth:`State.settle`, as a
  lease that expires on its own if the process holding it dies.
- Budgets are per UTC calendar day and month.
- A refusal charges nothing.

Details both implementations share (``gateway/state/rules.py``):

- What is charged against ``tpm`` and the budgets is tokens in + out (cached and
  reasoning tokens are parts of those, as the providers count them). The ledger
  (``totals``) counts at settlement, into the windows current then; with ``used=None``
  it counts the estimate as tokens in, so a window's ledger and its budget agree.
- An estimate of 0 still needs one token of room: a key in debt waits.
- When several limits refuse, the one that frees last is named (one that never will
  first), so ``retry_after_s`` is when every limit would admit the request.
- ``settle``, ``release_provider`` and ``rest_key`` never raise: they report, and a
  report Redis cannot take is dropped (a lease then expires on its own).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Literal, Protocol

import attrs
import trio

from gateway.errors import ErrorKind, GatewayError

__all__ = [
    "Admitted",
    "Ask",
    "KeyLimits",
    "KeyRest",
    "LimitName",
    "Refused",
    "State",
    "StateUnavailable",
    "Ticket",
    "Totals",
    "Used",
    "fingerprint",
]

LimitName = Literal["rpm", "tpm", "concurrency", "tokens_per_day", "tokens_per_month"]


class StateUnavailable(GatewayError):
    """The shared state cannot be reached and ``fail_open`` is false: a 503 to the client.

    A GatewayError, so that wherever it is raised the client gets a 503 in its format.
    """

    kind = ErrorKind.OVERLOADED
    default_status = 503

    def __init__(self, message: str = "") -> None:
        super().__init__(
            message
            or "The gateway cannot reach its shared state (Redis) to check limits; retry shortly.",
            retry_after_s=1,
        )


@attrs.frozen
class KeyLimits:
    """One client key's limits; None is no limit."""

    rpm: int | None = None
    tpm: int | None = None
    concurrency: int | None = None
    tokens_per_day: int | None = None
    tokens_per_month: int | None = None


@attrs.frozen
class Ask:
    """A request asking to go ahead.

    Attributes:
        key: the client key's name (a configured name: a bounded set).
        limits: that key's limits.
        tokens: the estimate to reserve against ``tpm`` and the budgets (0: none).
    """

    key: str
    limits: KeyLimits
    tokens: int = 0


@attrs.frozen
class Ticket:
    """What an admitted request holds until it is settled.

    Attributes:
        key, limits: as asked.
        reserved: the tokens charged at admission.
        lease: the concurrency lease (None when the key has no concurrency limit).
        day, month: the budget windows charged (``2026-12-07``, ``2026-12``).
        shared: admitted in Redis by a ``RedisState`` (False: by a ``LocalState``,
            or by a ``RedisState``'s local fallback during an outage); it is settled
            where it was admitted.
    """

    key: str
    limits: KeyLimits
    reserved: int
    lease: str | None
    day: str
    month: str
    shared: bool = False


@attrs.frozen
class Admitted:
    """Go ahead. ``remaining_*``: what the rpm/tpm buckets hold now (None: no such limit)."""

    ticket: Ticket
    remaining_requests: int | None = None
    remaining_tokens: int | None = None


@attrs.frozen
class Refused:
    """A limit says no; nothing was charged.

    Attributes:
        limit: which limit refused.
        retry_after_s: whole seconds (>= 1) until it would admit this request;
            None when it never will (an estimate larger than the whole tpm or budget).
    """

    limit: LimitName
    retry_after_s: int | None
    remaining_requests: int | None = None
    remaining_tokens: int | None = None


@attrs.frozen
class Used:
    """Tokens a provider reported for one request."""

    tokens_in: int = 0
    tokens_out: int = 0
    cached: int = 0
    reasoning: int = 0


@attrs.frozen
class Totals:
    """One key's usage in one window (for ``GET /v1/usage``)."""

    requests: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cached: int = 0
    reasoning: int = 0


@attrs.frozen
class KeyRest:
    """A provider key resting: ``until`` is wall-clock (``time.time()``) seconds.

    ``key_id`` is a fingerprint of the key (never the key itself), as
    :func:`fingerprint` makes it.
    """

    provider: str
    key_id: str
    until: float
    strikes: int


def fingerprint(key: str) -> str:
    """A provider key's :attr:`KeyRest.key_id`: 16 hex digits of a SHA-256 of it.

    Enough to tell a provider's keys apart, shared between replicas (the same key gives the
    same id everywhere), and nothing a log or Redis could give the key back from.
    """
    digest = hashlib.sha256(b"gateway provider key\0" + key.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:16]


class State(Protocol):
    """Limits, budgets, ledger, provider concurrency and key rests."""

    @property
    def up(self) -> bool:
        """The shared store answers (always True for a local state)."""

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Its background work (lease renewal, watching Redis), for the app's nursery."""

    async def aclose(self) -> None:
        """Close its connections (after :meth:`run` ended)."""

    async def admit(self, ask: Ask) -> Admitted | Refused:
        """Check and charge every limit of ``ask.key`` at once (all or nothing).

        Raises:
            StateUnavailable: shared state unreachable and fail_open is false.
        """

    async def settle(self, ticket: Ticket, used: Used | None) -> None:
        """The request ended: release its lease, correct its charge, add it to the ledger."""

    async def totals(self, keys: Sequence[str]) -> dict[str, dict[str, Totals]]:
        """Per key, its ``{"day": Totals, "month": Totals}`` of the current windows."""

    async def acquire_provider(self, provider: str, limit: int) -> str | None:
        """A lease on one of ``provider``'s ``limit`` slots, or None when all are taken."""

    async def release_provider(self, provider: str, lease: str) -> None:
        """Give a provider slot back."""

    async def rest_key(self, rest: KeyRest) -> None:
        """Publish that a provider key rests (the longer rest wins)."""

    async def key_rests(self) -> list[KeyRest]:
        """Every provider key resting now."""
