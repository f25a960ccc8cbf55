"""Issue 8 item 7: ``server.max_json_depth`` caps nesting with a linear, non-recursive scan.

The depth check looks at the bytes at C speed (strings cut out, brackets counted),
so it must agree with the real nesting on every shape, cost time linear in the
body, and honour the setting (default 64; deeper is a 400 naming the limit).
"""

from __future__ import annotations

import json
import time

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.config import Config, ServerConfig
from gateway.server.jsonscan import estimate_memory, json_depth_over
from tests.proxy.fakes import start_gateway, write_transformer


def _depth(value: object) -> int:
    """Reference nesting depth (iterative: values may be deep)."""
    best, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            best = max(best, level)
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            best = max(best, level)
            stack.extend((v, level + 1) for v in item)
    return best


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(alphabet='[]{}"\\ab,:\n\t\u00e9', max_size=6),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(alphabet='[]{}"\\k\n', max_size=4), children, max_size=3)
    ),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(json_values, st.integers(min_value=1, max_value=8))
def test_depth_scan_agrees_with_the_real_nesting(value, limit):
    # Control characters become escapes (\n) whose letter the scan deletes: its backslash
    # must never pair with the next escape's (a string ending in "\n\"" once read as open).
    raw = json.dumps(value).encode()
    assert json_depth_over(raw, limit) == (_depth(value) > limit)


@pytest.mark.parametrize("depth", [63, 64, 65, 66, 200])
@pytest.mark.parametrize("shape", ["arrays", "objects", "mixed", "in_strings"])
def test_depth_scan_at_the_default_limit(depth, shape):
    if shape == "arrays":
        raw = b"[" * depth + b"]" * depth
    elif shape == "objects":
        raw = b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1)
    elif shape == "mixed":
        value = _mixed(depth)
        raw = json.dumps(value).encode()
        depth = _depth(value)  # the leaves add levels of their own
    else:  # brackets inside strings do not count
        raw = json.dumps(["[[[[{{{{" * 50, '\\"[', *(["]]]]"] * 10)]).encode()
        assert not json_depth_over(raw, 64)
        return
    assert json_depth_over(raw, 64) == (depth > 64)


def _mixed(depth: int) -> object:
    value: object = 1
    for level in range(depth):
        value = [value, "x]"] if level % 2 else {"k[": value, "n": [1, {}]}
    return value


def test_depth_scan_is_linear_and_never_recurses():
    # Adversarial shapes: the deepest allowed nesting everywhere, and one huge nesting.
    unit = b"[" * 64 + b"]" * 64
    times = []
    for copies in (20_000, 40_000):
        raw = unit * copies
        started = time.perf_counter()
        assert not json_depth_over(raw, 64)
        times.append(time.perf_counter() - started)
    assert times[1] < times[0] * 4 + 0.05  # doubling the input: about double the time
    started = time.perf_counter()
    assert json_depth_over(b"[" * 2_000_000 + b"]" * 2_000_000, 64)  # no RecursionError
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize("limit", [None, 8])
async def test_max_json_depth_is_a_setting(nursery, tmp_path, limit):
    write_transformer(tmp_path, "mock", {"format": "mock", "models": {"*": "*"}})
    gw = await start_gateway(nursery, tmp_path)
    if limit is not None:
        gw.app.server.config = Config(server=ServerConfig(max_json_depth=limit))
    effective = limit or 64
    async with httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
        for depth, status in ((effective, 200), (effective + 1, 400)):
            # the body's own object and messages list are two levels; the rest nests in "x"
            extra = depth - 3
            nested = b"[" * extra + b"]" * extra if extra > 0 else b"1"
            body = (
                b'{"model": "mock/m", "messages": [{"role": "user", "content": "hi",'
                b' "x": %s}]}' % nested
            )
            reply = await client.post("/v1/chat/completions", content=body)
            assert reply.status_code == status, (depth, reply.text)
            if status == 400:
                assert f"more than {effective} levels" in reply.json()["error"]["message"]
                assert "server.max_json_depth" in reply.json()["error"]["message"]


def test_memory_estimate_covers_what_decoding_costs():
    """The estimate is at least the decoded peak for the shapes the review used."""
    import tracemalloc

    shapes = [
        b"[" + b"{}," * 100_000 + b"{}]",  # the review's 28.6 MiB body, scaled down
        b"[" + b"[]," * 100_000 + b"[]]",
        json.dumps([{f"k{i}": i} for i in range(50_000)]).encode(),
        json.dumps([str(i) for i in range(100_000)]).encode(),
        json.dumps(
            {"messages": [{"role": "user", "content": "hello " * 40} for _ in range(5000)]}
        ).encode(),
    ]
    for raw in shapes:
        tracemalloc.start()
        try:
            value = json.loads(raw)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        del value
        assert estimate_memory(raw) >= peak, (raw[:40], estimate_memory(raw), peak)
