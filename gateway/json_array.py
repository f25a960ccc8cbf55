"""Gemini's ``alt=json`` streaming: the SSE events of a stream, written as one JSON array.

``streamGenerateContent`` without ``alt`` (or with ``alt=json``, the default) is
answered by Gemini with a JSON array sent element by element
(``[{...}\\r\\n,{...}\\r\\n]``), not with server-sent events; google-genai asks for
``alt=sse``, but REST clients and curl users get the array. The gateway always
asks providers for SSE and renders the client's stream as SSE everywhere
(relays, converters, emulated streams, the mock, in-stream errors, keep-alives),
so this is one translation at the edge: :class:`JsonArrayExchange` stands in
for the request's :class:`~gateway.server.exchange.Exchange` and turns each
whole event's data (one ``GenerateContentResponse``, or an in-stream
``{"error": ...}``) into the next array element.

Keep-alives stay what they are for Gemini clients, a bare line end: whitespace
is valid JSON between elements (and before the ``[``), so they never break the
array. Whatever the handler sends goes through an :class:`~gateway.sse.SSEDecoder`,
whose limits bound the memory of one event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.server.responses import JSON, Headers
from gateway.sse import Event, SSEDecoder

if TYPE_CHECKING:
    from gateway.server.exchange import Exchange

__all__ = ["JsonArrayExchange"]

_OWN = frozenset({"_ex", "_decoder", "_opened", "_closed"})
_WHITESPACE = b" \t\r\n"


class JsonArrayExchange:
    """An Exchange whose streamed body (SSE events) goes out as one JSON array.

    Everything but :meth:`start`, :meth:`send` and :meth:`close` is the wrapped
    exchange's own (reads and writes of its attributes pass through), so a
    whole response (an error before the stream started) is sent unchanged.
    Call :meth:`close` after the handler: it writes the closing ``]``.
    """

    __slots__ = tuple(_OWN)
    _ex: Exchange
    _decoder: SSEDecoder
    _opened: bool
    _closed: bool

    def __init__(self, ex: Exchange) -> None:
        object.__setattr__(self, "_ex", ex)
        object.__setattr__(self, "_decoder", SSEDecoder())
        object.__setattr__(self, "_opened", False)
        object.__setattr__(self, "_closed", False)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ex, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _OWN:
            object.__setattr__(self, name, value)
        else:
            setattr(self._ex, name, value)

    async def start(
        self, status: int, *, content_type: bytes, headers: Headers | None = None
    ) -> None:
        """The head of the array stream: JSON, whatever the SSE producer asked for."""
        await self._ex.start(status, content_type=JSON, headers=headers)

    def _array(self, events: list[Event]) -> list[bytes]:
        out = []
        for event in events:
            if not event.data:
                continue
            out.append(b"," if self._opened else b"[")
            out.append(event.data.encode("utf-8"))
            out.append(b"\r\n")
            self._opened = True
        return out

    def elements(self, data: bytes) -> bytes:
        """Array bytes for SSE bytes: each event's data is the next element."""
        out = self._array(self._decoder.feed(data))
        if not out and data and not data.strip(_WHITESPACE):
            return data  # a keep-alive: whitespace is fine anywhere in the array
        return b"".join(out)

    async def send(self, data: bytes) -> None:
        if self._closed:
            return
        out = self.elements(data)
        if out:
            await self._ex.send(out)

    async def close(self) -> None:
        """Finish the array (``]``, or ``[]`` when nothing came) if the stream started."""
        if self._closed or not self._ex.started:
            return
        self._closed = True
        out = self._array(self._decoder.close())  # an event missing its blank line
        out.append(b"]" if self._opened else b"[]")
        await self._ex.send(b"".join(out))
