"""gateway.coalesce.Rounds: callers share a run that started after they called."""

from __future__ import annotations

import pytest
import trio

from gateway.coalesce import Rounds


async def test_callers_share_runs_and_never_get_an_older_one(nursery: trio.Nursery) -> None:
    runs: list[int] = []
    release = trio.Event()

    async def work() -> bytes:
        runs.append(len(runs) + 1)
        n = len(runs)
        if n == 1:
            await release.wait()
        return b"run %d" % n

    rounds = Rounds(work, "test work")
    nursery.start_soon(rounds.run)
    got: dict[str, bytes | None] = {}

    async def get(name: str) -> None:
        got[name] = await rounds.get()

    async with trio.open_nursery() as callers:
        for name in ("a", "b", "c"):
            callers.start_soon(get, name)
        await trio.testing.wait_all_tasks_blocked()
        assert runs == [1]  # one run for the three
        for name in ("d", "e"):  # they came while run 1 was under way: they get run 2
            callers.start_soon(get, name)
        await trio.testing.wait_all_tasks_blocked()
        release.set()
    assert got == {"a": b"run 1", "b": b"run 1", "c": b"run 1", "d": b"run 2", "e": b"run 2"}
    assert runs == [1, 2]


async def test_a_failed_run_gives_none_and_the_next_one_runs(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    outcomes = iter([RuntimeError("boom"), b"fine"])

    async def work() -> bytes:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    rounds = Rounds(work, "test work")
    nursery.start_soon(rounds.run)
    assert await rounds.get() is None
    assert "test work failed" in caplog.text
    assert await rounds.get() == b"fine"


async def test_close_ends_a_round_that_never_starts() -> None:
    async def work() -> bytes:
        raise AssertionError("never run")

    rounds = Rounds(work, "test work")  # nobody runs it
    got: list[bytes | None] = [b"unset"]

    async def get() -> None:
        got[0] = await rounds.get()

    with trio.fail_after(2):
        async with trio.open_nursery() as callers:
            callers.start_soon(get)
            await trio.testing.wait_all_tasks_blocked()
            rounds.close()
    assert got == [None]
    assert await rounds.get() is None
