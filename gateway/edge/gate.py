"""The edge's checks on one request, in the order they happen.

1. :meth:`Edge.authenticate`: with client keys configured, the request must
   carry one (401 otherwise, in the caller's format). Open gateway: no key.
2. :meth:`Edge.permit`: the key's ``models`` patterns must match the model the
   client named (403).
3. :meth:`Edge.admit`: every limit of the key at once, in the state (local or
   Redis): ``rpm``, ``tpm`` (the request's estimate reserved), ``concurrency``,
   the day and month token budgets. Over one: 429 with a whole-second
   ``Retry-After`` and nothing charged; the request never reaches a provider.
   Shared state unreachable with ``fail_open = false``: 503.
4. :meth:`Edge.settle`, when the request is over however it ended: the
   lease is released and the reservation replaced by what the provider
   reported (the usage the proxy put in the request's record).

Admitted and refused requests alike carry ``x-ratelimit-*`` headers for the
limits the key has (the names OpenAI uses), so a client can pace itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
import trio

from gateway.edge.clientkeys import ClientKey, ClientKeys, presented_credentials
from gateway.edge.estimate import estimate_request_tokens
from gateway.errors import Forbidden, RateLimited, Unauthorized, echo
from gateway.state.local import LocalState
from gateway.state.protocol import Admitted, Ask, Refused, StateUnavailable, Used

if TYPE_CHECKING:
    from gateway.call import Call
    from gateway.record import CallRecord
    from gateway.server.exchange import Exchange, Request
    from gateway.state.protocol import State, Ticket

__all__ = ["Edge"]

LOG = logging.getLogger("gateway.edge")

#: Bodies larger than this have their tokens estimated in a worker thread (as they are
#: parsed in one: app.THREAD_DECODE_BYTES).
OFF_LOOP_BYTES = 256 * 1024

#: Settles of a shared state queued for the settler tasks; past it (a saturated event loop,
#: where the settlers fall behind), a request settles itself: the lag stays short.
MAX_QUEUED_SETTLES = 256
#: Settler tasks (each one Redis round trip at a time).
SETTLERS = 4

#: How long settling a request may take before it is given up (the lease then expires).
SETTLE_TIMEOUT_S = 2.0

_WHAT = {
    "rpm": "requests per minute (rpm)",
    "tpm": "tokens per minute (tpm)",
    "concurrency": "requests at once (concurrency)",
    "tokens_per_day": "tokens per day (tokens_per_day)",
    "tokens_per_month": "tokens per month (tokens_per_month)",
}

_NO_KEY = (
    "This gateway needs a key: send it as 'Authorization: Bearer <key>', 'x-api-key', "
    "'x-goog-api-key' or '?key=', as your SDK does with its api_key setting."
)
_WRONG_KEY = "The key sent is not one of this gateway's keys; check the api_key your client uses."


#: A settle waiting for a settler: the ticket, what was used, and the event set once a
#: ticket's lease is given back (None: it holds none).
_Queued = tuple["Ticket", Used | None, trio.Event | None]


class Edge:
    """Client keys, allow-lists and limits, over one :class:`~gateway.state.protocol.State`.

    Args:
        keys: the configured client keys (none: an open gateway).
        state: where limits are counted.
        on_refusal: called with ``(key name, limit)`` for each request a limit refuses.
    """

    def __init__(
        self,
        keys: ClientKeys,
        state: State,
        *,
        on_refusal: Callable[[str, str], None] | None = None,
    ) -> None:
        self.keys = keys
        self.state = state
        #: A local state answers at once: called without awaiting (no cancel scopes).
        self._local = state if isinstance(state, LocalState) else None
        #: Settles of a shared state waiting for :meth:`run_settler` (when it runs).
        self._queue_in, self._queue_out = trio.open_memory_channel[_Queued](MAX_QUEUED_SETTLES)
        self._settlers = 0
        #: Per key: an event for each queued settle that gives back a concurrency lease,
        #: set when it is done (a refusal for concurrency waits for the oldest).
        self._releasing: dict[str, list[trio.Event]] = {}
        self._on_refusal = on_refusal

    def authenticate(self, request: Request) -> ClientKey | None:
        """The caller's key; None when the gateway is open. Raises Unauthorized (401)."""
        if self.keys.open:
            return None
        credentials = presented_credentials(request)
        key = self.keys.identify(credentials)
        if key is None:
            raise Unauthorized(_WRONG_KEY if credentials else _NO_KEY)
        return key

    def permit(self, key: ClientKey | None, model: str) -> None:
        """Raises Forbidden (403) when ``key`` may not use ``model``."""
        if key is not None and not key.allows(model):
            raise Forbidden(
                f"The key {key.name!r} may not use the model {echo(model)}; "
                f"it may use models matching {', '.join(key.models)}."
            )

    async def admit(self, ex: Exchange, key: ClientKey | None, call: Call) -> Ticket | None:
        """Charge every limit of ``key`` for ``call``; the ticket to settle, or None (no limits).

        Raises:
            RateLimited: a limit refused (429, ``Retry-After`` set when it will pass).
            StateUnavailable: shared state unreachable and fail_open is false (503).
        """
        if key is None:
            return None
        limits = key.limits
        tokens = 0
        if call.op != "count_tokens" and (
            limits.tpm or limits.tokens_per_day or limits.tokens_per_month
        ):
            if call.size > OFF_LOOP_BYTES:  # linear, but a big body would stall the loop
                tokens = await trio.to_thread.run_sync(estimate_request_tokens, call.body)
            else:
                tokens = estimate_request_tokens(call.body)
        return await self.admit_tokens(ex, key, tokens)

    async def admit_tokens(self, ex: Exchange, key: ClientKey, tokens: int) -> Ticket | None:
        """:meth:`admit` with the tokens to reserve given (a Realtime session reserves none)."""
        limits = key.limits
        if not any((limits.rpm, limits.tpm, limits.concurrency)) and not (
            limits.tokens_per_day or limits.tokens_per_month
        ):
            return None
        ask = Ask(key.name, limits, tokens)
        local = self._local
        verdict = local.admit_nowait(ask) if local is not None else await self.state.admit(ask)
        if isinstance(verdict, Refused) and verdict.limit == "concurrency":
            releasing = self._releasing.get(key.name)
            if releasing:  # the slot may be one a finished request is giving back
                with trio.move_on_after(SETTLE_TIMEOUT_S):
                    await releasing[0].wait()
                verdict = await self.state.admit(ask)
        ex.extra_headers.extend(_rate_headers(key, verdict))
        if isinstance(verdict, Refused):
            if self._on_refusal is not None:
                self._on_refusal(key.name, verdict.limit)
            raise _refusal(key, verdict, tokens)
        return verdict.ticket

    async def settle(self, ticket: Ticket | None, record: CallRecord) -> None:
        """The request is over: give back its lease and settle its tokens (shielded, bounded)."""
        if ticket is None:
            return
        used = None
        if record.tokens_in is not None or record.tokens_out is not None:
            used = Used(
                tokens_in=record.tokens_in or 0,
                tokens_out=record.tokens_out or 0,
                cached=record.tokens_cached or 0,
                reasoning=record.tokens_reasoning or 0,
            )
        if self._local is not None:
            self._local.settle_nowait(ticket, used)
            return
        # Settled off the request's path: the next request on this connection does not wait
        # a round trip for it. A lease being given back is noted, so that a refusal for
        # concurrency meanwhile waits for it and asks again (admit_tokens).
        if self._settlers:
            done = trio.Event() if ticket.lease is not None else None
            try:
                self._queue_in.send_nowait((ticket, used, done))
            except trio.WouldBlock:
                pass  # a backlog: settle here, which slows this client down a little
            else:
                if done is not None:
                    self._releasing.setdefault(ticket.key, []).append(done)
                return
        await self._settle_now(ticket, used)

    def _released(self, ticket: Ticket, done: trio.Event | None) -> None:
        """A queued settle is done: if it gave back a lease, say so."""
        if done is None:
            return
        done.set()
        waiting = self._releasing.get(ticket.key)
        if waiting is not None:
            waiting.remove(done)
            if not waiting:
                del self._releasing[ticket.key]

    async def _settle_now(self, ticket: Ticket, used: Used | None) -> None:
        with trio.CancelScope(shield=True), trio.move_on_after(SETTLE_TIMEOUT_S):
            try:
                await self.state.settle(ticket, used)
            except StateUnavailable:
                pass  # fail-closed state down: its lease expires on its own

    async def run_settler(
        self,
        tasks: int = SETTLERS,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Settle queued tickets (``tasks`` at a time) until cancelled; then what is left,
        for at most :data:`SETTLE_TIMEOUT_S`. For a shared state only: a local one settles
        at once."""

        async def settler() -> None:
            async for ticket, used, done in self._queue_out:
                try:
                    await self._settle_now(ticket, used)
                finally:
                    self._released(ticket, done)

        self._settlers += 1
        try:
            async with trio.open_nursery() as nursery:
                for _ in range(tasks):
                    nursery.start_soon(settler)
                task_status.started()
        finally:
            self._settlers -= 1
            with trio.CancelScope(shield=True), trio.move_on_after(SETTLE_TIMEOUT_S):
                while True:
                    try:
                        ticket, used, done = self._queue_out.receive_nowait()
                    except trio.WouldBlock:
                        break
                    try:
                        await self.state.settle(ticket, used)
                    except StateUnavailable:
                        break
                    finally:
                        self._released(ticket, done)

    async def usage_report(self, request: Request) -> dict[str, Any]:
        """``GET /v1/usage``: every key's totals in the current day and month (admin keys only).

        Raises Unauthorized (no key) or Forbidden (not an admin key).
        """
        key = self.authenticate(request)
        if key is None or not key.admin:
            raise Forbidden("GET /v1/usage needs an admin key (auth.keys[].admin = true).")
        names = list(self.keys.names)
        totals = await self.state.totals(names)
        now = time.gmtime()
        return {
            "object": "usage",
            "day": time.strftime("%Y-%m-%d", now),
            "month": time.strftime("%Y-%m", now),
            "keys": [
                {
                    "name": name,
                    "limits": attrs.asdict(self.keys.by_name[name].limits),
                    **{
                        window: attrs.asdict(count)
                        for window, count in totals.get(name, {}).items()
                    },
                }
                for name in names
            ],
        }


def _refusal(key: ClientKey, refused: Refused, tokens: int) -> RateLimited:
    limit = refused.limit
    value = getattr(key.limits, limit)
    what = f"{value} {_WHAT[limit]}"
    if refused.retry_after_s is None:
        return RateLimited(
            f"This request (about {tokens} tokens) is larger than the key {key.name!r} may "
            f"ever use at once: {what}. Send a smaller request.",
            code="request_too_large",
        )
    return RateLimited(
        f"The key {key.name!r} is over its limit of {what}; retry in {refused.retry_after_s} s.",
        code="rate_limit_exceeded",
        retry_after_s=refused.retry_after_s,
    )


def _rate_headers(key: ClientKey, verdict: Admitted | Refused) -> list[tuple[bytes, bytes]]:
    headers = []
    if key.limits.rpm is not None:
        headers.append((b"x-ratelimit-limit-requests", b"%d" % key.limits.rpm))
        if verdict.remaining_requests is not None:
            remaining = max(0, verdict.remaining_requests)
            headers.append((b"x-ratelimit-remaining-requests", b"%d" % remaining))
    if key.limits.tpm is not None:
        headers.append((b"x-ratelimit-limit-tokens", b"%d" % key.limits.tpm))
        if verdict.remaining_tokens is not None:
            remaining = max(0, verdict.remaining_tokens)
            headers.append((b"x-ratelimit-remaining-tokens", b"%d" % remaining))
    return headers
