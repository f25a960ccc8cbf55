"""Unit tests of gateway.keys.KeyPool with a fake clock: rotation, cool-downs, typed choices.

The issue-8 regression tests of the same rules, through a gateway too, are in
tests/hardening/test_13_key_cooldowns.py.
"""

from __future__ import annotations

import pytest

from gateway.errors import RateLimited
from gateway.failures import MAX_KEY_REST_S, Failure
from gateway.keys import NO_KEY, AllResting, KeyPool, UseKey
from gateway.transformers.model import DEFAULT_COOLDOWN_S, Transformer


class Clock:
    """Seconds that move only when a test moves them."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _t(
    keys: tuple[str, ...] = ("k1",),
    cooldown_s: tuple[float, ...] = DEFAULT_COOLDOWN_S,
    name: str = "p",
) -> Transformer:
    return Transformer(name=name, format="openai", keys=keys, cooldown_s=cooldown_s)


def _failure(kind: str = "status_429") -> Failure:
    return Failure(RateLimited("slow down"), retry=True, fallback=True, cool_key=True, kind=kind)


@pytest.fixture
def clock() -> Clock:
    return Clock()


# -- choices -----------------------------------------------------------------------------------


def test_a_provider_without_keys_needs_none(clock: Clock) -> None:
    assert KeyPool(clock).choose(_t(keys=())) is NO_KEY


def test_keys_rotate_per_provider(clock: Clock) -> None:
    pool = KeyPool(clock)
    a, b = _t(keys=("a1", "a2", "a3"), name="a"), _t(keys=("b1", "b2"), name="b")
    picks = [pool.choose(a), pool.choose(b), pool.choose(a), pool.choose(a), pool.choose(a)]
    assert picks == [UseKey("a1"), UseKey("b1"), UseKey("a2"), UseKey("a3"), UseKey("a1")]


def test_rotation_skips_resting_keys(clock: Clock) -> None:
    pool, t = KeyPool(clock), _t(keys=("k1", "k2", "k3"))
    pool.cool(t, "k2")
    assert [pool.choose(t) for _ in range(4)] == [
        UseKey("k1"),
        UseKey("k3"),
        UseKey("k1"),
        UseKey("k3"),
    ]
    clock.now += 10
    assert {pool.pick(t) for _ in range(3)} == {"k1", "k2", "k3"}  # back in turn


def test_all_resting_says_how_long_and_why(clock: Clock) -> None:
    pool, t = KeyPool(clock), _t(keys=("k1", "k2"))
    first, second = _failure("status_401"), _failure("status_429")
    pool.cool(t, "k1", 50.0, why=first)
    pool.cool(t, "k2", 5.0, why=second)
    clock.now += 1
    assert pool.choose(t) == AllResting(wait_s=pytest.approx(4.0), why=second)
    clock.now += 4
    assert pool.choose(t) == UseKey("k2")


def test_the_chosen_key_is_not_in_its_repr() -> None:
    assert "sk-secret" not in repr(UseKey("sk-secret"))


# -- cool-downs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("steps", "rests"),
    [
        (DEFAULT_COOLDOWN_S, [10.0, 30.0, 120.0, 120.0, 120.0]),
        ((1.0, 2.5), [1.0, 2.5, 2.5, 2.5, 2.5]),
        ((60.0,), [60.0, 60.0, 60.0, 60.0, 60.0]),
    ],
)
def test_strikes_follow_the_steps_the_last_one_repeating(
    clock: Clock, steps: tuple[float, ...], rests: list[float]
) -> None:
    pool, t = KeyPool(clock), _t(cooldown_s=steps)
    got = []
    for _ in range(len(rests)):
        got.append(pool.cool(t, "k1"))
        clock.now += got[-1]  # the rest is over
    assert got == rests


@pytest.mark.parametrize("failures", [2, 10])
def test_failures_within_one_rest_are_one_strike(clock: Clock, failures: int) -> None:
    pool, t = KeyPool(clock), _t()
    assert pool.cool(t, "k1") == 10.0
    for _ in range(failures - 1):
        clock.now += 0.5
        pool.cool(t, "k1")  # the same event: no new strike, no longer rest
    assert pool.wait_s(t) == pytest.approx(10.0 - 0.5 * (failures - 1))
    clock.now += 10.0
    assert pool.cool(t, "k1") == 30.0  # the next rest's failure is the second strike


@pytest.mark.parametrize(
    ("retry_after", "rest"),
    [
        (2.0, 2.0),  # shorter than the step
        (45.0, 45.0),  # longer than the step
        (MAX_KEY_REST_S + 1, MAX_KEY_REST_S),  # capped
        (10.0**9, MAX_KEY_REST_S),
        (0.0, 10.0),  # "Retry-After: 0" says nothing useful: the step
        (-3.0, 10.0),
        (None, 10.0),
    ],
)
def test_retry_after_sets_the_rest(clock: Clock, retry_after: float | None, rest: float) -> None:
    pool, t = KeyPool(clock), _t()
    assert pool.cool(t, "k1", retry_after) == rest
    assert pool.wait_s(t) == pytest.approx(rest)


def test_a_retry_after_while_resting_lengthens_never_shortens(clock: Clock) -> None:
    pool, t = KeyPool(clock), _t()
    pool.cool(t, "k1", 5.0)
    pool.cool(t, "k1", 20.0)
    assert pool.wait_s(t) == pytest.approx(20.0)
    pool.cool(t, "k1", 1.0)
    assert pool.wait_s(t) == pytest.approx(20.0)
    pool.cool(t, "k1", 10.0**6)
    assert pool.wait_s(t) == pytest.approx(MAX_KEY_REST_S)


def test_a_success_forgets_the_strikes(clock: Clock) -> None:
    pool, t = KeyPool(clock), _t()
    pool.cool(t, "k1")
    clock.now += 10
    pool.cool(t, "k1")
    clock.now += 30
    pool.succeeded(t, "k1")
    assert pool.cool(t, "k1") == 10.0


def test_keys_of_one_name_rest_apart_per_provider(clock: Clock) -> None:
    pool = KeyPool(clock)
    a, b = _t(name="a", keys=("same",)), _t(name="b", keys=("same",))
    pool.cool(a, "same")
    assert isinstance(pool.choose(a), AllResting)
    assert pool.choose(b) == UseKey("same")


def test_a_rest_published_by_one_pool_rests_the_key_in_another():
    """Workers sharing a state: what one learnt about a key, the other applies."""
    t = _t(keys=("k1", "k2"))
    here, there = Clock(), Clock()
    there.now = 50.0  # another process: another monotonic clock
    wall = Clock()
    a = KeyPool(here, wall=wall)
    b = KeyPool(there, wall=wall)
    a.cool(t, "k1", 20.0, why=_failure())
    (rest,) = a.outbox
    assert rest.provider == "p"
    assert "k1" not in rest.key_id  # a fingerprint, never the key
    assert rest.until == pytest.approx(wall.now + 20.0)
    b.apply_rests([rest], [t])
    assert [b.choose(t) for _ in range(3)] == [UseKey("k2")] * 3
    there.now += 21
    assert b.pick(t) in ("k1", "k2")
    assert {b.pick(t), b.pick(t)} == {"k1", "k2"}


def test_a_shared_rest_never_shortens_a_local_one_and_unknown_keys_are_ignored():
    t = _t(keys=("k1",))
    clock, wall = Clock(), Clock()
    pool = KeyPool(clock, wall=wall)
    pool.cool(t, "k1", 100.0)
    other = KeyPool(Clock(), wall=wall)
    other.cool(t, "k1", 5.0)
    pool.apply_rests(list(other.outbox), [t])
    assert pool.wait_s(t) == pytest.approx(100.0)
    stranger = _t(keys=("k9",))
    other.cool(stranger, "k9", 50.0)
    pool.apply_rests(list(other.outbox), [t])  # k9 is not one of t's keys: nothing happens
    assert pool.wait_s(t) == pytest.approx(100.0)


def test_the_outbox_is_bounded():
    from gateway.keys import MAX_OUTBOX

    pool = KeyPool(Clock())
    t = _t(keys=("k1",), cooldown_s=(1.0,))
    clock = pool._clock
    for _ in range(MAX_OUTBOX + 10):
        clock.now += 2
        pool.cool(t, "k1")
    assert len(pool.outbox) == MAX_OUTBOX
