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
  the brackets (and, for the estimate, commas and escaped quotes), in three
  C passes: a ``translate`` keeps only brackets, commas, quotes, backslashes
  and the letters an escape can hold (``/bfnrtu``), mapped into an alphabet
  in which the C codec behind ``codecs.escape_decode`` reads every JSON
  escape as one escape of its own (an escaped quote becomes a newline, any
  other escape a control byte), pairing backslashes left to right as the
  decoder does; a second ``translate`` keeps what is left of quotes,
  brackets and commas. (2) :func:`_outside_strings` cuts out what string
  literals held (brackets in strings do not nest). (3) Pairs ``{}`` / ``[]``
  are removed a layer per ``replace`` (ordinary bodies vanish in ~20 short
  passes); a text that does not empty within ``limit`` replaces, or peels
  slowly, gets an exact running sum (``itertools.accumulate`` over a signed
  memoryview). A small body with no more opening brackets than the limit is
  settled by two counts. Big bodies go through every step 1 MiB at a time
  (the running sum 64 KiB), each piece a few short C calls, so a worker
  thread running this lets the event loop have the GIL between them (the
  longest hold: ~5 ms on a 32 MiB hostile body).

Deleting bytes before escapes are read would be wrong: the backslash of a
deleted ``\\n`` would pair with the next ``\\"`` and turn strings inside out.
Here every byte an escape of valid JSON holds is kept, so backslashes pair as
the decoder pairs them. Invalid JSON gets some answer, and the decoder
reports the syntax error after; up to its first error (a backslash outside a
string or a bad escape is one), which is as far as the decoder reads, the
scan is exact, so the decoder never nests deeper than the scan allowed.

One pass for both: the server estimates every body as soon as it is read, and
the front end checks its depth right after (on the event loop up to 256 KiB).
For those bodies the estimate counts on the structure text and leaves it, by
the body's identity (at most 8, ~4 MiB), to the depth check. A 120 KB agent
body costs ~110 µs to estimate and ~45 µs more to check (``json.loads``:
~240 µs); before, ~60 µs and ~200 µs.
"""

from __future__ import annotations

from _codecs import escape_decode  # codecs.escape_decode, the C codec pickle's text protocol uses
from itertools import accumulate

__all__ = ["DEFAULT_MAX_JSON_DEPTH", "estimate_memory", "json_depth_over"]

DEFAULT_MAX_JSON_DEPTH = 64

#: What the first pass keeps: brackets, quotes, commas, backslashes and every letter that can
#: follow a backslash in JSON (``\\/`` ``\\b`` ``\\f`` ``\\n`` ``\\r`` ``\\t`` ``\\uXXXX``).
_ESCAPABLE = b'"\\[]{},/bfnrtu'
_NOT_ESCAPABLE = bytes(range(256)).translate(None, _ESCAPABLE)
#: ...mapped so that ``escape_decode`` sees only escapes it knows: a quote is ``n`` (escaped:
#: ``\\n``, a newline), brackets and commas are ``bfrtv`` (escaped only in invalid JSON:
#: control bytes), the letters of escapes ``a`` (``\\a``, byte 7), a backslash stays one.
_TO_CODEC = bytes.maketrans(_ESCAPABLE, b"n\\bfrtvaaaaaaa")
#: The second pass: quotes back to ``"`` (escaped ones to ``'``), brackets and commas back
#: (escaped or not: the memory estimate counts them all), everything else out.
_CODEC_OUT = b"n\nbfrtv\x08\x0c\r\t\x0b"
_FROM_CODEC = bytes.maketrans(_CODEC_OUT, b"\"'[]{},[]{},")
_NOT_CODEC_OUT = bytes(range(256)).translate(None, _CODEC_OUT)
#: What :func:`json_depth_over` drops from that text: escaped quotes and commas.
_NOT_NESTING = b",'"
#: The same, dropped in the second pass already (escaped quotes, commas and escaped commas).
_NOT_NESTING_OUT = bytes(range(256)).translate(None, b"nbfrt\x08\x0c\r\t")
#: Bodies under this size are counted on their own bytes (a depth check may need no more).
_SMALL = 4096
#: Bracket texts larger than this must shrink quickly under peeling, or be counted exactly.
_PEEL_BYTES = 64 << 10
#: Every byte but the four :func:`estimate_memory` counts.
_UNCOUNTED = bytes(range(256)).translate(None, b'{[,"')
#: Opening brackets to +1, closing ones to -1 (0xff read as a signed char).
_SIGNS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
#: The structure texts of bodies up to this size that :func:`estimate_memory` computed are
#: kept (at most this many, by identity) until :func:`json_depth_over` asks for them.
_REMEMBER_BYTES = 256 << 10
_REMEMBER_COUNT = 8
_remembered: dict[int, tuple[bytes, bytes, int]] = {}  # id -> body, text, opening brackets
#: Bytes per step of the scans of big bodies: each step is a few short C calls, so a worker
#: thread running this lets the event loop have the GIL between steps.
_STEP = 1 << 20
#: The exact count's step: a running sum costs ~25 ns a byte, one C call per step.
_SUM_STEP = 64 << 10

# Bytes of memory per occurrence, once decoded (see the module docstring).
_PER_BYTE = 2
_PER_OBJECT = 224  # a dict (184 bytes with a few keys), its slot in the parent
_PER_ARRAY = 64  # a list, its slot in the parent
_PER_COMMA = 40  # a further element or member: a slot and a boxed scalar
_PER_QUOTE = 32  # half a string object's header


def estimate_memory(raw: bytes) -> int:
    """Bytes of memory ``raw`` will cost once decoded and handled (an estimate).

    Bodies of a few KiB to 256 KiB (decoded on the event loop, right after) are
    counted on their structure text, which :func:`json_depth_over` then takes
    instead of computing it again (one pass over the body for both); bigger ones
    on one ``translate`` that keeps the four counted bytes.
    """
    if len(raw) < _SMALL:
        counted = raw
    elif len(raw) > _REMEMBER_BYTES:
        counted = raw.translate(None, _UNCOUNTED)
    else:
        structure = _structure(raw)
        text = structure.translate(None, _NOT_NESTING)
        commas = structure.count(b",")
        escaped_quotes = len(structure) - len(text) - commas
        objects, arrays = text.count(b"{"), text.count(b"[")
        if len(_remembered) >= _REMEMBER_COUNT:  # bodies never decoded: the oldest goes
            _remembered.pop(next(iter(_remembered), 0), None)
        _remembered[id(raw)] = (raw, text, objects + arrays)
        return _weigh(len(raw), objects, arrays, commas, text.count(b'"') + escaped_quotes)
    return _weigh(
        len(raw), counted.count(b"{"), counted.count(b"["), counted.count(b","), counted.count(b'"')
    )


def _weigh(size: int, objects: int, arrays: int, commas: int, quotes: int) -> int:
    return (
        _PER_BYTE * size
        + _PER_OBJECT * objects
        + _PER_ARRAY * arrays
        + _PER_COMMA * commas
        + _PER_QUOTE * quotes
    )


def json_depth_over(raw: bytes, limit: int) -> bool:
    """True when arrays and objects in ``raw`` nest deeper than ``limit``.

    ``raw`` need not be valid JSON: unbalanced brackets give some answer, and
    the decoder reports the syntax error after.
    """
    if len(raw) < _SMALL and raw.count(b"[") + raw.count(b"{") <= limit:
        return False  # brackets in strings only add to the count
    entry = _remembered.pop(id(raw), None)  # estimate_memory's, for this very body
    if entry is not None and entry[0] is raw:
        _, text, opening = entry
    else:
        text = _structure(raw, _NOT_NESTING_OUT)
        opening = sum(p.count(b"[") + p.count(b"{") for p in _pieces(text, _STEP))
    if opening <= limit:
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
        pair = b"{}" if done % 2 == 0 else b"[]"
        if size <= _STEP:
            rest = rest.replace(pair, b"")
        else:  # 1 MiB at a time: a pair cut in two waits for a later pass
            rest = b"".join(piece.replace(pair, b"") for piece in _pieces(rest, _STEP))
        if size > _PEEL_BYTES and done % 2 == 1 and len(rest) > size * 0.9:
            return _deeper_exactly(brackets, limit)
    return _deeper_exactly(brackets, limit)  # also tells unbalanced (invalid) text apart


def _structure(raw: bytes, dropped: bytes = _NOT_CODEC_OUT) -> bytes:
    """The quotes that open or close strings, the escaped ones as ``'``, and every bracket
    and comma of ``raw``, in order.

    Three C passes per 1 MiB piece (see the module docstring). An odd run of
    backslashes at the end of a piece escapes the first byte of the next: its last
    backslash moves on with it. One left at the very end (invalid JSON) is dropped.
    With ``dropped=_NOT_NESTING_OUT``, only unescaped quotes and brackets are left.
    """
    pieces = []
    carry = b""
    for start in range(0, len(raw), _STEP):
        kept = carry + raw[start : start + _STEP].translate(_TO_CODEC, _NOT_ESCAPABLE)
        carry = b""
        if (len(kept) - len(kept.rstrip(b"\\"))) % 2:
            kept, carry = kept[:-1], b"\\"
        decoded = escape_decode(kept)[0] if b"\\" in kept else kept
        pieces.append(decoded.translate(_FROM_CODEC, dropped))
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
    """The exact answer for brackets outside strings: a running sum, 64 KiB a step."""
    level = 0
    for piece in _pieces(brackets, _SUM_STEP):
        step = piece.translate(_SIGNS)
        if max(accumulate(memoryview(step).cast("b"), initial=level)) > limit:
            return True
        level += len(step) - 2 * step.count(b"\xff")
    return False


def _pieces(text: bytes, size: int) -> list[bytes]:
    """``text`` in pieces of ``size`` bytes (itself when it is one: no copy)."""
    if len(text) <= size:
        return [text]
    return [text[start : start + size] for start in range(0, len(text), size)]
