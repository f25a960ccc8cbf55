"""Per-request orchestration: route -> (convert) -> upstream -> relay.

Theory of operation (design.md "Routing", "Response status and keep-alives",
"Streaming and cancellation"):

1. The request takes the registry snapshot once and routes its model to an
   ordered list of targets (the alias's providers, then its fallbacks).
2. Each target is tried ``retry.retries + 1`` times, rotating keys and
   sleeping between tries (the provider's Retry-After, capped, or exponential
   backoff); a failure that must not be retried ends the target, and one that
   must not fall back ends the request. When every try failed the last error
   goes to the client, in its format, with the status of design.md's table.
3. The response status is held until the provider answered 2xx. From then on
   nothing is retried: failures become the client format's in-stream error.
   Whatever a provider sends (status, headers, body, events) can only end a
   try as a Failure before the status or an in-stream error after it:
   ``_attempt`` turns every exception but ``ClientGone`` and cancellation into
   one, so a broken provider is never a 500 or a cut connection.
4. A try is bounded by ``timeouts.first_byte`` (a Trio deadline) up to the
   first token; then each gap between chunks by ``timeouts.idle``. While a
   stream waits for its first token, keep-alives go out every 15 s.
5. Everything runs inside the handler's cancel scope: a client that leaves
   (the server's watchdog) cancels whatever phase we are in (connect, head,
   first token, retry sleep, fallback, relay) and the upstream response is
   closed on the way out.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode

import attrs
import trio

from gateway.adapters import Converting, make_adapter, off_loop, whole_as_stream
from gateway.call import Call
from gateway.convert.encoded import dumps_body
from gateway.convert.memo import Memo
from gateway.convert.mock import mock_response, mock_stream
from gateway.convert.model import MessageStart, Usage, UsageUpdate
from gateway.convert.tokens import estimate_input_tokens
from gateway.errors import (
    BadRequest,
    ErrorKind,
    GatewayError,
    RateLimited,
    Unauthorized,
    UpstreamError,
)
from gateway.failures import Failure, classify_status, connect_failure, timeout_failure
from gateway.formats import FORMATS
from gateway.keys import NO_KEY, AllResting, KeyChoice, KeyPool, UseKey
from gateway.logs import set_log_redactor
from gateway.record import call_record
from gateway.redact import Redactor, redactor_for
from gateway.relay import stream_error
from gateway.routing import Target, route
from gateway.server.exchange import ClientGone
from gateway.server.responses import JSON, SSE
from gateway.sse import SSEError
from gateway.upstream import ConnectFailure, ProtocolFailure, UpstreamClient, UpstreamRequest
from gateway.usage import clamp_tokens

if TYPE_CHECKING:
    import httpx

    from gateway.adapters import ConvertingRelay, FramedRelay, Passthrough
    from gateway.metrics import Metrics
    from gateway.server.exchange import Exchange
    from gateway.transformers.model import Transformer
    from gateway.transformers.registry import Registry, RegistryHolder

__all__ = ["Call", "Proxy"]  # Call is re-exported for the front ends

LOG = logging.getLogger("gateway.proxy")
T = TypeVar("T")

#: Keep-alive period while a started stream waits for its first token.
KEEPALIVE_S = 15.0
#: Most bytes of a provider's error body read (the rest is not needed for the message).
ERROR_BODY_CAP = 256 * 1024
#: Most bytes of a non-streamed provider answer.
RESPONSE_BODY_CAP = 64 * 1024 * 1024
#: Longest a keep-alive write may hold up cancellation.
KEEPALIVE_SEND_S = 5.0
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
    ) -> None:
        self.registry = registry
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

    # -- the request -----------------------------------------------------------------------

    async def handle(self, ex: Exchange, call: Call) -> None:
        """Answer ``call`` on ``ex``; raises a GatewayError when every target failed."""
        snapshot = self.registry.current
        redactor = self.redactor(snapshot)
        targets = route(call.model, snapshot, turn=self._turn(call.model))
        call_record(ex).client_format = call.fmt
        error: GatewayError | None = None
        for target in targets:
            try:
                await self._serve_target(ex, call, target, redactor)
                return
            except _Exhausted as exc:
                error = exc.failure.error
                if not exc.failure.fallback:
                    break
        assert error is not None
        # A provider's words (and a connect error's URL) may echo a key: clean the message.
        forwarded = client_credential_if_forwarded(ex, targets)
        if forwarded:
            redactor = redactor.with_secrets([forwarded])
        error.message = redactor.text(error.message)
        error.args = (error.message,)
        if ex.started:  # an emulated stream already sent its status: the error goes in-stream
            await ex.send(stream_error(call.fmt, error.kind, error.status_hint, error.message))
            return
        raise error

    def _turn(self, model: str) -> int:
        turn = self._turns.get(model, 0)
        if turn or len(self._turns) < MAX_TURNS:
            self._turns[model] = turn + 1
        return turn

    async def _serve_target(
        self, ex: Exchange, call: Call, target: Target, redactor: Redactor
    ) -> None:
        t = target.transformer
        record = call_record(ex)
        record.provider, record.upstream_model = t.name, target.upstream_model
        if t.format == "mock":
            await answer_from_mock(ex, call, target)
            return
        if t.keys_missing:
            raise _Exhausted(
                Failure(Unauthorized(t.missing_keys_message()), retry=False, fallback=True)
            )
        if call.op == "count_tokens" and t.format != call.fmt:
            # Only providers of the client's own format count tokens for us; elsewhere, estimate.
            count = await off_loop(call.size, functools.partial(estimated_count, call))
            await ex.respond_json(200, count, headers=_ESTIMATED)
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
        # Client values that go into upstream headers are checked before anything is sent
        # (an emulated stream starts below): a bad one is a 400, not a 500 mid-try.
        upstream_headers(ex, t, None)
        if not emulate:
            await self._tries(ex, upstream_call, t, url, adapter)
            return
        # "stream": "emulate": status at once, keep-alives while the provider answers
        # whole, then that answer as a stream in the client's format.
        if not ex.started:
            await ex.start(200, content_type=SSE, headers=_SSE_HEADERS)
        whole: list[bytes] = []
        await self._with_keepalives(
            ex, call.fmt, self._tries(ex, upstream_call, t, url, adapter, collect=whole)
        )
        emulated = functools.partial(whole_as_stream, call, t.format, whole[0], adapter)
        try:
            events = await off_loop(len(whole[0]), emulated)
        except Exception as exc:
            error = _unreadable(t.name, exc)
            events = adapter.redactor.data(
                stream_error(call.fmt, error.kind, error.status_hint, error.message)
            )
        note_usage(ex, adapter.usage)
        await ex.send(events)

    async def _tries(
        self,
        ex: Exchange,
        call: Call,
        t: Transformer,
        url: str,
        adapter: Passthrough | Converting,
        *,
        collect: list[bytes] | None = None,
    ) -> None:
        """Up to ``retry.retries + 1`` tries on ``t``; raises _Exhausted when none succeeds."""
        last: Failure | None = None
        for attempt in range(t.retry.retries + 1):
            choice = self._key(ex, t)
            if isinstance(choice, AllResting):
                raise _Exhausted(last or self._resting(t, choice))
            key = choice.key if isinstance(choice, UseKey) else None
            failure = await self._attempt(ex, call, t, url, adapter, key, collect)
            pooled = key if isinstance(choice, UseKey) and choice.pooled else None
            if failure is None:
                if pooled:
                    self.keys.succeeded(t, pooled)
                return
            call_record(ex).retries = attempt
            if self.metrics is not None:
                self.metrics.upstream_errors.labels(t.name, failure.kind).inc()
            LOG.info(
                "try %d of %s failed: %s",
                attempt + 1,
                t.name,
                failure.kind,
                extra={"request_id": ex.request.request_id},
            )
            if failure.cool_key and pooled:
                self.keys.cool(t, pooled, failure.rest_s, why=failure)
            if not failure.retry:
                raise _Exhausted(failure)
            last = failure
            if attempt < t.retry.retries:
                await trio.sleep(self._delay(t, failure, attempt))
        assert last is not None
        raise _Exhausted(last)

    def _resting(self, t: Transformer, resting: AllResting) -> Failure:
        """The failure to report when every key of ``t`` rests: the refusal, or a 429."""
        why = resting.why
        if why is not None and why.error.kind is not ErrorKind.RATE_LIMIT:
            return why
        return _keys_resting(t, resting.wait_s)

    def _delay(self, t: Transformer, failure: Failure, attempt: int) -> float:
        if failure.delay_s is not None:
            return failure.delay_s
        if failure.cool_key and t.keys and self.keys.wait_s(t) == 0:
            return 0.0  # another key is ready: no need to wait
        return t.retry.backoff_s * (2**attempt)

    def _key(self, ex: Exchange, t: Transformer) -> KeyChoice:
        """The credential for this try: the client's own when forwarded, else the pool's."""
        if t.forward_client_key:
            credential = client_credential(ex)
            return UseKey(credential, pooled=False) if credential else NO_KEY
        return self.keys.choose(t)

    # -- one try ---------------------------------------------------------------------------

    async def _attempt(
        self,
        ex: Exchange,
        call: Call,
        t: Transformer,
        url: str,
        adapter: Passthrough | Converting,
        key: str | None,
        collect: list[bytes] | None = None,
    ) -> Failure | None:
        """One upstream exchange. None when the client got its answer (or an in-stream error).

        With ``collect``, a whole (non-streamed) answer is appended there instead of sent.
        """
        request = UpstreamRequest(
            "POST",
            url,
            upstream_headers(ex, t, key),
            adapter.body,
            connect_timeout_s=t.timeouts.connect,
            tls_verify=t.tls_verify,
        )
        started = trio.current_time()
        committed = False
        relay: FramedRelay | ConvertingRelay | None = None  # made once a stream starts
        with trio.CancelScope(deadline=started + t.timeouts.first_byte) as first_byte:
            try:
                async with self.upstream.stream(request) as resp:
                    if not 200 <= resp.status_code < 300:
                        data = await _read_capped(resp, ERROR_BODY_CAP)
                        said = FORMATS[t.format].read_error(resp.status_code, data)
                        return classify_status(
                            t.name, resp.status_code, said, resp.headers, adapter.redactor
                        )
                    if not call.stream:
                        data = await _read_body(resp, t.timeouts.idle)
                        first_byte.deadline = math.inf
                        ex.upstream_wait_s += trio.current_time() - started
                        if collect is not None:
                            collect.append(data)
                            return None
                        answer = await off_loop(
                            len(data), functools.partial(adapter.response, data)
                        )
                        note_usage(ex, adapter.usage)
                        await ex.respond(resp.status_code, answer, content_type=JSON)
                        return None
                    not_sse = _not_event_stream(resp.headers.get("content-type"))
                    if not_sse:
                        return _not_a_stream(t.name, not_sse)
                    ex.upstream_wait_s += trio.current_time() - started
                    relay = adapter.relay()
                    await ex.start(200, content_type=SSE, headers=_SSE_HEADERS)
                    committed = True
                    try:
                        await self._relay(ex, t, resp, relay, first_byte)
                    finally:  # what the provider reported counts, however the stream ended
                        note_usage(ex, relay.usage)
                    return None
            except ClientGone:
                raise
            except ConnectFailure as exc:
                return connect_failure(t.name, str(exc))
            except trio.TooSlowError:  # a non-streamed body stalled before the status went out
                return timeout_failure(t.name, "idle", t.timeouts.idle)
            except (ProtocolFailure, SSEError) as exc:
                if relay is None or not committed:
                    return Failure(
                        _broken(t.name, str(exc)), retry=True, fallback=True, kind="protocol"
                    )
                await ex.send(relay.error(*_broken_parts(t.name, str(exc))))
                return None
            except Exception as exc:
                # Whatever a provider sends is its fault, never a 500 or a cut stream:
                # before the status, the caller's error; after it, an in-stream error.
                error = _unreadable(t.name, exc)
                if relay is None or not committed:
                    return Failure(error, retry=False, fallback=True, kind="bad_answer")
                await ex.send(relay.error(error.kind, error.status_hint, error.message))
                return None
        # Only the first-byte deadline gets here.
        if relay is not None and committed:
            message = (
                f"Provider {t.name!r} sent no first token within its first_byte "
                f"timeout ({t.timeouts.first_byte:g} s)."
            )
            await ex.send(relay.error(_API, 504, message))
            return None
        return timeout_failure(t.name, "first_byte", t.timeouts.first_byte)

    async def _relay(
        self,
        ex: Exchange,
        t: Transformer,
        resp: httpx.Response,
        relay: FramedRelay | ConvertingRelay,
        first_byte: trio.CancelScope,
    ) -> None:
        """Relay a started stream, idle-bounded, through the adapter's relay."""
        chunks = resp.aiter_bytes().__aiter__()
        first = await self._first_chunk(ex, ex.dialect.name, chunks)
        first_byte.deadline = math.inf
        if first is not None:
            await ex.send(relay.feed(first))
            while not relay.ended:
                with trio.move_on_after(t.timeouts.idle) as idle:
                    try:
                        chunk = await chunks.__anext__()
                    except StopAsyncIteration:
                        break
                if idle.cancelled_caught:
                    message = (
                        f"Provider {t.name!r} went silent for longer than its idle "
                        f"timeout ({t.timeouts.idle:g} s)."
                    )
                    await ex.send(relay.error(_API, 504, message))
                    return
                out = relay.feed(chunk)
                if out:
                    await ex.send(out)
        if not relay.ended:  # after an error event nothing more goes out
            await ex.send(relay.finish())

    async def _keepalive(self, ex: Exchange, fmt: str) -> None:
        """Send ``fmt``'s keep-alive every ``keepalive_s`` until cancelled."""
        while True:
            await trio.sleep(self.keepalive_s)
            # A half-written keep-alive would corrupt the stream: let it finish.
            with trio.CancelScope(shield=True), trio.move_on_after(KEEPALIVE_SEND_S):
                await ex.send(FORMATS[fmt].wire.KEEPALIVE)

    async def _with_keepalives(self, ex: Exchange, fmt: str, wait: Awaitable[T]) -> T:
        """Await ``wait`` while keep-alives go out; its exception comes out unwrapped."""
        outcome: list[Any] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._keepalive, ex, fmt)
            try:
                outcome.append(await wait)
            except Exception as exc:  # re-raised below, outside the nursery's ExceptionGroup
                outcome.append(exc)
            nursery.cancel_scope.cancel()
        if isinstance(outcome[0], Exception):
            raise outcome[0]
        return outcome[0]  # type: ignore[no-any-return]

    async def _first_chunk(self, ex: Exchange, fmt: str, chunks: Any) -> bytes | None:
        """The stream's first bytes, sending keep-alives while they take their time."""
        return await self._with_keepalives(ex, fmt, _next_or_none(chunks))


async def answer_from_mock(ex: Exchange, call: Call, target: Target) -> None:
    """The built-in ``mock`` provider: a deterministic answer in the client's own format."""
    if call.op == "count_tokens":
        count = await off_loop(call.size, functools.partial(estimated_count, call))
        await ex.respond_json(200, count, headers=_ESTIMATED)
        return
    client = FORMATS[call.fmt]
    parse = functools.partial(client.parse_request, call.body, model=call.model, stream=call.stream)
    req, _notes = await off_loop(call.size, parse)
    if not call.stream:
        resp = mock_response(req, model=target.upstream_model)
        note_usage(ex, resp.usage)
        # dumps_body: a lone surrogate the client sent goes back as the same escape.
        answer = dumps_body(client.render_response(resp, model=call.model))
        await ex.respond(200, answer, content_type=JSON)
        return
    renderer = client.stream_renderer(call.model, include_usage=req.include_usage)
    await ex.start(200, content_type=SSE, headers=_SSE_HEADERS)
    for event in mock_stream(req, model=target.upstream_model):
        if isinstance(event, (MessageStart, UsageUpdate)):
            note_usage(ex, event.usage)
        await ex.send(renderer.render(event))
    await ex.send(renderer.finish())


# -- pure helpers ------------------------------------------------------------------------------


def note_usage(ex: Exchange, usage: Usage | None) -> None:
    """Put the provider's reported usage on the access-log line (and so in the metrics)."""
    if usage is not None:
        record = call_record(ex)
        record.tokens_in = clamp_tokens(usage.input_tokens)
        record.tokens_out = clamp_tokens(usage.output_tokens)


def estimated_count(call: Call) -> dict[str, int]:
    """The gateway's own token count for a count-tokens call, in the client's format."""
    fmt = FORMATS[call.fmt]
    body = fmt.wire.count_request(call.body)
    req, _notes = fmt.parse_request(body, model=call.model, stream=False)
    return fmt.wire.count_answer(estimate_input_tokens(req))


async def _next_or_none(chunks: Any) -> bytes | None:
    try:
        return await chunks.__anext__()  # type: ignore[no-any-return]
    except StopAsyncIteration:
        return None


_API = ErrorKind.API_ERROR
_ESTIMATED = [(b"x-gateway-token-count", b"estimated")]
_SSE_HEADERS = [(b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


def _broken(provider: str, detail: str) -> UpstreamError:
    return UpstreamError(f"The connection to provider {provider!r} broke: {detail}.")


def _broken_parts(provider: str, detail: str) -> tuple[ErrorKind, int, str]:
    return _API, 502, f"The connection to provider {provider!r} broke: {detail}."


def _unreadable(provider: str, exc: Exception) -> GatewayError:
    """The client's error for a provider answer our code could not handle."""
    if isinstance(exc, GatewayError):
        return UpstreamError(f"Provider {provider!r}: {exc.message}")
    LOG.warning("provider %r sent an answer that broke its reader", provider, exc_info=exc)
    return UpstreamError(
        f"Provider {provider!r} sent an answer the gateway could not read ({type(exc).__name__})."
    )


#: Media types a provider may label an event stream with (absent is accepted too).
_SSE_TYPES = frozenset({"text/event-stream", "text/plain", "application/octet-stream"})


def _not_event_stream(content_type: str | None) -> str:
    """The media type of a streamed 2xx answer that is not an event stream, else ""."""
    if not content_type:
        return ""
    media = content_type.split(";", 1)[0].strip().lower()
    return "" if media in _SSE_TYPES else media[:100]


def _not_a_stream(provider: str, media: str) -> Failure:
    return Failure(
        UpstreamError(
            f"Provider {provider!r} answered a streaming request with {media!r} "
            "instead of an event stream."
        ),
        retry=False,
        fallback=True,
        kind="not_a_stream",
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


#: What a forwarded header value may hold: visible ASCII, spaces and tabs (RFC 9110 §5.5
#: without obs-text). Bytes >= 0x80 have no agreed encoding and httpx refuses them.
_HEADER_VALUE = re.compile(rb"[\t\x20-\x7e]*")


def _header_text(value: bytes, what: str) -> str:
    """A client value we forward in a header, as text; a 400 naming it when it cannot be."""
    if _HEADER_VALUE.fullmatch(value) is None:
        raise BadRequest(
            f"The {what} holds bytes other than visible ASCII characters "
            "(control characters or bytes >= 0x80); send it as plain ASCII."
        )
    return value.decode("ascii").strip()


def client_credential_if_forwarded(ex: Exchange, targets: tuple[Target, ...]) -> str | None:
    """The client's credential when one of ``targets`` forwards it upstream, else None."""
    if any(target.transformer.forward_client_key for target in targets):
        return client_credential(ex)
    return None


def client_credential(ex: Exchange) -> str | None:
    """The client's own credential, from whichever header or parameter its SDK uses.

    Raises BadRequest when the credential is not plain ASCII (it goes into a header).
    """
    auth = ex.request.header(b"authorization")
    if auth and auth[:7].lower() == b"bearer ":
        return _header_text(auth[7:], "Authorization header")
    for name in (b"x-api-key", b"x-goog-api-key"):
        value = ex.request.header(name)
        if value:
            return _header_text(value, f"{name.decode()} header")
    for part in ex.request.query.split("&"):
        if part.startswith("key="):
            return _header_text(part[4:].encode("latin-1"), "key query parameter")
    return None


def upstream_headers(ex: Exchange, t: Transformer, key: str | None) -> list[tuple[str, str]]:
    """Headers towards ``t`` (design.md, "Headers towards a provider").

    The client headers its format forwards (its wire's ``FORWARDED_HEADERS``:
    ``anthropic-version``, ``anthropic-beta``, ``OpenAI-Beta``) go only as plain
    ASCII: anything else is a 400 naming the header.
    """
    headers = [
        ("content-type", "application/json"),
        ("accept-encoding", "identity"),
        ("x-request-id", ex.request.request_id),
    ]
    for forwarded in FORMATS[t.format].wire.FORWARDED_HEADERS:
        value = ex.request.header(forwarded.name.encode("ascii"))
        if value:
            headers.append((forwarded.name, _header_text(value, forwarded.label)))
        elif forwarded.default is not None:
            headers.append((forwarded.name, forwarded.default))
    headers.extend((k, v) for k, v in t.headers if k.lower() not in _HOP_BY_HOP)
    if key:
        name, prefix = t.key_header_parts()
        headers.append((name, prefix + key))
    return headers


def upstream_url(t: Transformer, call: Call, model: str) -> str:
    """``base_url`` plus the format's path (design.md, Routing) and the file's query.

    The model is one percent-encoded path segment (gateway.urls, in the format's
    wire): a client's model name can never reach another path or change the query.
    """
    path, extra = FORMATS[t.format].wire.upstream_target(
        model, stream=call.stream, count_tokens=call.op == "count_tokens"
    )
    query = [*t.query, *extra]
    url = t.base_url + path
    if query:
        url += ("&" if "?" in url else "?") + urlencode(query)
    return url


async def _read_capped(resp: httpx.Response, cap: int) -> bytes:
    data = bytearray()
    async for chunk in resp.aiter_bytes():
        data += chunk
        if len(data) >= cap:
            break
    return bytes(data[:cap])


async def _read_body(resp: httpx.Response, idle_s: float) -> bytes:
    data = bytearray()
    chunks = resp.aiter_bytes().__aiter__()
    while True:
        with trio.fail_after(idle_s):
            try:
                chunk = await chunks.__anext__()
            except StopAsyncIteration:
                return bytes(data)
        data += chunk
        if len(data) > RESPONSE_BODY_CAP:
            raise ProtocolFailure(f"the answer exceeded {RESPONSE_BODY_CAP} bytes")
