"""Linear, C-speed looks at a JSON body's bytes before it is decoded.

Theory of operation: decoding is where a body's cost hides. ``json.loads``
turns 28 MiB of ``{},`` into 10 million dicts (839 MiB), and a body nested
100,000 deep into a RecursionError. Both are visible in the bytes at C speed
(``bytes.count``, ``re``, ``bytes.translate``; no Python loop per byte):

* :func:`estimate_memory` prices a body once decoded from its length and the
  counts of ``{``, ``[``, ``,`` and ``"``. The weights come from tracemalloc
  peaks of ``json.loads`` on CPython 3.11 over 19 shapes (empty dicts and
  lists, small and big ints, floats, short, unique and escaped strings,
  one-key dicts with unique keys, chat messages, nested mixes): the estimate
  is 1.0-4x the measured peak on each (up to 9x for arrays of tiny strings,
  which CPython shares: cautious). Decoding a big string peaks at twice its
  bytes, hence two per byte.
* :func:`json_depth_over` tells whether nesting exceeds a limit. Everything
  but brackets and quotes is deleted (``translate``, after escaped
  backslashes and quotes were cut out of the body), string contents are cut
  out (brackets in strings do not nest), then pairs ``{}`` / ``[]`` are
  removed a layer per ``replace`` (ordinary bodies vanish in ~20 short
  passes); a text that does not empty within ``limit`` replaces, or peels
  slowly, gets an exact running sum (``itertools.accumulate`` over a signed
  memoryview, 1 MiB per step).
"""

from __future__ import annotations

import re
from itertools import accumulate

__all__ = ["DEFAULT_MAX_JSON_DEPTH", "estimate_memory", "json_depth_over"]

DEFAULT_MAX_JSON_DEPTH = 64

#: The escapes ``\\`` and ``\"``, matched left to right as the decoder reads them (in
#: ``\\\"`` both pairs go; in ``\\"`` the quote stays and closes its string); one
#: ``re`` pass is ~3x quicker than two ``bytes.replace`` of two-byte needles.
_QUOTING_ESCAPE = re.compile(rb'\\[\\"]')
#: Every byte but brackets and quotes: deleted by ``translate``.
_INSIGNIFICANT = bytes(range(256)).translate(None, b'[]{}"')
#: Bracket texts larger than this must shrink quickly under peeling, or be counted exactly.
_PEEL_BYTES = 64 << 10
#: Every byte but the four :func:`estimate_memory` counts.
_UNCOUNTED = bytes(range(256)).translate(None, b'{[,"')
#: Opening brackets to +1, closing ones to -1 (0xff read as a signed char).
_SIGNS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
#: Bytes per step of the exact count: each step is one short C call, so a worker
#: thread running this lets the event loop have the GIL between steps.
_STEP = 1 << 20

# Bytes of memory per occurrence, once decoded (see the module docstring).
_PER_BYTE = 2
_PER_OBJECT = 224  # a dict (184 bytes with a few keys), its slot in the parent
_PER_ARRAY = 64  # a list, its slot in the parent
_PER_COMMA = 40  # a further element or member: a slot and a boxed scalar
_PER_QUOTE = 32  # half a string object's header


def estimate_memory(raw: bytes) -> int:
    """Bytes of memory ``raw`` will cost once decoded and handled (an estimate)."""
    # Past a few KiB, one pass keeps the four counted bytes; counting them is then cheap.
    counted = raw if len(raw) < 4096 else raw.translate(None, _UNCOUNTED)
    return (
        _PER_BYTE * len(raw)
        + _PER_OBJECT * counted.count(b"{")
        + _PER_ARRAY * counted.count(b"[")
        + _PER_COMMA * counted.count(b",")
        + _PER_QUOTE * counted.count(b'"')
    )


def json_depth_over(raw: bytes, limit: int) -> bool:
    """True when arrays and objects in ``raw`` nest deeper than ``limit``.

    ``raw`` need not be valid JSON: unbalanced brackets give some answer, and
    the decoder reports the syntax error after.
    """
    if b"\\" in raw:  # escapes go before anything is deleted (see _outside_strings)
        raw = _QUOTING_ESCAPE.sub(b"", raw)
    text = raw.translate(None, _INSIGNIFICANT)  # one more pass; the rest is small
    if text.count(b"[") + text.count(b"{") <= limit:
        return False
    brackets = _outside_strings(text)
    # A replace of "{}" (or "[]") removes the innermost pairs of its kind, lowering the
    # nesting by at most one; two in turn lower it by at least one. So emptied within
    # ``limit`` replaces means no deeper than the limit. Ordinary bodies (nesting ~10)
    # vanish in ~20 short C passes; anything else (deeper, unbalanced, or a big text
    # peeling slowly: an adversarial shape) is settled by the exact count below.
    rest = brackets
    for done in range(2 * limit):
        if not rest:
            return False if done <= limit else _deeper_exactly(brackets, limit)
        size = len(rest)
        rest = rest.replace(b"{}" if done % 2 == 0 else b"[]", b"")
        if size > _PEEL_BYTES and done % 2 == 1 and len(rest) > size * 0.9:
            return _deeper_exactly(brackets, limit)
    return _deeper_exactly(brackets, limit)  # also tells unbalanced (invalid) text apart


def _deeper_exactly(brackets: bytes, limit: int) -> bool:
    """The exact answer for brackets outside strings: a running sum, 1 MiB a step."""
    signs = brackets.translate(_SIGNS)
    level = 0
    for start in range(0, len(signs), _STEP):
        step = signs[start : start + _STEP]
        if max(accumulate(memoryview(step).cast("b"), initial=level)) > limit:
            return True
        level += len(step) - 2 * step.count(b"\xff")
    return False


def _outside_strings(text: bytes) -> bytes:
    """``text`` (only ``[]{}"`` left in it, escapes already removed) without what string
    literals held.

    The caller removes ``\\\\`` and ``\\"`` escapes from the *whole* body first:
    once the letters are gone, the backslash of ``\\n`` would sit next to the one of
    a following ``\\"`` and read as an escaped backslash. Every quote left then opens
    or closes a string, so the even pieces between quotes are the text outside
    strings. Two adjacent quotes (an empty string, or one string's end and the next
    one's start) enclose nothing: removing them first leaves every other byte on the
    same side of a string boundary, so strings without brackets (nearly all) vanish
    in C, and the split makes an object only per string that held a bracket.
    """
    text = text.replace(b'""', b"")
    if b'"' not in text:
        return text
    return b"".join(text.split(b'"')[::2])
