"""Linear, C-speed looks at a JSON body's bytes before it is decoded.

Theory of operation: decoding is where a body's cost hides. ``json.loads``
turns 28 MiB of ``{},`` into 10 million dicts (839 MiB), and a body nested
100,000 deep into a RecursionError (or, on a thread with a small C stack, a
crash). Both are visible in the bytes at C speed (``bytes.translate``,
``bytes.count``, the C escape codec; no Python loop per byte):

* :func:`estimate_memory` prices a body once decoded from its length and the
  counts of ``{``, ``[``, ``,`` and ``"``. The weights come from tracemalloc
  peaks of ``json.loads`` on CPython 3.11 over 19 shapes (empty dicts and
  lists, small and big ints, floats, short, unique and escaped strings,
  one-key dicts with unique keys, chat messages, nested mixes): the estimate
  is 1.0-4x the measured peak on each (up to 9x for arrays of tiny strings,
  which CPython shares: cautious). Decoding a big string peaks at twice its
  bytes, hence two per byte.
* :func:`json_depth_over` tells whether nesting exceeds a limit, in three
  steps. (1) :func:`_structure` keeps the quotes that delimit strings and
  the brackets, in three C passes: a ``translate`` keeps only brackets,
  quotes, backslashes and the letters an escape can hold (``/bfnrtu``),
  mapped into an alphabet in which the C codec behind
  ``codecs.escape_decode`` reads every JSON escape as one escape of its own
  (a quote becomes a newline, so an escaped quote is a line continuation and
  vanishes; every other escape becomes a control byte); that codec pairs
  backslashes left to right as the decoder does; a second ``translate``
  drops all but quotes and brackets. (2) :func:`_outside_strings` cuts out
  what string literals held (brackets in strings do not nest). (3) Pairs
  ``{}`` / ``[]`` are removed a layer per ``replace`` (ordinary bodies
  vanish in ~20 short passes); a text that does not empty within ``limit``
  replaces, or peels slowly, gets an exact running sum
  (``itertools.accumulate`` over a signed memoryview). A small body with no
  more opening brackets than the limit is settled by two counts. Big bodies
  go through every step in 1 MiB pieces, each one short C call, so a worker
  thread running this lets the event loop have the GIL between them.

Deleting bytes before escapes are read would be wrong: the backslash of a
deleted ``\\n`` would pair with the next ``\\"`` and turn strings inside out.
Here every byte an escape of valid JSON holds is kept, so backslashes pair as
the decoder pairs them. Invalid JSON gets some answer, and the decoder
reports the syntax error after; up to its first error, which is as far as
the decoder reads, the scan is exact, so the decoder never nests deeper than
the scan allowed. A 120 KB agent body costs ~110 µs here (``json.loads``:
~240 µs), half of it the first pass.
"""

from __future__ import annotations

from _codecs import escape_decode  # codecs.escape_decode, the C codec pickle's text protocol uses
from itertools import accumulate

__all__ = ["DEFAULT_MAX_JSON_DEPTH", "estimate_memory", "json_depth_over"]

DEFAULT_MAX_JSON_DEPTH = 64

#: What the first pass keeps: brackets, quotes, backslashes and every letter that can follow
#: a backslash in JSON (``\\/`` ``\\b`` ``\\f`` ``\\n`` ``\\r`` ``\\t`` ``\\uXXXX``).
_ESCAPABLE = b'"\\[]{}/bfnrtu'
_NOT_ESCAPABLE = bytes(range(256)).translate(None, _ESCAPABLE)
#: ...mapped so that ``escape_decode`` sees only escapes it knows: ``\\<newline>`` (an escaped
#: quote: removed), ``\\\\`` (one backslash), ``\\a`` (any letter escape: byte 7); a lone ``"``
#: stays a newline and brackets stay the letters ``bfrt`` (after a backslash only in invalid JSON).
_TO_CODEC = bytes.maketrans(_ESCAPABLE, b"\n\\bfrtaaaaaaa")
#: The second pass: newlines and ``bfrt`` back to quotes and brackets, everything else out.
_FROM_CODEC = bytes.maketrans(b"\nbfrt", b'"[]{}')
_NOT_STRUCTURE = bytes(range(256)).translate(None, b"\nbfrt")
#: Bodies up to this size may be settled by counting their opening brackets.
_SMALL = 4096
#: Bracket texts larger than this must shrink quickly under peeling, or be counted exactly.
_PEEL_BYTES = 64 << 10
#: Every byte but the four :func:`estimate_memory` counts.
_UNCOUNTED = bytes(range(256)).translate(None, b'{[,"')
#: Opening brackets to +1, closing ones to -1 (0xff read as a signed char).
_SIGNS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
#: Bytes per step of the scans of big bodies: each step is a few short C calls, so a worker
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
    counted = raw if len(raw) < _SMALL else raw.translate(None, _UNCOUNTED)
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
    if len(raw) <= _SMALL and raw.count(b"[") + raw.count(b"{") <= limit:
        return False  # brackets in strings only add to the count
    text = _structure(raw)
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


def _structure(raw: bytes) -> bytes:
    """The quotes that open or close strings and every bracket of ``raw``, in order.

    Three C passes per 1 MiB piece (see the module docstring). An odd run of
    backslashes at the end of a piece escapes the first byte of the next: its last
    backslash moves on with it. One left at the very end (invalid JSON) is dropped.
    """
    pieces = []
    carry = b""
    for start in range(0, len(raw), _STEP):
        kept = carry + raw[start : start + _STEP].translate(_TO_CODEC, _NOT_ESCAPABLE)
        carry = b""
        if (len(kept) - len(kept.rstrip(b"\\"))) % 2:
            kept, carry = kept[:-1], b"\\"
        pieces.append(escape_decode(kept)[0].translate(_FROM_CODEC, _NOT_STRUCTURE))
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


def _outside_strings(text: bytes) -> bytes:
    """``text`` (only brackets and the quotes that delimit strings) without what string
    literals held.

    Every quote opens or closes a string, so the even pieces between quotes are
    the text outside strings. Two adjacent quotes (an empty string, or one string's
    end and the next one's start) enclose nothing: removing them first leaves every
    other byte on the same side of a string boundary, so strings without brackets
    (nearly all) vanish in C, and the split makes an object only per string that
    held a bracket. Big texts go 1 MiB at a time, carrying whether a string is open.
    """
    kept = []
    inside = False
    for start in range(0, len(text), _STEP):
        piece = text[start : start + _STEP].replace(b'""', b"")
        if b'"' not in piece:
            if not inside:
                kept.append(piece)
            continue
        parts = piece.split(b'"')
        kept.extend(parts[1::2] if inside else parts[::2])
        inside ^= len(parts) % 2 == 0  # an odd number of quotes flips the side
    return b"".join(kept)


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
