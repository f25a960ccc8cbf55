"""What a conversation's next request shares with its last one, parsed and rendered once.

Theory of operation: a coding agent (Claude Code, Cursor, Aider...) resends its whole
conversation on every turn: the same system prompt, the same tool list with its JSON
schemas, every earlier message, plus the one or two new messages of this turn. Converting
that history again costs time in proportion to the whole conversation, for the same result.

A :class:`Memo` remembers, per client format, the *raw* JSON of recent conversations'
messages next to what the parser made of each of them (a :class:`Message` with its notes).
A request that starts like a remembered conversation reuses the parse of every leading
message that is equal (``==`` on the decoded JSON, done in C) to the remembered one and
parses only the rest; so an unchanged message is the same :class:`Message` object from one
request to the next, and renderers reuse its rendering (:meth:`Memo.rendered`). Renderings
that cost more than a comparison (Gemini's cleaning of tool schemas) are reused for an
equal tool list of the same conversation (:meth:`Memo.rendered_tools`). Tool lists are not
remembered otherwise: for the other formats parsing them is cheaper than comparing them
(the schemas pass by reference, a comparison walks them).

The parsers and renderers stay pure: the memo only ever hands back what the same pure
function returned for an equal input (notes included), so a request converts to the body it
would without one (tests/convert/test_memo.py checks that). What it keeps is bounded by the
size of the bodies it came from (``max_bytes`` in total, the least recently used
conversation goes first, none over a quarter of it); short conversations are not kept
(``min_messages``). Renderings are kept with their conversation and go with it; renderings
of messages merged anew on every request are not kept.

Two consequences of ``==`` on decoded JSON, both accepted because clients resend history
verbatim: Python holds ``1 == 1.0 == True``, so a resent message that differs from the
remembered one *only* by such a swap (``true`` where ``1`` was) reuses the remembered parse;
and ``==`` ignores the order of an object's keys (JSON objects are unordered), so a resent
tool input (or, rendered for Gemini, tool schema) with its keys reordered keeps the
remembered order.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["Memo"]

#: A parse of one raw message: ``(Message, notes)``.
Parsed = tuple[Any, Any]


class _Conversation:
    __slots__ = ("parsed", "raw", "renders", "size", "tools")

    def __init__(self, raw: Sequence[Any], parsed: list[Parsed], size: int) -> None:
        self.raw = raw
        self.parsed = parsed
        self.size = size
        #: ``{(format, id(message)): (message, rendering)}`` for messages in ``parsed``.
        self.renders: dict[tuple[str, int], tuple[Any, Any]] = {}
        #: ``{format: (parsed tools, rendering)}``.
        self.tools: dict[str, tuple[Any, Any]] = {}


def _opening(raw: Sequence[Any]) -> Any:
    """A hashable digest of a conversation's first two messages (equality is checked after).

    Two, because an OpenAI client's first message is its system prompt, the same in all of
    its conversations.
    """
    return tuple(_fingerprint(m) for m in raw[:2])


def _fingerprint(message: Any) -> Any:
    """A hashable digest of one message."""
    if isinstance(message, dict):
        out = []
        for key, value in message.items():
            if isinstance(value, (str, int, float, bool)) or value is None:
                out.append((key, value))
            elif isinstance(value, list):
                out.append((key, len(value), *(_shallow(v) for v in value[:4])))
            else:
                out.append((key, _shallow(value)))
        return tuple(out)
    return _shallow(message)


def _shallow(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(
            (k, v) for k, v in value.items() if isinstance(v, (str, int, float, bool)) or v is None
        )
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return type(value).__name__


class Memo:
    """Recent conversations' parsed history and renderings; see the module docstring.

    Not thread-safe: one per process, used from the event loop (Trio runs one task at a time).
    """

    def __init__(
        self,
        *,
        max_bytes: int = 16 << 20,
        min_messages: int = 6,
    ) -> None:
        self.max_bytes = max_bytes
        self.min_messages = min_messages
        self._conversations: OrderedDict[tuple[str, Any], _Conversation] = OrderedDict()
        self._bytes = 0
        #: ``id(message) -> the kept conversation whose parse holds it``.
        self._owner: dict[int, _Conversation] = {}
        #: Counters for tests and benchmarks: messages parsed anew and reused.
        self.parsed = 0
        self.reused = 0

    @property
    def held_bytes(self) -> int:
        """The body bytes behind the conversations held now (what ``max_bytes`` bounds)."""
        return self._bytes

    def messages(
        self,
        fmt: str,
        raw: Sequence[Any],
        parse: Callable[[int, Any, list[Parsed]], Parsed],
        *,
        size: int,
    ) -> list[Parsed]:
        """``[parse(i, raw[i], earlier) for each i]``, reusing a remembered conversation's.

        Args:
            fmt: the client's format (one memo serves all three).
            raw: the body's message list, as decoded.
            parse: parses message ``i``; ``earlier`` holds the parses of messages ``< i``
                (for parsers whose result depends on earlier turns). It must be a pure
                function of its arguments.
            size: the size of the body ``raw`` came from, in bytes (what a kept
                conversation is charged); 0 (unknown) reuses but never keeps.
        """
        parsed: list[Parsed] = []
        short = len(raw) < self.min_messages  # not worth a look-up: parsed, and not kept
        key = None if short else (fmt, _opening(raw))
        known = None if key is None else self._conversations.get(key)
        if known is not None:
            old = known.raw
            for i in range(min(len(old), len(raw))):
                if not (old[i] is raw[i] or old[i] == raw[i]):
                    break
                parsed.append(known.parsed[i])
        reused = len(parsed)
        for i in range(reused, len(raw)):
            parsed.append(parse(i, raw[i], parsed))
        if key is not None:
            self.reused += reused
            self.parsed += len(raw) - reused
            self._keep(key, known, raw, parsed, size)
        return parsed

    def _keep(
        self,
        key: tuple[str, Any],
        known: _Conversation | None,
        raw: Sequence[Any],
        parsed: list[Parsed],
        size: int,
    ) -> None:
        if not 0 < size <= self.max_bytes // 4:
            if known is not None:  # not worth keeping; what is kept stays as it was
                self._conversations.move_to_end(key)
            return
        conv = _Conversation(raw, parsed, size)
        owner = self._owner
        for message, _ in parsed:
            owner[id(message)] = conv
        if known is not None:
            del self._conversations[key]
            self._bytes -= known.size
            self._release(known)
            conv.renders = {k: v for k, v in known.renders.items() if owner.get(k[1]) is conv}
            conv.tools = known.tools
        self._conversations[key] = conv
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, gone = self._conversations.popitem(last=False)
            self._bytes -= gone.size
            self._release(gone)

    def _release(self, conv: _Conversation) -> None:
        """Forget which messages ``conv`` holds (those a newer entry took over stay)."""
        owner = self._owner
        for message, _ in conv.parsed:
            if owner.get(id(message)) is conv:
                del owner[id(message)]

    def _conversation(self, messages: Sequence[Any]) -> _Conversation | None:
        """The kept conversation a request's canonical ``messages`` belong to, if any.

        Its first message may have been merged anew; its last was newly kept (unless merged).
        """
        if not messages:
            return None
        owner = self._owner
        return owner.get(id(messages[0])) or owner.get(id(messages[-1]))

    def keeps(self, messages: Sequence[Any]) -> bool:
        """Whether a request's canonical ``messages`` belong to a conversation kept here."""
        return self._conversation(messages) is not None

    def rendered(self, fmt: str, message: Any, render: Callable[[Any], Any]) -> Any:
        """``render(message)``, reused when ``message`` (the same object) was rendered for
        ``fmt`` before: :meth:`messages` hands out the same :class:`Message` objects for a
        conversation's unchanged history, so each is rendered once while it is kept.

        Messages the memo does not hold (merged anew, or from a conversation not kept) are
        rendered and not kept. ``render`` must be a pure function of ``message``; its result
        is shared, so callers must not modify it.
        """
        conv = self._owner.get(id(message))
        if conv is None:
            return render(message)
        key = (fmt, id(message))
        known = conv.renders.get(key)
        if known is not None:
            return known[1]
        result = render(message)
        conv.renders[key] = (message, result)
        return result

    def rendered_tools(
        self, fmt: str, messages: Sequence[Any], tools: Any, render: Callable[[Any], Any]
    ) -> Any:
        """``render(tools)`` for a request's parsed tool list, reused for an equal list that
        the same conversation rendered for ``fmt`` before.

        For renderings that cost more than comparing (``==`` on parsed tools walks their
        JSON schemas in C): Gemini's schema cleaning. ``messages`` are the request's
        canonical messages, which name the conversation (nothing is kept for a request whose
        conversation is not kept). The result is shared: callers must not modify it.
        """
        conv = self._conversation(messages)
        if conv is None:
            return render(tools)
        known = conv.tools.get(fmt)
        if known is not None and (known[0] is tools or known[0] == tools):
            return known[1]
        result = render(tools)
        conv.tools[fmt] = (tools, result)
        return result
