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
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from gateway.failures import MAX_KEY_REST_S
from gateway.transformers.model import DEFAULT_COOLDOWN_S, Transformer

__all__ = ["KeyPool"]


@attrs.define
class _KeyState:
    until: float = 0.0
    strikes: int = 0
    why: Any = None  # what the provider said when the key was rested


class KeyPool:
    """Which key a provider's next request uses.

    Args:
        clock: returns the current time in seconds (``trio.current_time`` in the app).
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._state: dict[tuple[str, str], _KeyState] = {}
        self._turn: dict[str, int] = {}

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

    def resting_reason(self, t: Transformer) -> Any:
        """Why the key of ``t`` that is back soonest was rested (as given to :meth:`cool`)."""
        states = [self._state[(t.name, k)] for k in t.keys if (t.name, k) in self._state]
        return min(states, key=lambda s: s.until).why if states else None

    def cool(
        self, t: Transformer, key: str, at_least_s: float | None = None, why: Any = None
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
            if asked is not None:
                state.until = max(state.until, now + asked)
            return state.until - now
        steps = t.cooldown_s or DEFAULT_COOLDOWN_S
        rest = asked if asked is not None else steps[min(state.strikes, len(steps) - 1)]
        state.strikes += 1
        state.why = why
        state.until = now + rest
        return rest

    def succeeded(self, t: Transformer, key: str) -> None:
        """``key`` worked: forget its failures."""
        if self._state:
            self._state.pop((t.name, key), None)
