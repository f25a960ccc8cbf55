"""What a conversation's next request shares with its last one, parsed and rendered once.

Theory of operation: a coding agent (Claude Code, Cursor, Aider...) resends its whole
conversation on every turn: the same system prompt, the same tool list with its JSON
schemas, every earlier message, plus the one or two new messages of this turn. Converting
that history again costs time in proportion to the whole conversation, for the same result.

A :class:`Memo` remembers, per client format, a *mark* of each message of recent
conversations (its exact serialisation, :func:`mark`) next to what the parser made of it (a
:class:`Message` with its notes). A request that starts like a remembered conversation
reuses the parse of every leading message whose mark is the remembered one and parses only
the rest; so an unchanged message is the same :class:`Message` object from one request to
the next, and renderers reuse its rendering (:meth:`Memo.rendered`). Renderings that cost
more than a comparison (Gemini's cleaning of tool schemas) are reused for an exactly equal
tool list of the same conversation (:meth:`Memo.rendered_tools`). Tool lists are not
remembered otherwise: for the other formats parsing them is cheaper than comparing them
(the schemas pass by reference, a comparison walks them).

The parsers and renderers stay pure: the memo only ever hands back what the same pure
function returned for an *identical* input (notes included), so a request converts to the
body it would without one (tests/convert/test_memo.py checks that). Identical, not ``==``:
Python holds ``1 == 1.0 == True`` and ``==`` ignores the order of an object's keys, and
either would leak into the output (a tool input's ``true`` sent on as ``1``, its keys in
the first request's order). A mark is ``marshal.dumps(message, 2)`` (format 2 has no
back-references, so the bytes depend on the value only): C speed, a few times the cost of
``==``, and it tells ``1``, ``1.0`` and ``True`` apart and keeps key order.

What it keeps is bounded by an estimate of the *memory* it holds (``max_bytes`` in total,
the least recently used conversation goes first, none over a quarter of it): a parsed
conversation costs 10-40 times its body bytes (every JSON object becomes a dict, every part
an object, renderings add their own), so :func:`estimate` charges each message its mark's
length and a price per object in it. Short conversations are not kept (``min_messages``).
Renderings are kept with their conversation and go with it; renderings of messages merged
anew on every request are not kept.

Thread-safe: conversions of large bodies run in worker threads (gateway.proxy.adapters), so the
bookkeeping is done under a lock; parsing and rendering, the slow part, happen outside it.
"""

from __future__ import annotations

import marshal
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["Memo", "estimate", "mark"]

#: A parse of one raw message: ``(Message, notes)``.
Parsed = tuple[Any, Any]

#: Memory estimate per byte of a mark: the message's strings as decoded and as parsed,
#: its marks, and renderings with their JSON text (measured with tracemalloc:
#: tests/hardening/test_07_memo_memory.py).
BYTE_COST = 4
#: Memory estimate per object or array in a mark: a dict or list as decoded, the parse's
#: object for it and its rendering.
OBJECT_COST = 350
#: Memory estimate per message: its entry in the memo's tables, its Message and notes.
MESSAGE_COST = 400


def mark(message: Any) -> bytes | None:
    """The exact serialisation of a decoded JSON message (None: it cannot have one).

    Two messages have the same mark exactly when they are the same JSON value with the
    same types (``1``, ``1.0`` and ``true`` differ) and the same key order.
    """
    try:
        return marshal.dumps(message, 2)
    except (ValueError, RecursionError):  # unmarshallable, or nested past marshal's limit
        return None


def estimate(whole: bytes, messages: int) -> int:
    """The memory a kept conversation holds, roughly (bytes), from the mark of its message
    list (``whole``) and its number of messages.

    Linear and cheap: two ``bytes.count`` passes in C (a ``{`` or ``[`` inside a string
    counts too, which only errs on the safe side).
    """
    objects = whole.count(b"{") + whole.count(b"[")
    return MESSAGE_COST * messages + BYTE_COST * len(whole) + OBJECT_COST * objects


class _Conversation:
    __slots__ = ("marks", "parsed", "renders", "size", "tools")

    def __init__(self, marks: list[bytes], parsed: list[Parsed], size: int) -> None:
        self.marks = marks
        self.parsed = parsed
        self.size = size
        #: ``{(format, id(message)): (message, rendering)}`` for messages in ``parsed``.
        self.renders: dict[tuple[str, int], tuple[Any, Any]] = {}
        #: ``{format: (exact key of the parsed tools, rendering)}``.
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

    Thread-safe: its tables change under a lock, held only for bookkeeping.
    """

    def __init__(
        self,
        *,
        max_bytes: int = 16 << 20,
        min_messages: int = 6,
        cost: Callable[[bytes, int], int] = estimate,
    ) -> None:
        self.max_bytes = max_bytes
        self.min_messages = min_messages
        self._cost = cost
        self._lock = threading.Lock()
        self._conversations: OrderedDict[tuple[str, Any], _Conversation] = OrderedDict()
        self._bytes = 0
        #: ``id(message) -> the kept conversation whose parse holds it``.
        self._owner: dict[int, _Conversation] = {}
        #: Counters for tests and benchmarks: messages parsed anew and reused.
        self.parsed = 0
        self.reused = 0

    @property
    def held_bytes(self) -> int:
        """The estimated memory of the conversations held now (what ``max_bytes`` bounds)."""
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
                (for parsers whose result depends on earlier turns). Called for ascending
                ``i``, it must give what a pure function of its arguments would.
            size: the size of the body ``raw`` came from, in bytes; 0 (unknown) reuses
                but never keeps.
        """
        parsed: list[Parsed] = []
        if len(raw) < self.min_messages:  # not worth a look-up: parsed, and not kept
            for i in range(len(raw)):
                parsed.append(parse(i, raw[i], parsed))
            return parsed
        key = (fmt, _opening(raw))
        with self._lock:
            known = self._conversations.get(key)
            if known is not None:
                self._conversations.move_to_end(key)
        # One mark of the whole list (marshal writes a list as a 5-byte header and its
        # items' marks one after the other, each self-delimiting), matched against the
        # remembered messages' marks in place: exact, and one C call instead of one per
        # message.
        whole = mark(raw) if type(raw) is list else None
        marks: list[bytes] = []
        if known is not None and whole is not None:
            old, offset = known.marks, 5
            for i in range(min(len(old), len(raw))):
                m = old[i]
                if not whole.startswith(m, offset):
                    break
                offset += len(m)
                marks.append(m)
                parsed.append(known.parsed[i])
        reused = len(parsed)
        for i in range(reused, len(raw)):
            parsed.append(parse(i, raw[i], parsed))
        exact = whole is not None
        if exact:
            for i in range(reused, len(raw)):
                item = mark(raw[i])
                if item is None:
                    exact = False
                    break
                marks.append(item)
        with self._lock:
            self.reused += reused
            self.parsed += len(raw) - reused
            if exact and whole is not None and size > 0:
                self._keep(key, known, marks, parsed, self._cost(whole, len(raw)))
        return parsed

    def _keep(
        self,
        key: tuple[str, Any],
        known: _Conversation | None,
        marks: list[bytes],
        parsed: list[Parsed],
        cost: int,
    ) -> None:
        if cost > self.max_bytes // 4:
            return  # not worth keeping; what is kept stays as it was
        conv = _Conversation(marks, parsed, cost)
        owner = self._owner
        for message, _ in parsed:
            owner[id(message)] = conv
        current = self._conversations.pop(key, None)
        if current is not None:
            self._bytes -= current.size
            self._release(current)
            if current is known:  # renderings of the messages taken over stay
                conv.renders = {k: v for k, v in known.renders.items() if owner.get(k[1]) is conv}
                conv.tools = known.tools
        self._conversations[key] = conv
        self._bytes += cost
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
        owner = self._owner  # read without the lock: each look-up is atomic
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
        key = (fmt, id(message))
        # Reads without the lock (each dict look-up is atomic): at worst a rendering goes
        # into a conversation just released, which nothing reads again.
        conv = self._owner.get(id(message))
        known = None if conv is None else conv.renders.get(key)
        if known is not None:
            return known[1]
        result = render(message)
        if conv is not None:
            with self._lock:
                conv.renders.setdefault(key, (message, result))
        return result

    def rendered_tools(
        self, fmt: str, messages: Sequence[Any], tools: Any, render: Callable[[Any], Any]
    ) -> Any:
        """``render(tools)`` for a request's parsed tool list, reused for an identical list
        (same values, types and key order) that the same conversation rendered for ``fmt``.

        For renderings that cost more than comparing (a mark of the parsed tools is made in
        C): Gemini's schema cleaning. ``messages`` are the request's canonical messages,
        which name the conversation (nothing is kept for a request whose conversation is not
        kept). The result is shared: callers must not modify it.
        """
        conv = self._conversation(messages)
        if conv is None:
            return render(tools)
        exact = _tools_mark(tools)
        with self._lock:
            known = conv.tools.get(fmt)
        if exact is not None and known is not None and known[0] == exact:
            return known[1]
        result = render(tools)
        if exact is not None:
            with self._lock:
                conv.tools[fmt] = (exact, result)
        return result


def _tools_mark(tools: Any) -> bytes | None:
    """An exact mark of parsed tools (every field a Tool has; None if it cannot be made)."""
    return mark([(t.name, t.description, t.parameters, t.strict, t.cache_control) for t in tools])
