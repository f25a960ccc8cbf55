"""Limits, budgets, the usage ledger and provider-key rests: local, or shared through Redis.

``protocol`` (the State every implementation keeps), ``rules`` (windows, buckets, which
refusal wins), ``local`` (LocalState: this process), ``scripts``, ``replies`` and
``shared`` (RedisState: one Lua script per decision), ``make`` (the state the settings ask
for).
"""

from gateway.state.local import LocalState
from gateway.state.make import make_state
from gateway.state.protocol import (
    Admitted,
    Ask,
    KeyLimits,
    KeyRest,
    LimitName,
    Refused,
    State,
    StateUnavailable,
    Ticket,
    Totals,
    Used,
    fingerprint,
)
from gateway.state.shared import RedisState

__all__ = [
    "Admitted",
    "Ask",
    "KeyLimits",
    "KeyRest",
    "LimitName",
    "LocalState",
    "RedisState",
    "Refused",
    "State",
    "StateUnavailable",
    "Ticket",
    "Totals",
    "Used",
    "fingerprint",
    "make_state",
]
