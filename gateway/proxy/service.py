"""Per-request orchestration: route -> targets x tries x fallbacks.

Theory of operation (design.md "Routing", "Response status and keep-alives"):

1. The request takes the registry snapshot once and routes its model to an
   ordered list of targets (the alias's providers, then its fallbacks), each
   alias taking its round-robin turn.
2. Each target is tried ``retry.retries + 1`` times, each try with the key
   :class:`gateway.keys.KeyPool` chooses (or the client's own, forwarded),
   sleeping between tries (the provider's Retry-After, capped, or exponential
   backoff; no sleep when another key is ready). A failure that must not be
   retried ends the target, and one that must not fall back ends the request
   (the failure table, :mod:`gateway.failures`). When every try failed the last
   error goes to the client, in its format, with the status of design.md's
   table, its message cleaned of secrets.
3. One try is :func:`gateway.proxy.attempt.attempt`; the body it sends and what
   it makes of the answer are the call's adapter's (:mod:`gateway.proxy.adapters`),
   made once per target. The ``mock`` provider answers on the spot
   (:mod:`gateway.proxy.mock`); a count-tokens call to a provider of another
   format gets the gateway's estimate.
4. ``"stream": "emulate"``: the status goes out at once, keep-alives while the
   provider answers whole, then that answer as a stream in the client's format.

What the client and the operator learn of the path taken: every answer's head
carries ``x-gateway-provider`` (:func:`gateway.proxy.replies.provider_header`;
an emulated stream's head goes out before the answer, so it names the
provider first waited for); the request's record (the access line) holds the
provider, ``target`` (its index in the routed list), ``fallback`` (the
fallback model it was routed from, if any) and ``retries`` (its failed tries).
``gateway_provider_inflight_requests{provider}`` counts the tries under way at
each provider (the mock's answers included), not the sleeps between them.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import attrs
import trio

from gateway.convert.memo import Memo
from gateway.errors import ErrorKind, GatewayError, RateLimited, Unauthorized
from gateway.failures import Failure
from gateway.keys import NO_KEY, AllResting, KeyChoice, KeyPool, UseKey
from gateway.logs import set_log_redactor
from gateway.proxy.adapters import Adapter, make_adapter, off_loop, whole_as_stream
from gateway.proxy.attempt import attempt, unreadable
from gateway.proxy.keepalive import KEEPALIVE_S, with_keepalives
from gateway.proxy.mock import answer_from_mock
from gateway.proxy.relay import stream_error
from gateway.proxy.replies import answer_estimated_count, note_usage, stream_headers
from gateway.proxy.upstream_request import (
    Destination,
    client_credential,
    client_credential_if_forwarded,
    upstream_headers,
    upstream_url,
)
from gateway.record import call_record
from gateway.redact import Redactor, redactor_for
from gateway.routing import Target, route
from gateway.server.responses import SSE
from gateway.state.protocol import StateUnavailable
from gateway.transformers.model import MOCK

if TYPE_CHECKING:
    from gateway.call import Call
    from gateway.metrics import Metrics
    from gateway.server.exchange import Exchange
    from gateway.state.protocol import State
    from gateway.transformers.model import Transformer
    from gateway.transformers.registry import Registry, RegistryHolder
    from gateway.upstream import UpstreamClient

__all__ = ["MAX_TURNS", "Proxy"]

#: The proxy's one logger name (log filters and JSON lines name it).
LOG = logging.getLogger("gateway.proxy")

#: How long giving back a provider slot may take (a lease left behind expires on its own).
RELEASE_TIMEOUT_S = 2.0

#: Aliases whose round-robin turn is remembered (each a few bytes).
MAX_TURNS = 10_000


class _Exhausted(Exception):
    """A target has no tries left; ``failure`` says why and whether to fall back."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.error.message)
        self.failure = failure


class Proxy:
    """Forwards calls to providers. Owned by the app; one per worker."""

    def __init__(
        self,
        registry: RegistryHolder,
        upstream: UpstreamClient,
        *,
        metrics: Metrics | None = None,
        keepalive_s: float = KEEPALIVE_S,
        state: State | None = None,
    ) -> None:
        self.registry = registry
        #: Where providers' ``max_concurrency`` slots are counted (gateway.state).
        self.state = state
        self.upstream = upstream
        self.metrics = metrics
        self.keys = KeyPool(trio.current_time)
        self.keepalive_s = keepalive_s
        self._turns: dict[str, int] = {}
        #: Parsed and rendered history of recent conversations (gateway.convert.memo).
        self.memo = Memo()
        #: The snapshot the redactor was built for, and the redactor (gateway.redact).
        self._redaction: tuple[Registry | None, Redactor] = (None, Redactor())

    def redactor(self, snapshot: Registry) -> Redactor:
        """The Redactor holding ``snapshot``'s secrets: built once per snapshot, also for logs."""
        built_for, redactor = self._redaction
        if built_for is not snapshot:
            redactor = redactor_for(snapshot)
            self._redaction = (snapshot, redactor)
            set_log_redactor(redactor.text if redactor else None)
        return redactor

    # -- the request: targets --------------------------------------------------------------

    async def handle(self, ex: Exchange, call: Call) -> None:
        """Answer ``call`` on ``ex``; raises a GatewayError when every target failed."""
        snapshot = self.registry.current
        redactor = self.redactor(snapshot)
        targets = route(call.model, snapshot, turn=self.turn(call.model))
        call_record(ex).client_format = call.fmt
        error: GatewayError | None = None
        for index, target in enumerate(targets):
            t = target.transformer
            lease = None
            state = self.state
            if t.max_concurrency is not None and state is not None:
                lease = await state.acquire_provider(t.name, t.max_concurrency)
                if lease is None:  # at its cap: the next target serves, if there is one
                    error = _at_capacity(t)
                    continue
            try:
                await self._serve_target(ex, call, index, target, redactor)
                return
            except _Exhausted as exc:
                error = exc.failure.error
                if not exc.failure.fallback:
                    break
            finally:
                if lease is not None and state is not None:
                    await _release(state, t.name, lease)
        assert error is not None
        error = cleaned(error, ex, targets, redactor)
        if ex.started:  # an emulated stream already sent its status: the error goes in-stream
            await ex.send(stream_error(call.fmt, error.kind, error.status_hint, error.message))
            return
        raise error

    def turn(self, model: str) -> int:
        """``model``'s round-robin turn for this request (gateway.routing's ``turn``)."""
        turn = self._turns.get(model, 0)
        if turn or len(self._turns) < MAX_TURNS:
            self._turns[model] = turn + 1
        return turn

    @contextmanager
    def _at_provider(self, provider: str) -> Iterator[None]:
        """A try under way at ``provider`` (``gateway_provider_inflight_requests``)."""
        if self.metrics is None:
            yield
            return
        gauge = self.metrics.provider_inflight.labels(provider)
        gauge.inc()
        try:
            yield
        finally:
            gauge.dec()

    async def _serve_target(
        self, ex: Exchange, call: Call, index: int, target: Target, redactor: Redactor
    ) -> None:
        t = target.transformer
        record = call_record(ex)
        record.provider, record.upstream_model = t.name, target.upstream_model
        record.target, record.retries = index, 0
        record.fallback = target.alias if target.alias != call.model else None
        if t.format == MOCK:
            with self._at_provider(t.name):
                await answer_from_mock(ex, call, target)
            return
        if t.keys_missing:
            raise _Exhausted(
                Failure(Unauthorized(t.missing_keys_message()), retry=False, fallback=True)
            )
        if call.op == "count_tokens" and t.format != call.fmt:
            # Only providers of the client's own format count tokens for us; elsewhere, estimate.
            await answer_estimated_count(ex, call, t.name)
            return
        emulate = call.stream and t.stream == "emulate"
        upstream_call = attrs.evolve(call, stream=False) if emulate else call
        if t.forward_client_key:  # the client's own key goes upstream: never echo it either
            credential = client_credential(ex)
            if credential:
                redactor = redactor.with_secrets([credential])
        adapter = await off_loop(
            call.size,
            functools.partial(make_adapter, upstream_call, target, self.memo, redactor),
        )
        if adapter.notes:
            LOG.debug(
                "converting %s -> %s dropped: %s",
                call.fmt,
                t.format,
                "; ".join(adapter.notes),
                extra={"request_id": ex.request.request_id},
            )
        url = upstream_url(t, upstream_call, target.upstream_model)
        # Built once, before anything is sent (an emulated stream starts below): a client
        # value that cannot go into a header is a 400, not a failure mid-try. Each try
        # adds only its credential.
        dest = Destination(url, upstream_headers(ex, t, None))
        if not emulate:
            await self._tries(ex, upstream_call, t, dest, adapter)
            return
        await self._emulate(ex, call, upstream_call, t, dest, adapter)

    async def _emulate(
        self,
        ex: Exchange,
        call: Call,
        upstream_call: Call,
        t: Transformer,
        dest: Destination,
        adapter: Adapter,
    ) -> None:
        """``"stream": "emulate"``: status at once, keep-alives while the provider answers
        whole, then that answer as a stream in the client's format."""
        if not ex.started:
            await ex.start(200, content_type=SSE, headers=stream_headers(t.name))
        whole: list[bytes] = []
        await with_keepalives(
            ex,
            call.fmt,
            self._tries(ex, upstream_call, t, dest, adapter, collect=whole),
            self.keepalive_s,
        )
        emulated = functools.partial(whole_as_stream, call, t.format, whole[0], adapter)
        try:
            events = await off_loop(len(whole[0]), emulated)
        except Exception as exc:
            error = unreadable(t.name, exc)
            events = adapter.redactor.data(
                stream_error(call.fmt, error.kind, error.status_hint, error.message)
            )
        note_usage(ex, adapter.usage)
        await ex.send(events)

    # -- one target: tries -----------------------------------------------------------------

    async def _tries(
        self,
        ex: Exchange,
        call: Call,
        t: Transformer,
        dest: Destination,
        adapter: Adapter,
        *,
        collect: list[bytes] | None = None,
    ) -> None:
        """Up to ``retry.retries + 1`` tries on ``t``; raises _Exhausted when none succeeds."""
        last: Failure | None = None
        for n in range(t.retry.retries + 1):
            choice = self.choose_key(ex, t)
            if isinstance(choice, AllResting):
                raise _Exhausted(last or self.resting_failure(t, choice))
            key = choice.key if isinstance(choice, UseKey) else None
            with self._at_provider(t.name):
                failure = await attempt(
                    self.upstream,
                    ex,
                    call,
                    t,
                    dest,
                    adapter,
                    key,
                    keepalive_s=self.keepalive_s,
                    collect=collect,
                )
            pooled = key if isinstance(choice, UseKey) and choice.pooled else None
            if failure is None:
                if pooled:
                    self.keys.succeeded(t, pooled)
                return
            call_record(ex).retries = n + 1
            self.note_failure(ex, t, failure, n, pooled)
            if not failure.retry:
                raise _Exhausted(failure)
            last = failure
            if n < t.retry.retries:
                await trio.sleep(self.retry_delay(t, failure, n))
        assert last is not None
        raise _Exhausted(last)

    def note_failure(
        self,
        ex: Exchange,
        t: Transformer,
        failure: Failure,
        n: int,
        key: str | None,
        *,
        what: str = "try",
    ) -> None:
        """Try ``n`` (from 0) on ``t`` failed: count it, log it, and rest ``key`` (one of
        the pool's) when the provider refused or rate-limited it."""
        if self.metrics is not None:
            self.metrics.upstream_errors.labels(t.name, failure.kind).inc()
        LOG.info(
            "%s %d of %s failed: %s",
            what,
            n + 1,
            t.name,
            failure.kind,
            extra={"request_id": ex.request.request_id},
        )
        if failure.cool_key and key:
            self.keys.cool(t, key, failure.rest_s, why=failure)

    def resting_failure(self, t: Transformer, resting: AllResting) -> Failure:
        """The failure to report when every key of ``t`` rests: the refusal, or a 429."""
        why = resting.why
        if why is not None and why.error.kind is not ErrorKind.RATE_LIMIT:
            return why
        return _keys_resting(t, resting.wait_s)

    def retry_delay(self, t: Transformer, failure: Failure, n: int) -> float:
        """Seconds to sleep after the ``n``-th try (from 0) failed with ``failure``."""
        if failure.delay_s is not None:
            return failure.delay_s
        if failure.cool_key and t.keys and self.keys.wait_s(t) == 0:
            return 0.0  # another key is ready: no need to wait
        return t.retry.backoff_s * 2.0**n

    def choose_key(self, ex: Exchange, t: Transformer) -> KeyChoice:
        """The credential for this try: the client's own when forwarded, else the pool's."""
        if t.forward_client_key:
            credential = client_credential(ex)
            return UseKey(credential, pooled=False) if credential else NO_KEY
        return self.keys.choose(t)


def cleaned(
    error: GatewayError, ex: Exchange, targets: tuple[Target, ...], redactor: Redactor
) -> GatewayError:
    """The last error of a request, its message cleaned of secrets: a provider's words
    (and a connect error's URL) may echo a key, the client's own forwarded one included."""
    forwarded = client_credential_if_forwarded(ex, targets)
    if forwarded:
        redactor = redactor.with_secrets([forwarded])
    error.message = redactor.text(error.message)
    error.args = (error.message,)
    return error


async def _release(state: State, provider: str, lease: str) -> None:
    """Give a provider slot back, whatever cancels the request (a lost lease expires)."""
    with trio.CancelScope(shield=True), trio.move_on_after(RELEASE_TIMEOUT_S):
        try:
            await state.release_provider(provider, lease)
        except StateUnavailable:
            pass


def _at_capacity(t: Transformer) -> GatewayError:
    return RateLimited(
        f"The provider {t.name} is serving its max_concurrency of {t.max_concurrency} "
        "requests at once; retry shortly.",
        retry_after_s=1,
    )


def _keys_resting(t: Transformer, wait_s: float) -> Failure:
    return Failure(
        RateLimited(
            f"Every API key of provider {t.name!r} is resting after rate limits; "
            f"try again in {math.ceil(wait_s)} s.",
            retry_after_s=max(1, math.ceil(wait_s)),
        ),
        retry=False,
        fallback=True,
        kind="keys_resting",
    )
