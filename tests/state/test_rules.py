"""The shared rules: UTC windows, Retry-After seconds, which refusal wins, fingerprints."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from gateway.state import fingerprint
from gateway.state.rules import WindowClock, whole_seconds, windows_at, worst_refusal


def at(*args) -> float:
    return datetime(*args, tzinfo=timezone.utc).timestamp()


@pytest.mark.parametrize(
    ("moment", "day", "month", "day_left", "month_left"),
    [
        (at(2026, 12, 7, 12), "2026-12-07", "2026-12", 43200, 24 * 86400 + 43200),
        (at(2026, 12, 31, 23, 59, 59), "2026-12-31", "2026-12", 1, 1),
        (at(2027, 1, 1), "2027-01-01", "2027-01", 86400, 31 * 86400),
        (at(2028, 2, 28, 6), "2028-02-28", "2028-02", 18 * 3600, 18 * 3600 + 86400),
    ],
)
def test_utc_windows(moment, day, month, day_left, month_left):
    w = windows_at(moment)
    assert (w.day, w.month) == (day, month)
    assert w.day_left_s == pytest.approx(day_left)
    assert w.month_left_s == pytest.approx(month_left)


def test_the_window_clock_follows_its_wall():
    now = [at(2026, 12, 7, 23, 59, 59, 500000)]
    clock = WindowClock(lambda: now[0])
    assert clock.now()[1].day == "2026-12-07"
    now[0] += 0.6
    assert clock.now()[1].day == "2026-12-08"


@pytest.mark.parametrize(
    ("wait", "seconds"), [(None, None), (0.001, 1), (1.0, 1), (1.0001, 2), (59.5, 60)]
)
def test_whole_seconds(wait, seconds):
    assert whole_seconds(wait) == seconds


def test_worst_refusal():
    assert worst_refusal([("rpm", 0.0), ("tpm", 0.0)]) is None
    assert worst_refusal([("rpm", 3.0), ("tpm", 9.0), ("concurrency", 1.0)]) == ("tpm", 9.0)
    assert worst_refusal([("rpm", 3.0), ("tokens_per_day", None), ("tpm", None)]) == (
        "tokens_per_day",
        None,
    )


def test_fingerprint():
    one = fingerprint("sk-live-123")
    assert one == fingerprint("sk-live-123")
    assert one != fingerprint("sk-live-124")
    assert len(one) == 16
    assert int(one, 16) >= 0
