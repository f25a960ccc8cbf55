"""One rig per State implementation, so one suite holds LocalState and RedisState to the
same promises (tests/state/test_semantics.py).

Clocks: budget windows and key rests read an injected wall clock in both (so a test can
step to the next day); token buckets use LocalState's injected monotonic clock, but
Redis's own ``TIME`` in RedisState, so there ``advance`` really waits: those tests keep
their waits short (rpm 120 refills 2 per second).
"""

from __future__ import annotations

from datetime import datetime, timezone

import attrs
import pytest
import trio

from gateway.redis import RedisClient
from gateway.state import LocalState, RedisState

#: 2026-12-07 12:00:00 UTC: half a day left, 24.5 days left in the month.
NOON = datetime(2026, 12, 7, 12, tzinfo=timezone.utc).timestamp()


@attrs.define
class Clock:
    now: float

    def __call__(self) -> float:
        return self.now


@attrs.define
class Rig:
    kind: str
    state: LocalState | RedisState
    wall: Clock
    mono: Clock | None  # LocalState's bucket clock; None: Redis's TIME

    async def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass for buckets and wall clock alike."""
        self.wall.now += seconds
        if self.mono is not None:
            self.mono.now += seconds
        else:
            await trio.sleep(seconds)

    def step_wall(self, seconds: float) -> None:
        """Move only the wall clock (budget windows, key rests)."""
        self.wall.now += seconds


@pytest.fixture
async def make_redis_state():
    """``make_redis_state(url, wall=None, **options)``: a RedisState with short timeouts and
    backoff; every one is closed after the test (no socket left to the GC)."""
    made: list[RedisState] = []

    def make(url: str, wall: Clock | None = None, **options) -> RedisState:
        client = RedisClient(url, connect_timeout_s=2, command_timeout_s=2, backoff_s=(0.02, 0.1))
        if wall is not None:
            options["wall"] = wall
        made.append(RedisState(client, **options))
        return made[-1]

    yield make
    for state in made:
        await state.aclose()


@pytest.fixture(params=["local", "redis"])
async def rig(request, redis_factory, make_redis_state):
    wall = Clock(NOON)
    if request.param == "local":
        mono = Clock(1000.0)
        yield Rig("local", LocalState(clock=mono, wall=wall), wall, mono)
        return
    server = redis_factory()
    state = make_redis_state(server.url, wall)
    yield Rig("redis", state, wall, None)
    assert state.up, "Redis went down during a semantics test"
