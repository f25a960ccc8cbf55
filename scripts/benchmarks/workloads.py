"""Request, response and stream bodies for ``bench.py convert``, deterministic.

A small request; what Claude Code sends after a while of work (~120 KB: a long system
prompt with ``cache_control``, 30 tools with JSON schemas, parts of them in
data/claude_code.json, 41 messages with parallel ``tool_use`` calls and ``tool_result``
file contents); Anthropic answers to match; OpenAI event streams (200 text deltas; a tool
call in 120 fragments). The other formats' versions come from the gateway's converters.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from rig.mock_upstream import chunk_events, dumps, sse_chunk

_DATA = json.loads((Path(__file__).parent / "data" / "claude_code.json").read_text())
_CODE = "\n".join(_DATA["code"]) + "\n"
_TOOL_NAMES: list[str] = _DATA["tool_names"]


def _text(n: int, seed: int = 0) -> str:
    """About ``n`` characters of prose, varied by ``seed``."""
    out, i = "", seed
    while len(out) < n:
        out, i = out + f"[{i}] " + _DATA["lorem"], i + 1
    return out[:n]


def _with(body: dict[str, Any], stream: bool) -> dict[str, Any]:
    return {**body, "stream": True} if stream else body


def small_request(model: str = "bench-model", *, stream: bool = False) -> dict[str, Any]:
    msg = {"role": "user", "content": "Hello there, how are you today?"}
    return _with({"model": model, "max_tokens": 1024, "messages": [msg]}, stream)


def _tool(i: int, name: str) -> dict[str, Any]:
    props = {**_DATA["properties"]}
    if i % 3 == 0:
        props["edits"] = _DATA["edits"]
    if i % 4 == 1:
        props["todos"] = _DATA["todos"]
    schema = {"type": "object", "properties": props, "required": ["path"],
              "additionalProperties": False,
              "$schema": "http://json-schema.org/draft-07/schema#"}  # fmt: skip
    description = _text(400 + (i * 97) % 1400, seed=i)
    return {"name": name, "description": description, "input_schema": schema}


def claude_code_request(
    model: str = "bench-model", *, stream: bool = False, exchange: int = 0
) -> dict[str, Any]:
    """About 40 turns of a coding session, 30 tools, a long system prompt.

    ``exchange`` changes the last assistant and user messages only, as two consecutive
    requests of one conversation differ: the same history, a new exchange at the end.
    """
    system = [
        {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
        {"type": "text", "text": _text(14_000, seed=1000), "cache_control": {"type": "ephemeral"}},
    ]
    reminder = {"type": "text", "text": "<system-reminder>" + _text(1500, 7) + "</system-reminder>"}
    task = {"type": "text", "text": "Fix the failing test in server/routes.py and run it."}
    messages: list[dict[str, Any]] = [{"role": "user", "content": [reminder, task]}]
    call = 0
    for turn in range(19):  # 19 assistant/user pairs + the first user turn = 39 messages
        content: list[dict[str, Any]] = [
            {"type": "text", "text": f"Step {turn}: " + _text(200 + 37 * turn, turn)}
        ]
        results: list[dict[str, Any]] = []
        for k in range(2 if turn % 5 == 2 else 1):
            tool_id, name = f"toolu_{call:024d}", _TOOL_NAMES[call % 10]
            args = {"path": f"/repo/server/module_{call}.py", "mode": "content"}
            if name == "Edit":
                args = {"path": args["path"], "old_string": _CODE[:200], "new_string": _CODE[:220]}
            content.append({"type": "tool_use", "id": tool_id, "name": name, "input": args})
            body = (_CODE * (2 + (turn + k) % 6))[: 600 + 173 * ((turn + k) % 9)]
            result = {"type": "tool_result", "tool_use_id": tool_id, "content": body}
            results.append({**result, "is_error": True} if turn == 4 else result)
            call += 1
        if turn == 10:
            results.append({"type": "text", "text": "Also check the docs while you are at it."})
        messages += [
            {"role": "assistant", "content": content},
            {"role": "user", "content": results},
        ]
    messages += [
        {"role": "assistant", "content": f"All tests pass now; the fix is in place ({exchange})."},
        {"role": "user", "content": f"Great. Now write changelog entry {exchange}."},
    ]
    tools = [_tool(i, name) for i, name in enumerate(_TOOL_NAMES)]
    body = {"model": model, "max_tokens": 32000, "system": system, "tools": tools,
            "messages": messages, "temperature": 1,
            "thinking": {"type": "enabled", "budget_tokens": 10000},
            "metadata": {"user_id": "user_bench_account__session_0000"}}  # fmt: skip
    return copy.deepcopy(_with(body, stream))  # no two tools share a schema object


def _answer(
    model: str, content: list[dict[str, Any]], stop: str, usage: tuple[int, int]
) -> dict[str, Any]:
    return {"id": "msg_bench", "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop, "stop_sequence": None,
            "usage": {"input_tokens": usage[0], "output_tokens": usage[1]}}  # fmt: skip


def small_response(model: str = "bench-model") -> dict[str, Any]:
    text = {"type": "text", "text": "Hello! How can I help you today?"}
    return _answer(model, [text], "end_turn", (9, 9))


def tool_response(model: str = "bench-model") -> dict[str, Any]:
    """A Claude Code-like answer: some text and an Edit call."""
    text = {"type": "text", "text": "I'll update the handler to return 405 for a wrong method."}
    edit = {"path": "/repo/server/routes.py", "old_string": _CODE[:300],
            "new_string": _CODE[:300] + "    # 405 when the path exists\n"}  # fmt: skip
    call = {"type": "tool_use", "id": "toolu_bench_0001", "name": "Edit", "input": edit}
    return _answer(model, [text, call], "tool_use", (31000, 420))


def openai_text_stream(count: int = 200) -> list[bytes]:
    """The mock upstream's stream: ``count`` events (the last with finish_reason), [DONE]."""
    return chunk_events(count)


def openai_tool_stream(fragments: int = 120) -> list[bytes]:
    """Some text, then one tool call whose arguments come in ``fragments`` pieces, usage."""
    args = json.dumps(
        {"path": "/repo/server/routes.py", "old_string": _CODE[:300], "new_string": _CODE[:320]}
    )
    size = max(1, len(args) // fragments + 1)
    call = {"index": 0, "id": "call_bench_0001", "type": "function",
            "function": {"name": "Edit", "arguments": ""}}  # fmt: skip
    pieces = [{"index": 0, "function": {"arguments": args[i : i + size]}}
              for i in range(0, len(args), size)]  # fmt: skip
    usage = {"prompt_tokens": 31000, "completion_tokens": 420, "total_tokens": 31420}
    last = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000,
            "model": "bench-model", "choices": [], "usage": usage}  # fmt: skip
    return [
        sse_chunk({"role": "assistant", "content": "I'll fix that."}),
        *(sse_chunk({"tool_calls": [delta]}) for delta in [call, *pieces]),
        sse_chunk({}, "tool_calls"),
        b"data: " + dumps(last) + b"\n\n",
        b"data: [DONE]\n\n",
    ]
