"""One ``/metrics`` for a group of worker processes, aggregated through their supervisor.

Theory of operation: with ``--workers N`` the supervisor (gateway.server.workers)
gives each worker one end of a socketpair (the hidden ``--metrics-fd``); no
port, path or setting is involved. A scrape may land on any worker:

1. the worker's :class:`SupervisorLink` asks the supervisor for the group's
   exposition (``ASK_GROUP``);
2. the supervisor's :class:`GroupMetrics` asks every live worker for its
   snapshot at once (``ASK_SNAPSHOT``; the asking worker too) and waits at most
   :data:`WORKER_TIMEOUT_S` for each;
3. it merges what came (gateway.prometheus.merge_statistics: counters and
   histograms summed, in-flight gauges summed, ``gateway_redis_up`` the
   minimum), renders the text and sends it back (``GROUP``), which the worker
   serves as is.

Concurrent scrapes share rounds: a request joins the next round to start
(never one already under way, whose snapshots may predate it), and one round
runs at a time, on each side. So a scrape costs one round however many come
at once, and answers within ~:data:`WORKER_TIMEOUT_S` plus the merge even
when a worker is stuck or dead; if the supervisor itself does not answer
within :data:`SUPERVISOR_TIMEOUT_S`, the worker answers 503 rather than its
own counters alone (which would look like the group's counters falling).

Counters never go backwards across the group, as far as this can cheaply
promise:

- a worker that does not answer in time (stuck, busy, just restarted) is
  counted in ``gateway_metrics_workers_missing`` and contributes its counters
  and histograms *as of its last answer* (its gauges are left out);
- when a worker's process ends, the last snapshot it gave is added to the
  supervisor's retired totals, which every later scrape includes: a restarted
  worker starting from zero does not pull the group's counters down. What a
  worker counted after its last answer and before it died is lost (typically
  under one scrape interval of its share).

Bounds: a frame is at most gateway.prometheus.wire.MAX_PAYLOAD_BYTES; merged
families keep at most MAX_LABEL_SETS label sets (the rest fold into
``_other_``, as in one process), retired totals included, so neither N workers
nor many restarts grow a scrape without bound. Big snapshots are encoded,
decoded and merged in a worker thread. A peer that breaks the framing, or a
send that does not finish within wire.SEND_TIMEOUT_S (5 s) (a worker stuck with
a full socket buffer), closes that link: the worker's scrapes then answer 503
until the supervisor restarts it.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

import attrs
import trio

from gateway.coalesce import Rounds
from gateway.prometheus import (
    MAX_LABEL_SETS,
    Counter,
    Gauge,
    MetricsStatistics,
    merge_statistics,
    render,
)
from gateway.prometheus.wire import (
    LINK_ERRORS,
    Frame,
    FrameError,
    FrameReader,
    decode_statistics,
    encode_statistics,
    send_whole,
)

__all__ = [
    "SUPERVISOR_TIMEOUT_S",
    "WORKER_TIMEOUT_S",
    "GroupMetrics",
    "SupervisorLink",
]

LOG = logging.getLogger("gateway.metrics")

#: How long a scrape waits for each worker's snapshot (all are asked at once).
WORKER_TIMEOUT_S = 1.0
#: How long a worker waits for the group's exposition: a round already under way,
#: then its own, and the merge.
SUPERVISOR_TIMEOUT_S = 5.0
#: Payloads and snapshots past these sizes are handled in a worker thread.
THREAD_BYTES = 256 * 1024
THREAD_SERIES = 2_000

# Frame kinds.
ASK_SNAPSHOT = 1  # supervisor -> worker
SNAPSHOT = 2  # worker -> supervisor: encoded MetricsStatistics
ASK_GROUP = 3  # worker -> supervisor
GROUP = 4  # supervisor -> worker: the exposition text
NO_GROUP = 5  # supervisor -> worker: the group's exposition could not be made
NO_SNAPSHOT = 6  # worker -> supervisor: no snapshot this time (logged there)


async def _off_loop_if(big: bool, fn: Callable[[], bytes]) -> bytes:
    return await trio.to_thread.run_sync(fn) if big else fn()


def _series_count(stats: MetricsStatistics) -> int:
    return sum(len(f.series) for f in stats.families)


def _cumulative(stats: MetricsStatistics) -> MetricsStatistics:
    """Counters and histograms only: what a stale or dead worker still contributes."""
    return MetricsStatistics(tuple(f for f in stats.families if f.kind != "gauge"))


# -- the supervisor's side --------------------------------------------------------------------


@attrs.define(eq=False)
class _WorkerEnd:
    """The supervisor's end of one worker process's link."""

    worker_id: int
    stream: trio.SocketStream
    send_lock: trio.StrictFIFOLock = attrs.Factory(trio.StrictFIFOLock)
    #: Cancelled when the link is unusable (serve_worker then ends).
    scope: trio.CancelScope = attrs.Factory(trio.CancelScope)
    #: The latest snapshot the worker sent.
    last: MetricsStatistics | None = None
    #: The question sent last, the one answered last, the round an answer last came in,
    #: and the round a snapshot last came in.
    asked: int = 0
    answered: int = 0
    replied_in: int = 0
    fresh_in: int = 0
    #: The round being collected (a snapshot arriving now is fresh for it).
    round: int = 0
    arrived: trio.Event = attrs.Factory(trio.Event)

    def down(self, exc: BaseException) -> None:
        LOG.error("the metrics link of worker %d is closed: %s", self.worker_id, exc)
        self.scope.cancel()

    async def send(self, kind: int, seq: int, payload: bytes = b"") -> None:
        await send_whole(self.stream, self.send_lock, kind, seq, payload)

    async def ask(self, seq: int) -> None:
        """Get a snapshot for round ``seq``, waiting at most WORKER_TIMEOUT_S.

        At most one question is outstanding: a worker that has not answered the
        last one (stuck) is not asked again (its answer, when it comes, serves),
        and one whose link is busy sending is not asked this round; so a round
        never waits on a send, and a stuck worker's buffer does not fill with
        questions.
        """
        self.round = seq
        with trio.move_on_after(WORKER_TIMEOUT_S):
            if self.asked == self.answered and not self.send_lock.locked():
                self.asked = seq
                try:
                    await self.send(ASK_SNAPSHOT, seq)
                except LINK_ERRORS as exc:
                    self.down(exc)
                    return
            while self.replied_in != seq:
                await self.arrived.wait()

    def took(self, seq: int, stats: MetricsStatistics | None) -> None:
        """An answer came (None: without a snapshot); even the answer to an earlier
        round's question is the freshest this worker gave, and fresh for the round
        under way."""
        self.answered, self.replied_in = seq, self.round
        if stats is not None:
            self.last, self.fresh_in = stats, self.round
        self.arrived.set()
        self.arrived = trio.Event()


class GroupMetrics:
    """The supervisor's aggregation of its workers' metrics.

    Run :meth:`run` for the supervisor's lifetime and :meth:`serve_worker` for
    each worker process's link; call :meth:`worker_restarted` for each restart.

    Args:
        workers: how many workers the group should have (``--workers``).
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._ends: dict[int, _WorkerEnd] = {}
        self._retired = MetricsStatistics(())
        self._seq = 0
        self._rounds = Rounds(self._collect, "collecting the group's metrics")
        self.missing = Gauge(
            "gateway_metrics_workers_missing",
            "Workers whose snapshot the last scrape lacked (stuck past 1 s, dead or "
            "restarting); their counters are included as of their last answer.",
        )
        self.restarts = Counter(
            "gateway_worker_restarts_total", "Worker processes restarted after they died."
        )

    async def run(self) -> None:
        """Serve the rounds (for the supervisor's lifetime)."""
        try:
            await self._rounds.run()
        finally:
            self._rounds.close()

    def worker_restarted(self) -> None:
        self.restarts.inc()

    async def exposition(self) -> bytes | None:
        """The group's exposition, from a round that starts after this call."""
        return await self._rounds.get()

    async def serve_worker(self, worker_id: int, sock: socket.socket) -> None:
        """Serve one worker process's link until it ends (the process exited)."""
        end = _WorkerEnd(worker_id, trio.SocketStream(trio.socket.from_stdlib_socket(sock)))
        self._ends[worker_id] = end
        asks: trio.MemorySendChannel[int]
        asks, pending = trio.open_memory_channel[int](1)
        try:
            with end.scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._answer_asks, end, pending)
                    try:
                        await self._read(end, asks)
                    except LINK_ERRORS as exc:
                        end.down(exc)
                    nursery.cancel_scope.cancel()
        except Exception:  # a bug here must not take the supervisor (and every worker) down
            LOG.exception("the metrics link of worker %d failed", worker_id)
        finally:
            if self._ends.get(worker_id) is end:
                del self._ends[worker_id]
            if end.last is not None:
                self._retire(end.last)
            with trio.CancelScope(shield=True):
                await end.stream.aclose()

    async def _read(self, end: _WorkerEnd, asks: trio.MemorySendChannel[int]) -> None:
        reader = FrameReader(end.stream)
        while (frame := await reader.next()) is not None:
            if frame.kind == SNAPSHOT:
                try:
                    end.took(frame.seq, await _decode(frame))
                except (FrameError, ValueError, TypeError) as exc:  # only this answer is lost
                    LOG.error("worker %d sent an unreadable snapshot: %s", end.worker_id, exc)
                    end.took(frame.seq, None)
            elif frame.kind == NO_SNAPSHOT:
                end.took(frame.seq, None)
            elif frame.kind == ASK_GROUP:
                try:  # one question waits at most; a worker asks again after its timeout
                    asks.send_nowait(frame.seq)
                except trio.WouldBlock:
                    pass
            else:
                raise FrameError(f"unexpected frame kind {frame.kind}")

    async def _answer_asks(self, end: _WorkerEnd, asks: trio.MemoryReceiveChannel[int]) -> None:
        async for seq in asks:
            body = await self.exposition()
            try:
                if body is None:
                    await end.send(NO_GROUP, seq)
                else:
                    await end.send(GROUP, seq, body)
            except LINK_ERRORS as exc:
                end.down(exc)
                return

    def _retire(self, last: MetricsStatistics) -> None:
        """A worker process ended: its last counters stay in the group's totals."""
        parts = [self._retired, _cumulative(last)]
        try:
            self._retired = merge_statistics(parts, max_label_sets=MAX_LABEL_SETS)
        except ValueError:  # a worker of another version, say: its totals cannot be kept
            LOG.exception("a finished worker's counters could not be kept")

    async def _collect(self) -> bytes:
        self._seq += 1
        seq = self._seq
        ends = sorted(self._ends.values(), key=lambda e: e.worker_id)
        async with trio.open_nursery() as nursery:
            for end in ends:
                nursery.start_soon(end.ask, seq)
        # A worker that died meanwhile is in the retired totals now: not twice.
        ends = [e for e in ends if self._ends.get(e.worker_id) is e]
        fresh = [e.last for e in ends if e.fresh_in == seq and e.last is not None]
        stale = [_cumulative(e.last) for e in ends if e.fresh_in != seq and e.last is not None]
        self.missing.set(max(self.workers - len(fresh), 0))
        own = MetricsStatistics((self.missing.statistics(), self.restarts.statistics()))
        parts = [*fresh, *stale, self._retired, own]
        big = sum(_series_count(p) for p in parts) > THREAD_SERIES
        return await _off_loop_if(
            big, lambda: render(merge_statistics(parts, max_label_sets=MAX_LABEL_SETS))
        )


async def _decode(frame: Frame) -> MetricsStatistics:
    if len(frame.payload) > THREAD_BYTES:
        return await trio.to_thread.run_sync(decode_statistics, frame.payload)
    return decode_statistics(frame.payload)


# -- a worker's side --------------------------------------------------------------------------


class SupervisorLink:
    """A worker's end of its link: answers the supervisor's questions for snapshots and
    asks it for the group's exposition.

    Run :meth:`run` for the worker's lifetime; :meth:`exposition` is the body of
    ``GET /metrics`` (None: the supervisor did not answer in time, or the link is
    down: answer 503).

    Args:
        sock: the inherited socket (``--metrics-fd``).
        statistics: this worker's snapshot, e.g. ``metrics.statistics``.
    """

    def __init__(self, sock: socket.socket, statistics: Callable[[], MetricsStatistics]) -> None:
        self._stream = trio.SocketStream(trio.socket.from_stdlib_socket(sock))
        self._statistics = statistics
        self._send_lock = trio.StrictFIFOLock()
        self._rounds = Rounds(self._ask_group, "asking the supervisor for the group's metrics")
        self._scope = trio.CancelScope()
        self._seq = 0
        self._answer: tuple[int, bytes | None] = (0, None)
        self._arrived = trio.Event()
        self._closed = False

    async def exposition(self) -> bytes | None:
        """The group's exposition; None within SUPERVISOR_TIMEOUT_S (and a little) if none."""
        with trio.move_on_after(SUPERVISOR_TIMEOUT_S + 1):
            return await self._rounds.get()
        return None

    async def run(self) -> None:
        try:
            with self._scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._rounds.run)
                    try:
                        await self._read()
                        LOG.error("the supervisor closed the metrics link")
                    except LINK_ERRORS as exc:
                        LOG.error("the metrics link to the supervisor is closed: %s", exc)
                    nursery.cancel_scope.cancel()
        except Exception:  # a bug here must not take the worker down: its scrapes get 503
            LOG.exception("the metrics link to the supervisor failed")
        finally:
            self._closed = True
            self._arrived.set()
            self._rounds.close()
            with trio.CancelScope(shield=True):
                await self._stream.aclose()

    async def _send(self, kind: int, seq: int, payload: bytes = b"") -> None:
        await send_whole(self._stream, self._send_lock, kind, seq, payload)

    async def _read(self) -> None:
        reader = FrameReader(self._stream)
        while (frame := await reader.next()) is not None:
            if frame.kind == ASK_SNAPSHOT:
                await self._send_snapshot(frame.seq)
            elif frame.kind in (GROUP, NO_GROUP):
                body = frame.payload if frame.kind == GROUP else None
                self._answer = (frame.seq, body)
                self._arrived.set()
                self._arrived = trio.Event()
            else:
                raise FrameError(f"unexpected frame kind {frame.kind}")

    async def _send_snapshot(self, seq: int) -> None:
        try:
            stats = self._statistics()
            payload = await _off_loop_if(
                _series_count(stats) > THREAD_SERIES, lambda: encode_statistics(stats)
            )
        except Exception:  # a scrape-time reader failed: the supervisor counts us missing
            LOG.exception("this worker's metrics snapshot could not be taken")
            await self._send(NO_SNAPSHOT, seq)
            return
        try:
            await self._send(SNAPSHOT, seq, payload)
        except FrameError as exc:  # too big to send: the supervisor counts us missing
            LOG.error("this worker's metrics snapshot is not sent: %s", exc)
            await self._send(NO_SNAPSHOT, seq)

    async def _ask_group(self) -> bytes | None:
        self._seq += 1
        seq = self._seq
        with trio.move_on_after(SUPERVISOR_TIMEOUT_S):
            try:
                await self._send(ASK_GROUP, seq)
            except LINK_ERRORS as exc:
                LOG.error("the metrics link to the supervisor is closed: %s", exc)
                self._scope.cancel()
                return None
            while not self._closed:
                answered, body = self._answer
                if answered == seq:
                    return body
                await self._arrived.wait()
            return None
        LOG.warning("the supervisor gave no group metrics within %g s", SUPERVISOR_TIMEOUT_S)
        return None
