"""Request, response and stream bodies for ``bench.py convert``, built in code.

- :func:`small_request`: one short user message (Anthropic Messages shape).
- :func:`claude_code_request`: what Claude Code sends after a while of work: a
  long system prompt in blocks with ``cache_control``, 30 tools with JSON
  schemas (nested objects, arrays, enums, ``$schema``,
  ``additionalProperties``), and 40 messages of history: user turns, assistant
  text with ``tool_use`` calls (some parallel), ``tool_result`` blocks holding
  file contents and command output; ``thinking`` on, ``metadata.user_id``.
- :func:`small_response` / :func:`tool_response`: Anthropic answers to match.
- :func:`openai_text_stream` / :func:`openai_tool_stream`: OpenAI
  ``chat.completion.chunk`` event streams (200 text deltas; a tool call whose
  arguments arrive in 120 fragments).

The OpenAI and Gemini versions of each body are made with the gateway's own
converters (``rig.gw.in_format`` / ``response_in_format``), so every format
describes the same conversation. Everything is deterministic.
"""

from __future__ import annotations

import json
from typing import Any

from rig.mock_upstream import chunk_events

__all__ = [
    "claude_code_request",
    "openai_text_stream",
    "openai_tool_stream",
    "small_request",
    "small_response",
    "tool_response",
]

_LOREM = (
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor "
    "incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud "
    "exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. "
)
_CODE = '''def handle(self, request):
    """Route one request to its handler and return the response."""
    route = self.routes.get((request.method, request.path))
    if route is None:
        return Response(404, {"error": f"no route for {request.path}"})
    try:
        return route(request)
    except ValueError as exc:  # the handler rejected the input
        return Response(400, {"error": str(exc)})
'''


def _text(n: int, seed: int = 0) -> str:
    """About ``n`` characters of prose, varied by ``seed``."""
    out = []
    i = seed
    while sum(map(len, out)) < n:
        out.append(f"[{i}] " + _LOREM)
        i += 1
    return "".join(out)[:n]


def small_request(model: str = "bench-model", *, stream: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "Hello there, how are you today?"}],
    }
    if stream:
        body["stream"] = True
    return body


_TOOL_NAMES = [
    "Task", "Bash", "Glob", "Grep", "LS", "ExitPlanMode", "Read", "Edit", "MultiEdit",
    "Write", "NotebookRead", "NotebookEdit", "WebFetch", "TodoWrite", "WebSearch",
    "BashOutput", "KillBash", "SlashCommand", "mcp__github__create_issue",
    "mcp__github__list_pull_requests", "mcp__github__get_file_contents",
    "mcp__github__search_code", "mcp__linear__create_ticket", "mcp__linear__search",
    "mcp__sentry__get_issue", "mcp__postgres__query", "mcp__browser__navigate",
    "mcp__browser__click", "mcp__browser__screenshot", "mcp__slack__post_message",
]  # fmt: skip


def _tool(i: int, name: str) -> dict[str, Any]:
    props: dict[str, Any] = {
        "path": {"type": "string", "description": "The absolute path to the file to act on."},
        "timeout": {
            "type": "number",
            "description": "Optional timeout in milliseconds (max 600000).",
            "minimum": 0,
            "maximum": 600000,
        },
        "mode": {
            "type": "string",
            "enum": ["content", "files_with_matches", "count"],
            "description": "Output mode.",
        },
        "flags": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Extra flags, one per item.",
        },
    }
    if i % 3 == 0:
        props["edits"] = {
            "type": "array",
            "minItems": 1,
            "description": "Array of edit operations to perform sequentially on the file.",
            "items": {
                "type": "object",
                "properties": {
                    "old_string": {"type": "string", "description": "The text to replace"},
                    "new_string": {"type": "string", "description": "The replacement text"},
                    "replace_all": {"type": "boolean", "default": False},
                },
                "required": ["old_string", "new_string"],
                "additionalProperties": False,
            },
        }
    if i % 4 == 1:
        props["todos"] = {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "content": {"type": "string", "minLength": 1},
                    "status": {"type": "string", "enum": ["pending", "in_progress", "completed"]},
                    "id": {"type": "string"},
                },
                "required": ["content", "status", "id"],
                "additionalProperties": False,
            },
        }
    return {
        "name": name,
        "description": _text(400 + (i * 97) % 1400, seed=i),
        "input_schema": {
            "type": "object",
            "properties": props,
            "required": ["path"],
            "additionalProperties": False,
            "$schema": "http://json-schema.org/draft-07/schema#",
        },
    }


def claude_code_request(
    model: str = "bench-model", *, stream: bool = False, exchange: int = 0
) -> dict[str, Any]:
    """About 40 turns of a coding session, 30 tools, a long system prompt (~130 KB JSON).

    ``exchange`` changes the last assistant and user messages only, as two consecutive
    requests of one conversation differ: the same history, a new exchange at the end.
    """
    system = [
        {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
        {
            "type": "text",
            "text": _text(14_000, seed=1000),
            "cache_control": {"type": "ephemeral"},
        },
    ]
    tools = [_tool(i, name) for i, name in enumerate(_TOOL_NAMES)]
    messages: list[dict[str, Any]] = [
        {
            "role": "user",
            "content": [
                {
                    "type": "text",
                    "text": "<system-reminder>" + _text(1500, 7) + "</system-reminder>",
                },
                {"type": "text", "text": "Fix the failing test in server/routes.py and run it."},
            ],
        }
    ]
    call = 0
    for turn in range(19):  # 19 assistant/user pairs + the first user turn = 39 messages
        calls = 2 if turn % 5 == 2 else 1
        content: list[dict[str, Any]] = [
            {"type": "text", "text": f"Step {turn}: " + _text(200 + 37 * turn, turn)}
        ]
        ids = []
        for _ in range(calls):
            tool_id = f"toolu_{call:024d}"
            ids.append(tool_id)
            name = _TOOL_NAMES[call % 10]
            args = {"path": f"/repo/server/module_{call}.py", "mode": "content"}
            if name == "Edit":
                args = {"path": args["path"], "old_string": _CODE[:200], "new_string": _CODE[:220]}
            content.append({"type": "tool_use", "id": tool_id, "name": name, "input": args})
            call += 1
        messages.append({"role": "assistant", "content": content})
        results = []
        for k, tool_id in enumerate(ids):
            body = (_CODE * (2 + (turn + k) % 6))[: 600 + 173 * ((turn + k) % 9)]
            results.append(
                {
                    "type": "tool_result",
                    "tool_use_id": tool_id,
                    "content": body,
                    **({"is_error": True} if turn == 4 else {}),
                }
            )
        if turn == 10:
            results.append({"type": "text", "text": "Also check the docs while you are at it."})
        messages.append({"role": "user", "content": results})
    messages.append(
        {"role": "assistant", "content": f"All tests pass now; the fix is in place ({exchange})."}
    )
    messages.append({"role": "user", "content": f"Great. Now write changelog entry {exchange}."})
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": 32000,
        "system": system,
        "tools": tools,
        "messages": messages,
        "temperature": 1,
        "thinking": {"type": "enabled", "budget_tokens": 10000},
        "metadata": {"user_id": "user_bench_account__session_0000"},
    }
    if stream:
        body["stream"] = True
    return body


def small_response(model: str = "bench-model") -> dict[str, Any]:
    return {
        "id": "msg_bench",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": "Hello! How can I help you today?"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 9, "output_tokens": 9},
    }


def tool_response(model: str = "bench-model") -> dict[str, Any]:
    """A Claude Code-like answer: some text and an Edit call."""
    return {
        "id": "msg_bench",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [
            {"type": "text", "text": "I'll update the handler to return 405 for a wrong method."},
            {
                "type": "tool_use",
                "id": "toolu_bench_0001",
                "name": "Edit",
                "input": {
                    "path": "/repo/server/routes.py",
                    "old_string": _CODE[:300],
                    "new_string": _CODE[:300] + "    # 405 when the path exists\n",
                },
            },
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 31000, "output_tokens": 420},
    }


def _sse(obj: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "bench-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def openai_text_stream(count: int = 200) -> list[bytes]:
    """The mock upstream's stream: ``count`` events (the last with finish_reason), [DONE]."""
    return chunk_events(count)


def openai_tool_stream(fragments: int = 120) -> list[bytes]:
    """Some text, then one tool call whose arguments come in ``fragments`` pieces, usage."""
    args = json.dumps(
        {"path": "/repo/server/routes.py", "old_string": _CODE[:300], "new_string": _CODE[:320]}
    )
    size = max(1, len(args) // fragments + 1)
    pieces = [args[i : i + size] for i in range(0, len(args), size)]
    out = [_sse(_chunk({"role": "assistant", "content": "I'll fix that."}))]
    out.append(
        _sse(
            _chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_bench_0001",
                            "type": "function",
                            "function": {"name": "Edit", "arguments": ""},
                        }
                    ]
                }
            )
        )
    )
    for piece in pieces:
        out.append(_sse(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})))
    out.append(_sse(_chunk({}, "tool_calls")))
    usage = _chunk({})
    usage["choices"] = []
    usage["usage"] = {"prompt_tokens": 31000, "completion_tokens": 420, "total_tokens": 31420}
    out.append(_sse(usage))
    out.append(b"data: [DONE]\n\n")
    return out
