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
  but brackets, quotes and backslashes is deleted (``translate``), escapes
  and then string contents are cut out (brackets in strings do not nest),
  then pairs ``{}`` / ``[]`` are removed a layer per ``replace`` while that
  shrinks the text quickly (ordinary bodies vanish in a few passes); an
  adversarial one falls back to an exact running sum
  (``itertools.accumulate`` over a signed memoryview, 1 MiB per step).
"""

from __future__ import annotations

from itertools import accumulate

__all__ = ["DEFAULT_MAX_JSON_DEPTH", "estimate_memory", "json_depth_over"]

DEFAULT_MAX_JSON_DEPTH = 64

#: Every byte but brackets, quotes and backslashes: deleted by ``translate``.
_INSIGNIFICANT = bytes(range(256)).translate(None, b'[]{}"\\')
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
    return (
        _PER_BYTE * len(raw)
        + _PER_OBJECT * raw.count(b"{")
        + _PER_ARRAY * raw.count(b"[")
        + _PER_COMMA * raw.count(b",")
        + _PER_QUOTE * raw.count(b'"')
    )


def json_depth_over(raw: bytes, limit: int) -> bool:
    """True when arrays and objects in ``raw`` nest deeper than ``limit``.

    ``raw`` need not be valid JSON: unbalanced brackets give some answer, and
    the decoder reports the syntax error after.
    """
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    brackets = _outside_strings(raw.translate(None, _INSIGNIFICANT))
    rest = brackets
    # Each replace lowers the nesting by at most one: emptied within limit // 2
    # passes (two replaces each) means no deeper than the limit.
    for _ in range(limit // 2):
        if not rest:
            return False
        size = len(rest)
        rest = rest.replace(b"{}", b"").replace(b"[]", b"")
        if len(rest) > size * 0.9:
            break  # peeling is slow on this shape: count exactly instead
    if not rest:
        return False
    signs = brackets.translate(_SIGNS)
    level = 0
    for start in range(0, len(signs), _STEP):
        step = signs[start : start + _STEP]
        if max(accumulate(memoryview(step).cast("b"), initial=level)) > limit:
            return True
        level += len(step) - 2 * step.count(b"\xff")
    return False


def _outside_strings(text: bytes) -> bytes:
    """``text`` (only ``[]{}"\\`` left in it) without what string literals held.

    Escapes go first: ``\\\\`` pairs, then ``\\"``, then lone backslashes
    (``\\n`` and the like, whose letter is already gone). Every quote left
    then opens or closes a string, so the even pieces between quotes are the
    text outside strings.
    """
    if b"\\" in text:
        text = text.replace(b"\\\\", b"").replace(b'\\"', b"").replace(b"\\", b"")
    if b'"' not in text:
        return text
    return b"".join(text.split(b'"')[::2])
