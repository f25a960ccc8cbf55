"""gateway.metrics_group and gateway.prometheus.wire: one /metrics for a group of workers,
in one process: a GroupMetrics (the supervisor's side) and workers' SupervisorLinks on
socketpairs, plus hand-driven worker ends that get stuck, die or send garbage."""

from __future__ import annotations

import json
import logging
import socket

import attrs
import pytest
import trio

from gateway import metrics_group
from gateway.metrics import Metrics
from gateway.metrics_group import ASK_SNAPSHOT, SNAPSHOT, GroupMetrics, SupervisorLink
from gateway.prometheus import MetricsStatistics
from gateway.prometheus.wire import (
    HEAD,
    MAX_PAYLOAD_BYTES,
    FrameError,
    FrameReader,
    decode_statistics,
    encode_statistics,
    send_frame,
)
from tests.prometheus_text import sample, samples
from tests.proxy.fakes import eventually


def _worker_metrics(requests: int, provider: str = "p") -> Metrics:
    m = Metrics()
    for _ in range(requests):
        m.observe_request(provider=provider, model="m", status=200, duration_s=0.1, tokens_in=3)
    return m


def _requests(body: bytes | None) -> float:
    assert body is not None
    return sample(samples(body), "gateway_requests_total", provider="p", model="m", status="200")


@attrs.define
class Group:
    """A supervisor's GroupMetrics and the links of the workers started so far."""

    metrics: GroupMetrics
    nursery: trio.Nursery
    links: dict[int, SupervisorLink] = attrs.Factory(dict)

    def start_worker(self, worker_id: int, metrics: Metrics) -> SupervisorLink:
        ours, theirs = socket.socketpair()
        link = SupervisorLink(theirs, metrics.statistics)
        self.nursery.start_soon(self.metrics.serve_worker, worker_id, ours)
        self.nursery.start_soon(link.run)
        self.links[worker_id] = link
        return link

    def raw_worker(self, worker_id: int) -> trio.SocketStream:
        """A worker end the test drives by hand (it answers only what the test sends)."""
        ours, theirs = socket.socketpair()
        self.nursery.start_soon(self.metrics.serve_worker, worker_id, ours)
        return trio.SocketStream(trio.socket.from_stdlib_socket(theirs))


@pytest.fixture
async def group(nursery: trio.Nursery) -> Group:
    g = Group(GroupMetrics(2), nursery)
    nursery.start_soon(g.metrics.run)
    return g


async def test_a_scrape_at_any_worker_covers_the_group(group: Group) -> None:
    a = group.start_worker(0, _worker_metrics(2))
    b = group.start_worker(1, _worker_metrics(3))
    for link in (a, b, a, b):
        found = samples(await link.exposition() or b"")
        assert sample(found, "gateway_requests_total", provider="p", model="m", status="200") == 5
        assert sample(found, "gateway_request_duration_seconds_count", provider="p") == 5
        want = {"provider": "p", "model": "m", "direction": "in", "key": ""}
        assert sample(found, "gateway_tokens_total", **want) == 15
        assert sample(found, "gateway_metrics_workers_missing") == 0
        assert sample(found, "gateway_worker_restarts_total") == 0


async def test_gauges_sum_and_redis_up_is_the_least(group: Group) -> None:
    a, b = Metrics(redis_up=lambda: True), Metrics(redis_up=lambda: False)
    a.inflight.inc()
    b.inflight.inc(2)
    link = group.start_worker(0, a)
    group.start_worker(1, b)
    found = samples(await link.exposition() or b"")
    assert sample(found, "gateway_inflight_requests") == 3
    assert sample(found, "gateway_redis_up") == 0


async def test_a_stuck_worker_is_left_out_promptly_and_kept_at_its_last_counters(
    group: Group,
) -> None:
    link = group.start_worker(0, _worker_metrics(2))
    stuck = group.raw_worker(1)
    reader = FrameReader(stuck)

    async def answer_once() -> None:  # then it never reads again
        frame = await reader.next()
        assert frame is not None
        assert frame.kind == ASK_SNAPSHOT
        snapshot = _worker_metrics(3)
        snapshot.inflight.inc(7)  # a gauge: left out once the worker goes quiet
        await send_frame(stuck, SNAPSHOT, frame.seq, encode_statistics(snapshot.statistics()))

    group.nursery.start_soon(answer_once)
    first = samples(await link.exposition() or b"")
    assert sample(first, "gateway_requests_total", provider="p", model="m", status="200") == 5
    assert sample(first, "gateway_inflight_requests") == 7
    started = trio.current_time()
    second = samples(await link.exposition() or b"")
    assert trio.current_time() - started < metrics_group.WORKER_TIMEOUT_S + 0.5
    assert sample(second, "gateway_metrics_workers_missing") == 1
    # Its counters stay at what it said last: the group's total does not fall.
    assert sample(second, "gateway_requests_total", provider="p", model="m", status="200") == 5
    assert sample(second, "gateway_inflight_requests") == 0
    # Asked once more while the question is outstanding: not asked again (no pile-up).
    third = samples(await link.exposition() or b"")
    assert sample(third, "gateway_metrics_workers_missing") == 1
    asks = []
    with trio.move_on_after(0.3):
        while (frame := await reader.next()) is not None:
            asks.append(frame.kind)
    assert asks == [ASK_SNAPSHOT]


async def test_a_dead_workers_counters_stay_after_its_restart(group: Group) -> None:
    link = group.start_worker(0, _worker_metrics(2))
    doomed = group.raw_worker(1)
    reader = FrameReader(doomed)

    async def answer_then_die() -> None:
        frame = await reader.next()
        assert frame is not None
        snapshot = _worker_metrics(3).statistics()
        await send_frame(doomed, SNAPSHOT, frame.seq, encode_statistics(snapshot))
        await reader.next()  # asked again: dies instead
        await doomed.aclose()

    group.nursery.start_soon(answer_then_die)
    assert _requests(await link.exposition()) == 5
    started = trio.current_time()
    assert _requests(await link.exposition()) == 5  # it died while being asked
    assert trio.current_time() - started < metrics_group.WORKER_TIMEOUT_S + 0.5
    group.metrics.worker_restarted()
    group.start_worker(1, _worker_metrics(1))  # the new process counts from zero
    found = samples(await link.exposition() or b"")
    assert sample(found, "gateway_requests_total", provider="p", model="m", status="200") == 6
    assert sample(found, "gateway_worker_restarts_total") == 1
    assert sample(found, "gateway_metrics_workers_missing") == 0


async def test_a_worker_breaking_the_framing_loses_its_link_only(
    group: Group, caplog: pytest.LogCaptureFixture
) -> None:
    link = group.start_worker(0, _worker_metrics(2))
    rogue = group.raw_worker(1)
    await eventually(lambda: 1 in group.metrics._ends)
    await rogue.send_all(HEAD.pack(SNAPSHOT, 1, MAX_PAYLOAD_BYTES + 1))
    await eventually(lambda: 1 not in group.metrics._ends, timeout_s=5)
    assert "is closed" in caplog.text
    found = samples(await link.exposition() or b"")
    assert sample(found, "gateway_requests_total", provider="p", model="m", status="200") == 2
    assert sample(found, "gateway_metrics_workers_missing") == 1


async def test_an_unreadable_snapshot_is_skipped_and_the_link_kept(group: Group) -> None:
    link = group.start_worker(0, _worker_metrics(2))
    odd = group.raw_worker(1)
    reader = FrameReader(odd)

    async def answer_badly_then_well() -> None:
        frame = await reader.next()
        assert frame is not None
        await send_frame(odd, SNAPSHOT, frame.seq, b'[["not a family"]]')
        frame = await reader.next()
        assert frame is not None
        snapshot = _worker_metrics(4).statistics()
        await send_frame(odd, SNAPSHOT, frame.seq, encode_statistics(snapshot))

    group.nursery.start_soon(answer_badly_then_well)
    assert _requests(await link.exposition()) == 2
    assert _requests(await link.exposition()) == 6


async def test_a_worker_whose_snapshot_fails_is_missing_then_asked_again(
    group: Group, caplog: pytest.LogCaptureFixture
) -> None:
    broken = [True]

    def reload_counts() -> dict[str, int]:
        if broken[0]:
            raise RuntimeError("a scrape-time reader failed")
        return {"ok": 1, "error": 0}

    flaky = _worker_metrics(4)
    flaky._reload_counts = reload_counts
    link = group.start_worker(0, _worker_metrics(2))
    group.start_worker(1, flaky)
    started = trio.current_time()
    first = samples(await link.exposition() or b"")
    assert trio.current_time() - started < metrics_group.WORKER_TIMEOUT_S  # said so at once
    assert sample(first, "gateway_metrics_workers_missing") == 1
    assert "could not be taken" in caplog.text
    broken[0] = False
    assert _requests(await link.exposition()) == 6


async def test_concurrent_scrapes_share_rounds(group: Group) -> None:
    links = [group.start_worker(0, _worker_metrics(1)), group.start_worker(1, _worker_metrics(1))]
    results: list[float] = []

    async def scrape(link: SupervisorLink) -> None:
        results.append(_requests(await link.exposition()))

    async with trio.open_nursery() as scrapes:
        for i in range(20):
            scrapes.start_soon(scrape, links[i % 2])
    assert results == [2] * 20
    # One round for those that came first, one for those that came during it.
    assert group.metrics._seq <= 2


async def test_no_answer_from_the_supervisor_is_none_in_bounded_time(
    nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(metrics_group, "SUPERVISOR_TIMEOUT_S", 0.3)
    ours, theirs = socket.socketpair()  # nobody serves "ours": a supervisor that is stuck
    link = SupervisorLink(theirs, Metrics().statistics)
    nursery.start_soon(link.run)
    with trio.fail_after(2):
        assert await link.exposition() is None
    assert "no group metrics" in caplog.text
    ours.close()  # the supervisor is gone: the link closes, later scrapes fail at once
    await eventually(lambda: link._closed, timeout_s=2)
    with trio.fail_after(0.5):
        assert await link.exposition() is None


# -- the wire ---------------------------------------------------------------------------------


async def test_frames_cut_anywhere_are_read_whole() -> None:
    a, b = trio.testing.memory_stream_pair()
    data = HEAD.pack(2, 7, 5) + b"hello" + HEAD.pack(4, 8, 0) + HEAD.pack(1, 9, 3) + b"abc"
    reader = FrameReader(b)
    for i in range(len(data)):  # one byte at a time
        await a.send_all(data[i : i + 1])
    await a.aclose()
    frames = [await reader.next() for _ in range(4)]
    assert [(f.kind, f.seq, f.payload) for f in frames if f] == [
        (2, 7, b"hello"),
        (4, 8, b""),
        (1, 9, b"abc"),
    ]
    assert frames[3] is None


async def test_a_truncated_or_oversized_frame_is_an_error() -> None:
    a, b = trio.testing.memory_stream_pair()
    await a.send_all(HEAD.pack(2, 1, 10) + b"short")
    await a.aclose()
    with pytest.raises(FrameError, match="inside a frame"):
        await FrameReader(b).next()
    c, d = trio.testing.memory_stream_pair()
    await c.send_all(HEAD.pack(2, 1, MAX_PAYLOAD_BYTES + 1))
    with pytest.raises(FrameError, match="bytes"):
        await FrameReader(d).next()
    with pytest.raises(FrameError):
        await send_frame(c, 2, 1, b"x" * (MAX_PAYLOAD_BYTES + 1))


def test_snapshots_round_trip_and_bad_shapes_are_refused() -> None:
    m = _worker_metrics(2, provider='prövider\n"x"')
    m.limit_rejected("team", "rpm")
    stats = Metrics(redis_up=lambda: True).statistics()
    both = MetricsStatistics((*m.statistics().families, stats["gateway_redis_up"]))
    assert decode_statistics(encode_statistics(both)) == both
    good = json.loads(encode_statistics(both))
    bad_shapes = [
        b"not json",
        b"{}",
        json.dumps([good[0][:6]]).encode(),
        json.dumps([[*good[0][:2], "summary", *good[0][3:]]]).encode(),
        json.dumps([[*good[0][:5], "avg", good[0][6]]]).encode(),
        json.dumps([[*good[0][:6], [[["p"], 1, [], 0]]]]).encode(),  # too few labels
        json.dumps([[*good[0][:6], [[["p", "m", "200"], "1", [], 0]]]]).encode(),
        b"[" * 100_000,
    ]
    for data in bad_shapes:
        with pytest.raises(FrameError):
            decode_statistics(data)


async def test_frame_errors_are_logged_not_raised_from_the_link(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="gateway.metrics")
    ours, theirs = socket.socketpair()
    link = SupervisorLink(theirs, Metrics().statistics)
    done = trio.Event()

    async def run() -> None:
        await link.run()
        done.set()

    nursery.start_soon(run)
    sock = trio.SocketStream(trio.socket.from_stdlib_socket(ours))
    await sock.send_all(HEAD.pack(99, 1, 0))  # a kind the worker never gets
    with trio.fail_after(2):
        await done.wait()
    assert "unexpected frame kind 99" in caplog.text
    await sock.aclose()
