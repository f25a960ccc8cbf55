"""Provider key rotation and cool-downs.

Each provider's keys are used in turn. A key the provider refused (401, 403)
or rate-limited (429) cools down and is skipped until then; repeated failures
escalate the rest (10 s, 30 s, 120 s), and a success clears the record. The
provider's Retry-After, when longer, wins. State lives in a :class:`KeyPool`
owned by the proxy (never a global), keyed by provider name and key; keys are
only ever compared, never logged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from gateway.transformers.model import Transformer

__all__ = ["COOLDOWN_STEPS_S", "KeyPool"]

#: Cool-down after the 1st, 2nd, 3rd and later failures of one key in a row.
COOLDOWN_STEPS_S = (10.0, 30.0, 120.0)


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
        """Rest ``key`` of ``t``; returns how long. ``why`` is kept for :meth:`resting_reason`."""
        state = self._state.setdefault((t.name, key), _KeyState())
        state.why = why
        step = COOLDOWN_STEPS_S[min(state.strikes, len(COOLDOWN_STEPS_S) - 1)]
        rest = max(step, at_least_s or 0.0)
        state.strikes += 1
        state.until = self._clock() + rest
        return rest

    def succeeded(self, t: Transformer, key: str) -> None:
        """``key`` worked: forget its failures."""
        if self._state:
            self._state.pop((t.name, key), None)
