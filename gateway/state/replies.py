"""Reading RedisState's replies: what the scripts and commands answer, checked.

A reply that is not what was asked for (another program writing our keys, a script of
another version) reads as None: the state then counts Redis as unusable for that call
(admissions and totals fall back, or raise StateUnavailable) or skips the entry (a key
rest), rather than guessing; never a 500.
"""

from __future__ import annotations

from typing import get_args
from urllib.parse import unquote

from gateway.redis import Reply
from gateway.state.protocol import KeyRest, LimitName, Totals

__all__ = ["LEDGER", "read_admission", "read_rest", "read_totals"]

#: The ledger's fields in a window's hash, in the order of :class:`Totals`.
LEDGER = ("requests", "tokens_in", "tokens_out", "cached", "reasoning")
_LIMITS: dict[bytes, LimitName] = {name.encode(): name for name in get_args(LimitName)}


def _number(value: Reply) -> float | None:
    if isinstance(value, bytes | int):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def read_admission(reply: Reply) -> tuple[LimitName | None, int, float, float] | None:
    """The admission script's answer: the refusing limit (None: admitted), the wait in ms
    (-1: never), the rpm and tpm levels; None when the reply is not such an answer."""
    if not isinstance(reply, list) or len(reply) != 5:
        return None
    status, name, wait_ms, rpm_level, tpm_level = reply
    rpm, tpm = _number(rpm_level), _number(tpm_level)
    if status not in (0, 1) or not isinstance(wait_ms, int) or rpm is None or tpm is None:
        return None
    limit = _LIMITS.get(name) if isinstance(name, bytes) else None
    if status == 0 and limit is None:
        return None
    return (None if status == 1 else limit), wait_ms, rpm, tpm


def read_totals(replies: list[Reply]) -> list[Totals] | None:
    out = []
    for reply in replies:
        if not isinstance(reply, list) or len(reply) != len(LEDGER):
            return None
        values = [_number(v) if v is not None else 0.0 for v in reply]
        if any(v is None for v in values):
            return None
        out.append(Totals(*(int(v or 0) for v in values)))
    return out


def read_rest(field: Reply, value: Reply) -> KeyRest | None:
    if not isinstance(field, bytes) or not isinstance(value, bytes):
        return None
    provider, _, key_id = field.decode("utf-8", "replace").partition("/")
    until, _, strikes = value.decode("ascii", "replace").partition(" ")
    try:
        return KeyRest(unquote(provider), unquote(key_id), float(until), int(strikes))
    except ValueError:
        return None
