"""The depth scan of ``gateway/server/jsonscan.py`` against references that decode.

:func:`json_depth_over` reads escapes with the C escape codec after one
``translate`` (module docstring); these properties hold it to ``json.loads``
plus a recursive depth on bodies whose strings are full of escapes, quotes,
backslashes and brackets, in every encoding ``json.dumps`` writes, cut into
pieces of every size (the 1 MiB steps of big bodies, shrunk); on broken
bodies it must never allow more nesting than the decoder would reach before
its first error; and it must stay linear on hostile shapes.
"""

from __future__ import annotations

import json
import threading
import time
from unittest import mock

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.server import jsonscan
from gateway.server.jsonscan import json_depth_over


def _depth(value: object) -> int:
    """Reference nesting depth (recursive; generated values are shallow)."""
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


#: Characters that make escapes (and bytes the scan maps) dense: quotes, backslashes,
#: brackets, the letters of escapes, control characters, non-ASCII, a lone surrogate.
_NASTY = '"\\/[]{}bfnrtuaxv,:\n\t\r\x00\x07\x1f \u00e9\u2200\u225b\ud800\U0001f600'
_strings = st.text(alphabet=_NASTY, max_size=12)


def _containers(children: st.SearchStrategy) -> st.SearchStrategy:
    return st.lists(children, max_size=4) | st.dictionaries(_strings, children, max_size=4)


_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _strings,
    _containers,
    max_leaves=60,
)
_dumps = st.sampled_from(
    [
        {},
        {"ensure_ascii": False},
        {"indent": 1},
        {"separators": (",", ":"), "ensure_ascii": False},
    ]
)


def _encode(value: object, options: dict) -> bytes:
    return json.dumps(value, **options).encode("utf-8", "surrogatepass")


@settings(max_examples=400, deadline=None)
@given(_values, _dumps, st.integers(min_value=0, max_value=10))
@example(["\\", ["\n\\", '\\"[']], {}, 1)
@example({"\\\\": [[['\\/"]']]]}, {"ensure_ascii": False}, 2)
def test_depth_scan_agrees_with_decoding(value, options, limit):
    raw = _encode(value, options)
    assert json.loads(raw) == json.loads(json.dumps(value))  # what the decoder reads
    assert json_depth_over(raw, limit) == (_depth(value) > limit)
    # Past the small-body count too: padding with a big string changes no nesting.
    padded = b'{"pad": "%s", "v": %s}' % (b"\\\\n" * 2000, raw)
    assert json_depth_over(padded, limit + 1) == (_depth(value) > limit)


@settings(max_examples=300, deadline=None)
@given(_values, _dumps, st.integers(min_value=0, max_value=6), st.integers(1, 40))
def test_depth_scan_in_small_steps_agrees(value, options, limit, step):
    # Big bodies go through in 1 MiB pieces; tiny pieces put every boundary everywhere:
    # inside escapes, between a backslash and its letter, inside strings.
    raw = _encode(value, options)
    with (
        mock.patch.object(jsonscan, "_STEP", step),
        mock.patch.object(jsonscan, "_SUM_STEP", step),
        mock.patch.object(jsonscan, "_PEEL_BYTES", 0),  # peeling gives up as soon as it slows
        mock.patch.object(jsonscan, "_SMALL", 0),
    ):
        assert json_depth_over(raw, limit) == (_depth(value) > limit)


def _decoder_reach(raw: bytes) -> int:
    """How deep ``json.loads`` nests at most before it stops at a backslash.

    A reference in Python: strings and escapes read as the decoder reads them, up
    to a bad escape or a backslash outside strings, where the scan may read what
    follows otherwise. Other syntax errors are ignored: the decoder stops there,
    so it reaches no deeper than this.
    """
    depth = best = 0
    i, n = 0, len(raw)
    while i < n:
        byte = raw[i]
        if byte == 0x22:  # a string: to its closing quote
            i += 1
            while i < n and raw[i] != 0x22:
                if raw[i] == 0x5C:
                    if i + 1 >= n or raw[i + 1] not in b'"\\/bfnrtu':
                        return best
                    i += 1
                i += 1
        elif byte == 0x5C:
            return best
        elif byte in b"[{":
            depth += 1
            best = max(best, depth)
        elif byte in b"]}":
            depth -= 1
        i += 1
    return best


@settings(max_examples=400, deadline=None)
@given(_values, st.data(), st.integers(min_value=0, max_value=6))
def test_depth_scan_never_allows_what_the_decoder_would_nest(value, data, limit):
    raw = bytearray(_encode(value, {"ensure_ascii": False}))
    for _ in range(data.draw(st.integers(0, 3))):  # break it: insert, delete or cut bytes
        at = data.draw(st.integers(0, len(raw)))
        action = data.draw(st.sampled_from(["insert", "delete", "cut"]))
        if action == "insert":
            raw[at:at] = data.draw(st.binary(max_size=4).filter(bool) | st.sampled_from([b"\\"]))
        elif action == "delete":
            del raw[at : at + 1]
        else:
            del raw[at:]
    if _decoder_reach(bytes(raw)) > limit:
        assert json_depth_over(bytes(raw), limit)


@given(st.binary(max_size=300), st.integers(min_value=0, max_value=8))
def test_depth_scan_of_any_bytes_is_an_answer(raw, limit):
    assert json_depth_over(raw, limit) in (True, False)
    assert json_depth_over(raw + b"\\", limit) in (True, False)  # a trailing backslash


@pytest.mark.parametrize(
    "unit",
    [
        b"[" * 64 + b"]" * 64,  # the deepest allowed nesting, everywhere
        b'["' + b"\\\\" * 60 + b'\\""]',  # backslash runs ending in an escaped quote
        b'{"k\\"[": "\\u00e9\\n\\"{]\\\\"}',  # escapes and brackets in keys and values
        b'"' * 64,  # empty strings only
    ],
    ids=["nested", "backslashes", "escapes", "quotes"],
)
def test_depth_scan_is_linear_on_hostile_shapes(unit):
    times = []
    for copies in (1 << 20) // len(unit), (2 << 20) // len(unit):
        raw = b"[" + b",".join([unit] * copies) + b"]" if unit[0] != 0x22 else unit * copies
        started = time.perf_counter()
        json_depth_over(raw, 64)
        times.append(time.perf_counter() - started)
    assert times[1] < times[0] * 4 + 0.05  # doubling the input: about double the time


def test_depth_scan_of_10_mib_hostile_bodies_is_bounded():
    for raw in (b"[" * (10 << 20), b'"' + b"\\" * (10 << 20) + b'"', b"\\" * (10 << 20) + b"["):
        started = time.perf_counter()
        json_depth_over(raw, 64)
        assert time.perf_counter() - started < 5


def _formula(raw: bytes) -> int:
    """The estimate as NOTES.md states it, on the body's own counts."""
    return (
        2 * len(raw)
        + 224 * raw.count(b"{")
        + 64 * raw.count(b"[")
        + 40 * raw.count(b",")
        + 32 * raw.count(b'"')
    )


#: Pieces of bodies, valid or not: escapes of every byte the estimate counts among them.
_TOKENS = [b'\\"', b"\\\\", b"\\[", b"\\{", b"\\,", b"\\]", b'"', b"[", b"{", b",", b"\\", b"x"]
_noisy = (
    st.binary(max_size=64)
    | st.text(alphabet=_NASTY, max_size=64).map(lambda s: s.encode("utf-8", "surrogatepass"))
    | st.lists(st.sampled_from(_TOKENS), max_size=20).map(b"".join)
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_noisy, max_size=30), st.sampled_from([0, 4096, 300_000]))
@example([b'["a\\"b", "\\\\", "\\[\\{\\,"]'], 4096)
def test_memory_estimate_is_the_formula_in_every_size_band(pieces, pad):
    # Under 4 KiB: counted on the body; to 256 KiB: on the structure text (escaped
    # quotes and brackets counted too); beyond: on one translate.
    raw = b"".join(pieces) + b"x" * pad
    assert jsonscan.estimate_memory(raw) == _formula(raw)
    assert jsonscan.estimate_memory(raw + b"\\") == _formula(raw + b"\\")


def test_the_estimate_leaves_its_structure_to_the_depth_check_of_that_body_only():
    jsonscan._remembered.clear()
    deep = b'{"pad": "' + b"x" * 5000 + b'", "v": ' + b"[" * 70 + b"]" * 70 + b"}"
    jsonscan.estimate_memory(deep)
    assert id(deep) in jsonscan._remembered
    assert json_depth_over(deep, 64)
    assert not jsonscan._remembered  # taken once
    # An equal body that is another object computes its own.
    twin = bytes(bytearray(deep))
    jsonscan.estimate_memory(deep)
    assert json_depth_over(twin, 64)
    assert id(deep) in jsonscan._remembered
    # Bodies never checked do not pile up.
    bodies = [b"[" + b"1," * 3000 + b"%d]" % i for i in range(20)]
    for body in bodies:
        jsonscan.estimate_memory(body)
    assert len(jsonscan._remembered) == jsonscan._REMEMBER_COUNT
    assert not json_depth_over(bodies[-1], 64)
    jsonscan._remembered.clear()


def test_depth_scan_of_a_big_body_lets_other_threads_run():
    # Big bodies are checked in a worker thread: it must hand the GIL over between short C
    # calls (one re.sub over 16 MiB of backslashes once held it ~1.5 s).
    gaps: list[float] = []
    done = threading.Event()

    def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            time.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    thread = threading.Thread(target=ticker)
    thread.start()
    try:
        for raw in (b'"' + b"\\" * (16 << 20) + b'"', b"[" * (16 << 20)):
            json_depth_over(raw, 64)
    finally:
        done.set()
        thread.join()
    assert max(gaps) < 0.5
