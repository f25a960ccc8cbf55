"""Provider key rotation and cool-downs.

Each provider's keys are used in turn. A key the provider refused (401, 403)
or rate-limited (429) cools down and is skipped until then. The rest is:

- the provider's Retry-After when it gave one above 0 (capped at
  :data:`gateway.failures.MAX_KEY_REST_S`): it knows best when the key works again;
- otherwise the transformer's ``cooldown_s`` step for this strike (default
  10 s, 30 s, 120 s; the last step repeats).

A strike is counted at most once per rest: requests in flight on the key when
it was rested fail too, and each of those is the same event, not a new one
(ten concurrent 429s with ``Retry-After: 1`` rest the key about 1 s, not
120 s). Such a failure may lengthen the rest to its own Retry-After, never
shorten it. A success clears the record. State lives in a :class:`KeyPool`
owned by the proxy (never a global), keyed by provider name and key; keys are
only ever compared, never logged.

Each try asks :meth:`KeyPool.choose` and gets a typed answer: :class:`UseKey`
(send this key), :data:`NO_KEY` (the provider takes none) or
:class:`AllResting` (every key rests; how long until the first is back, and
why it was rested). A client's own credential, forwarded with
``forward_client_key``, is a ``UseKey`` with ``pooled=False``: it is sent, but
never rested or remembered here.

Workers and replicas that share a state (``[state] redis_url``) share their
rests too: each rest is put in :attr:`KeyPool.outbox` as a
:class:`~gateway.state.protocol.KeyRest` (the key as a :func:`fingerprint`,
the time as wall-clock), which :mod:`gateway.proxy.rest_sync` publishes; the
rests others published come back through :meth:`KeyPool.apply_rests`. A rest
learnt this way only ever lengthens a key's rest here.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Iterable

import attrs

from gateway.failures import MAX_KEY_REST_S, Failure
from gateway.state.protocol import KeyRest, fingerprint
from gateway.transformers.model import DEFAULT_COOLDOWN_S, Transformer

__all__ = ["NO_KEY", "AllResting", "KeyChoice", "KeyPool", "NoKey", "UseKey", "fingerprint"]

#: Rests waiting to be published; past this, the oldest are dropped (they are hints).
MAX_OUTBOX = 1000


@attrs.frozen
class UseKey:
    """Send ``key``. ``pooled``: one of the provider's keys, so a refusal rests it."""

    key: str = attrs.field(repr=False)
    pooled: bool = True


@attrs.frozen
class NoKey:
    """Send no key: the provider needs none (or a forwarding client sent none)."""


#: The one :class:`NoKey`.
NO_KEY = NoKey()


@attrs.frozen
class AllResting:
    """Every key of the provider rests.

    Attributes:
        wait_s: seconds until the first key is usable again.
        why: what the provider said when that key was rested (None if unknown).
    """

    wait_s: float
    why: Failure | None


#: What a try sends, as :meth:`KeyPool.choose` answers.
KeyChoice = UseKey | NoKey | AllResting


@attrs.define
class _KeyState:
    until: float = 0.0
    strikes: int = 0
    why: Failure | None = None  # what the provider said when the key was rested


class KeyPool:
    """Which key a provider's next request uses.

    Args:
        clock: returns the current time in seconds (``trio.current_time`` in the app).
        wall: returns wall-clock seconds (what rests shared with other processes use).
    """

    def __init__(self, clock: Callable[[], float], wall: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._wall = wall
        self._state: dict[tuple[str, str], _KeyState] = {}
        self._turn: dict[str, int] = {}
        #: Rests to publish to the shared state (gateway.proxy.rest_sync empties it).
        self.outbox: collections.deque[KeyRest] = collections.deque(maxlen=MAX_OUTBOX)

    def choose(self, t: Transformer) -> KeyChoice:
        """The key for ``t``'s next try: one of its keys, none needed, or all resting."""
        if not t.keys:
            return NO_KEY
        key = self.pick(t)
        if key is None:
            return AllResting(self.wait_s(t), self.resting_reason(t))
        return UseKey(key)

    def pick(self, t: Transformer) -> str | None:
        """The next usable key of ``t``, or None when every key is cooling down."""
        keys = t.keys
        if len(keys) == 1 and not self._state:
            return keys[0]
        now = self._clock()
        start = self._turn.get(t.name, 0)
        for i in range(len(keys)):
            key = keys[(start + i) % len(keys)]
            state = self._state.get((t.name, key))
            if state is None or state.until <= now:
                self._turn[t.name] = (start + i + 1) % len(keys)
                return key
        return None

    def wait_s(self, t: Transformer) -> float:
        """Seconds until ``t``'s first key is usable again (0 if one is now)."""
        now = self._clock()
        waits = [
            max(0.0, self._state[(t.name, k)].until - now) if (t.name, k) in self._state else 0.0
            for k in t.keys
        ]
        return min(waits, default=0.0)

    def resting_reason(self, t: Transformer) -> Failure | None:
        """Why the key of ``t`` that is back soonest was rested (as given to :meth:`cool`)."""
        states = [self._state[(t.name, k)] for k in t.keys if (t.name, k) in self._state]
        return min(states, key=lambda s: s.until).why if states else None

    def cool(
        self,
        t: Transformer,
        key: str,
        at_least_s: float | None = None,
        why: Failure | None = None,
    ) -> float:
        """Rest ``key`` of ``t``; returns how long from now.

        ``at_least_s`` is the provider's Retry-After (None when it gave none).
        ``why`` is kept for :meth:`resting_reason`.
        """
        now = self._clock()
        state = self._state.setdefault((t.name, key), _KeyState())
        # "Retry-After: 0" on a refusal says nothing useful: the step applies.
        asked = min(at_least_s, MAX_KEY_REST_S) if at_least_s and at_least_s > 0 else None
        if state.until > now:  # already resting: the same event, not another strike
            if asked is not None and now + asked > state.until:
                state.until = now + asked
                self._publish(t, key, state, now)
            return state.until - now
        steps = t.cooldown_s or DEFAULT_COOLDOWN_S
        rest = asked if asked is not None else steps[min(state.strikes, len(steps) - 1)]
        state.strikes += 1
        state.why = why
        state.until = now + rest
        self._publish(t, key, state, now)
        return rest

    def _publish(self, t: Transformer, key: str, state: _KeyState, now: float) -> None:
        until = self._wall() + (state.until - now)
        self.outbox.append(KeyRest(t.name, fingerprint(key), until, state.strikes))

    def apply_rests(self, rests: Iterable[KeyRest], transformers: Iterable[Transformer]) -> None:
        """Rests other processes published: each lengthens the matching key's rest here."""
        rests = list(rests)
        if not rests:
            return
        by_id = {(t.name, fingerprint(k)): (t, k) for t in transformers for k in t.keys}
        now, wall = self._clock(), self._wall()
        for rest in rests:
            found = by_id.get((rest.provider, rest.key_id))
            if found is None or rest.until <= wall:
                continue
            t, key = found
            until = now + (rest.until - wall)
            state = self._state.setdefault((t.name, key), _KeyState())
            if until > state.until:
                state.until = until
                state.strikes = max(state.strikes, rest.strikes)

    def succeeded(self, t: Transformer, key: str) -> None:
        """``key`` worked: forget its failures."""
        if self._state:
            self._state.pop((t.name, key), None)
