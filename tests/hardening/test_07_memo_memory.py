"""Issue 8 item 7 (the memo's part): the memo is bounded by an estimate of memory, not bytes.

A parsed conversation costs 10-40 times its body bytes (every JSON object a dict, every
block a canonical part, renderings and their JSON text on top); the memo used to charge
body bytes, so its 16 MiB bound let it hold hundreds of MiB. Now each kept conversation is
charged an estimate of the memory it holds (gateway.convert.memo.estimate). The tests feed
a memo many big conversations of costly shapes and measure what it really holds with
tracemalloc (stabler than RSS): it stays within a small factor of ``max_bytes``, and each
conversation's estimate is at least what it really holds.
"""

from __future__ import annotations

import gc
import json
import tracemalloc
from typing import Any

import pytest

from gateway.call import Call
from gateway.convert.memo import Memo
from gateway.proxy.adapters import Converting
from tests.convert.test_memo import TARGETS

MIB = 1 << 20


def _empties(seed: int, n: int) -> list[Any]:
    """Blocks that are empty objects: the costliest bytes (2 bytes, a dict and a note)."""
    return [
        {"role": "user", "content": [{"type": "text", "text": f"conversation {seed}"}]},
        *({"role": "assistant" if i % 2 else "user", "content": [{}] * 40} for i in range(n)),
    ]


def _small_blocks(seed: int, n: int) -> list[Any]:
    return [
        {
            "role": "assistant" if i % 2 else "user",
            "content": [{"type": "text", "text": f"s{seed} b{j}"} for j in range(20)],
        }
        for i in range(n)
    ]


def _tool_rounds(seed: int, n: int) -> list[Any]:
    msgs: list[Any] = [{"role": "user", "content": f"conversation {seed}"}]
    for i in range(n):
        uses = [
            {"type": "tool_use", "id": f"t{i}_{j}", "name": "f", "input": {"a": [1, {"b": j}]}}
            for j in range(4)
        ]
        results = [
            {"type": "tool_result", "tool_use_id": f"t{i}_{j}", "content": "ok"} for j in range(4)
        ]
        msgs.append({"role": "assistant", "content": uses})
        msgs.append({"role": "user", "content": results})
    return msgs


SHAPES = [_empties, _small_blocks, _tool_rounds]


def _request(messages: list[Any]) -> bytes:
    return json.dumps({"model": "m", "max_tokens": 16, "messages": messages}).encode()


def _convert(raw: bytes, memo: Memo, provider: str = "openai") -> None:
    call = Call("anthropic", "messages", "m", False, json.loads(raw), len(raw))
    Converting(call, TARGETS[provider], memo)


def _held(work: Any) -> int:
    """The memory ``work()`` leaves allocated (tracemalloc), once its garbage is gone."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        work()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.__name__)
@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_the_estimate_covers_what_a_conversation_holds(shape: Any, provider: str) -> None:
    memo = Memo(max_bytes=1 << 40)
    raw = _request(shape(0, 400))
    held = _held(lambda: _convert(raw, memo, provider))
    assert memo.held_bytes > 0  # kept
    assert held <= memo.held_bytes, (held, memo.held_bytes, len(raw))
    assert memo.held_bytes <= 8 * max(held, 1), "an estimate far above the real cost"


def test_many_big_conversations_stay_within_the_bound() -> None:
    """120 conversations, 2.6 MB of bodies in all, through a memo bounded at 2 MiB (which
    used to keep 2 MiB of bodies, some 30 MiB of memory)."""
    memo = Memo(max_bytes=2 * MIB)
    sizes = {_empties: 30, _small_blocks: 45, _tool_rounds: 40}  # each kept: under 512 KiB
    bodies = [_request(shape(seed, n)) for seed in range(40) for shape, n in sizes.items()]
    assert sum(len(b) for b in bodies) > memo.max_bytes

    def feed() -> None:
        for raw in bodies:
            _convert(raw, memo)
            assert memo.held_bytes <= memo.max_bytes

    held = _held(feed)
    assert memo.held_bytes > memo.max_bytes // 4  # it does keep conversations
    assert held <= 2 * memo.max_bytes, f"{held / MIB:.1f} MiB held for a 2 MiB bound"
    before = memo.reused
    _convert(bodies[-1], memo)  # the last one is still there
    assert memo.reused > before
