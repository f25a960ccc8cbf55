"""gateway.convert.memo: a conversion with a Memo gives the body and notes one without gives.

What is checked, in order:

1. equivalence: a growing conversation (each request the first 6+2k wire messages of a
   long coding session with tool calls and results, a system prompt, tools with JSON
   schemas, an image, a signed thinking block) converted through one shared Memo, for
   every client format x every provider format, gives the same upstream body bytes and
   notes as converting each request without one; also with an earlier message edited,
   with messages removed from the end, and with conversations interleaved;
2. a hypothesis property on random small Anthropic conversations;
3. that reuse really happens (counters, identity of parsed messages and rendered parts);
4. the bounds (``min_messages``, ``max_bytes`` of estimated memory with LRU eviction, unknown sizes,
   renderings that live and go with their conversation);
5. errors: the same BadRequest with a memo as without, and the memo usable afterwards;
6. that nothing downstream modifies what the memo hands out (request A, then B, then A).

7. exactness: messages that ``==`` would call equal but that differ in key order or in
   ``1``/``1.0``/``true`` are not reused (they were strict xfails until issue 8 item 17).

Every request body is made the way the front end makes it: ``json.loads`` of the bytes
that arrived, so no two requests share an object, and ``Call.size`` is the byte count.
"""

from __future__ import annotations

import copy
import functools
import gc
import json
import weakref
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gateway.call import Call
from gateway.convert.memo import Memo, estimate, mark
from gateway.convert.model import Message, Notes, Request, Text
from gateway.errors import BadRequest
from gateway.formats import FORMAT_NAMES, FORMATS, convert_request
from gateway.proxy.adapters import Converting, make_adapter
from gateway.routing import Target
from gateway.transformers import parse_transformer

MODEL = "client-model"
UPSTREAM = "up-model"
OPS = {"openai": "chat", "anthropic": "messages", "gemini": "generate"}
#: Where each format keeps its conversation.
KEY = {"openai": "messages", "anthropic": "messages", "gemini": "contents"}
PAIRS = [(client, provider) for client in FORMAT_NAMES for provider in FORMAT_NAMES]

# == fixtures: a realistic coding session ====================================================

_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
_OTHER_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
_SHOT = "R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"
_SIGNATURE = "EqQBCkYIBxgCKkDtQ6lbUe+Zr0M9VqBK5xWm1Tq2ldH5fA7dG0Lxo6vX8sYpLh4="
_GEMINI_SIGNATURE = "CiQB0e2Kb9p1zYk3R4nSgUQ0v6n2mQ8Xw=="
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
_SCHEMA = "http://json-schema.org/draft-07/schema#"


def _schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "$schema": _SCHEMA,
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


TOOLS: list[dict[str, Any]] = [
    {
        "name": "Bash",
        "description": "Executes a bash command in a persistent shell session.",
        "input_schema": _schema(
            {
                "command": {"type": "string", "description": "The command to execute"},
                "timeout": {"type": "number", "description": "Milliseconds", "maximum": 600000},
                "run_in_background": {"type": "boolean", "default": False},
            },
            ["command"],
        ),
    },
    {
        "name": "Read",
        "description": "Reads a file from the local filesystem.",
        "input_schema": _schema(
            {
                "file_path": {"type": "string"},
                "offset": {"type": "integer", "minimum": 0},
                "limit": {"type": "integer", "exclusiveMinimum": 0},
            },
            ["file_path"],
        ),
    },
    {
        "name": "Edit",
        "description": "Performs exact string replacements in a file.",
        "input_schema": _schema(
            {
                "file_path": {"type": "string"},
                "edits": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "properties": {
                            "old_string": {"type": "string"},
                            "new_string": {"type": "string"},
                            "replace_all": {"type": "boolean", "default": False},
                        },
                        "required": ["old_string", "new_string"],
                        "additionalProperties": False,
                    },
                },
            },
            ["file_path", "edits"],
        ),
    },
    {
        "name": "Grep",
        "description": "Searches file contents with ripgrep.",
        "input_schema": _schema(
            {
                "pattern": {"type": "string"},
                "output_mode": {"type": "string", "enum": ["content", "files_with_matches"]},
                "-n": {"type": "boolean"},
                "head_limit": {"type": "number"},
            },
            ["pattern"],
        ),
    },
    {
        "name": "TodoWrite",
        "description": "Updates the session's todo list.",
        "input_schema": _schema(
            {
                "todos": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "content": {"type": "string", "minLength": 1},
                            "status": {
                                "type": "string",
                                "enum": ["pending", "in_progress", "completed"],
                            },
                            "id": {"type": "string"},
                        },
                        "required": ["content", "status", "id"],
                    },
                }
            },
            ["todos"],
        ),
    },
]


def _args(name: str, k: int) -> dict[str, Any]:
    if name == "Read":
        return {"file_path": f"/repo/server/module_{k}.py", "offset": 10 * k, "limit": 200}
    if name == "Edit":
        old = _CODE[:90]
        return {
            "file_path": f"/repo/server/module_{k}.py",
            "edits": [
                {"old_string": old, "new_string": old.replace("404", "405"), "replace_all": False}
            ],
        }
    if name == "Bash":
        return {
            "command": f"pytest -q tests/test_{k}.py",
            "timeout": 120000 + k,
            "run_in_background": k % 2 == 0,
        }
    if name == "Grep":
        return {
            "pattern": f"route_{k}",
            "output_mode": "files_with_matches",
            "-n": k % 3 == 0,
            "head_limit": k,
        }
    return {"todos": [{"content": f"step {k}", "status": "in_progress", "id": str(k)}]}


def _conversation(seed: int, opening: int) -> dict[str, Any]:
    """An Anthropic body: 34 messages of a Claude-Code-like session (``opening`` picks the
    first message, ``seed`` the rest, so two seeds with one opening share message 0)."""
    tag = f"[{seed}]"

    def tid(n: int) -> str:
        return f"toolu_{seed:04d}{n:020d}"

    messages: list[dict[str, Any]] = [
        {
            "role": "user",
            "content": [
                {
                    "type": "text",
                    "text": f"<system-reminder>\nUse CLAUDE.md (session {opening}).\n</system-reminder>",
                },
                {
                    "type": "text",
                    "text": f"Task {opening}: tests/test_routes.py::test_wrong_method fails; fix it.",
                },
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": _PNG},
                },
            ],
        },
        {
            "role": "assistant",
            "content": [
                {
                    "type": "thinking",
                    "thinking": f"{tag} Read the route table first.",
                    "signature": _SIGNATURE,
                },
                {"type": "text", "text": f"{tag} Let me look at the router."},
                {"type": "tool_use", "id": tid(0), "name": "Read", "input": _args("Read", 0)},
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": tid(0), "content": _CODE}],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": f"{tag} Now the handler and the failing test."},
                {"type": "tool_use", "id": tid(1), "name": "Grep", "input": _args("Grep", 1)},
                {"type": "tool_use", "id": tid(2), "name": "Bash", "input": _args("Bash", 2)},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": tid(1),
                    "content": [{"type": "text", "text": "server/routes.py:1:def handle"}],
                },
                {
                    "type": "tool_result",
                    "tool_use_id": tid(2),
                    "content": "FAILED test_wrong_method - 404 != 405",
                    "is_error": True,
                },
            ],
        },
        {
            "role": "user",
            "content": f"{tag} Keep the public API unchanged, please.",
        },  # merges with 4
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": tid(3), "name": "Edit", "input": _args("Edit", 3)}
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": tid(3), "content": "The file was updated."}
            ],
        },
        {
            "role": "system",
            "content": f"<system-reminder>{tag} The todo list is empty.</system-reminder>",
        },
        {"role": "user", "content": [{"type": "text", "text": f"{tag} Run the whole suite too."}]},
    ]
    names = ["Bash", "Read", "Edit", "Grep", "TodoWrite"]
    call = 4
    for turn in range(12):
        content: list[dict[str, Any]] = [
            {"type": "text", "text": f"{tag} Step {turn}: " + _CODE[: 40 + 13 * turn]}
        ]
        ids = []
        for _ in range(2 if turn % 4 == 3 else 1):
            name = names[call % len(names)]
            content.append(
                {"type": "tool_use", "id": tid(call), "name": name, "input": _args(name, call)}
            )
            ids.append(tid(call))
            call += 1
        if turn == 2:  # a server-side web search: no other format has it (a parse note)
            search = {
                "type": "server_tool_use",
                "id": "srvtoolu_1",
                "name": "web_search",
                "input": {"query": "h11"},
            }
            found = {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []}
            content[1:1] = [search, found]
        messages.append({"role": "assistant", "content": content})
        results: list[dict[str, Any]] = []
        for j, i in enumerate(ids):
            text = (_CODE * (1 + (turn + j) % 3))[: 300 + 41 * turn]
            block: Any = text if (turn + j) % 2 else [{"type": "text", "text": text}]
            if turn == 7 and j == 0:  # a screenshot tool (OpenAI: moved out of the tool message)
                shot = {"type": "base64", "media_type": "image/gif", "data": _SHOT}
                block = [{"type": "text", "text": "Screenshot:"}, {"type": "image", "source": shot}]
            results.append({"type": "tool_result", "tool_use_id": i, "content": block})
        if turn == 5:
            results.append({"type": "text", "text": f"{tag} Also check the docs."})
            doc = {"type": "text", "media_type": "text/plain", "data": f"{tag} CHANGES: none yet."}
            results.append({"type": "document", "source": doc, "title": "CHANGES.txt"})
        messages.append({"role": "user", "content": results})
    return {
        "model": MODEL,
        "max_tokens": 32000,
        "stream": True,
        "system": [
            {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
            {"type": "text", "text": "Be concise. " * 60, "cache_control": {"type": "ephemeral"}},
        ],
        "tools": copy.deepcopy(TOOLS),
        "tool_choice": {"type": "auto"},
        "thinking": {"type": "enabled", "budget_tokens": 4000},
        "metadata": {"user_id": f"user_{seed}_account__session"},
        "messages": messages,
    }


def _gemini_shape(body: dict[str, Any]) -> dict[str, Any]:
    """As a Gemini client sends it: no call ids (responses match calls by name), thought
    signatures on the function calls and a signed thought part."""
    for turn, content in enumerate(body["contents"]):
        for part in content["parts"]:
            for key in ("functionCall", "functionResponse"):
                if key in part:
                    part[key].pop("id", None)
            if "functionCall" in part:
                part["thoughtSignature"] = _GEMINI_SIGNATURE
        if content["role"] == "model" and turn == 1:
            thought = {
                "text": "Reading the routes.",
                "thought": True,
                "thoughtSignature": _GEMINI_SIGNATURE,
            }
            content["parts"].insert(0, thought)
        if content["role"] == "model" and turn == 3:  # no other format has it (a parse note)
            content["parts"].append({"executableCode": {"language": "PYTHON", "code": "print(1)"}})
    return body


@functools.cache
def _full_json(fmt: str, seed: int, opening: int) -> str:
    """The whole conversation in ``fmt``, as JSON text (each request decodes it afresh)."""
    body = _conversation(seed, opening)
    if fmt == "openai":
        body, _ = convert_request(body, "anthropic", "openai", upstream_model=MODEL)
        body.update(
            stream=True,
            stream_options={"include_usage": True},
            reasoning_effort="medium",
            tool_choice="auto",
            parallel_tool_calls=True,
            user="user-1",
        )
    elif fmt == "gemini":
        body, _ = convert_request(body, "anthropic", "gemini", upstream_model=MODEL)
        body = _gemini_shape(body)
    return json.dumps(body)


def _length(fmt: str, seed: int = 0) -> int:
    return len(json.loads(_full_json(fmt, seed, seed))[KEY[fmt]])


def _raw(
    fmt: str,
    n: int,
    *,
    seed: int = 0,
    opening: int | None = None,
    edit: Callable[[list[Any]], None] | None = None,
) -> bytes:
    """The bytes of a request holding the first ``n`` messages of conversation ``seed``."""
    body = json.loads(_full_json(fmt, seed, seed if opening is None else opening))
    body[KEY[fmt]] = body[KEY[fmt]][:n]
    if edit is not None:
        edit(body[KEY[fmt]])
    return json.dumps(body).encode()


def _call(fmt: str, raw: bytes) -> Call:
    """What the front end makes of ``raw``."""
    body = json.loads(raw)
    stream = True if fmt == "gemini" else bool(body.get("stream"))
    return Call(fmt, OPS[fmt], MODEL, stream, body, len(raw))


def _target(fmt: str, variant: int = 0) -> Target:
    """A provider with ``request`` edits and a model entry with ``max_tokens`` (both touch
    the rendered body after the memo handed parts of it out)."""
    edits: dict[str, Any] = {
        "anthropic": {
            "defaults": {"metadata": {"user_id": "gateway"}, "stop_sequences": ["\n\nHuman:"]},
            "override": {"thinking": {"budget_tokens": 3000 + variant}, "top_k": 40 + variant},
            "drop": ["temperature"],
        },
        "openai": {
            "defaults": {"stream_options": {"include_usage": True, "x": variant}, "seed": 7},
            "override": {"temperature": 0.2 + variant, "parallel_tool_calls": bool(variant)},
            "drop": ["metadata"],
        },
        "gemini": {
            "defaults": {
                "safetySettings": [
                    {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}
                ],
                "generationConfig": {
                    "topK": 40 + variant,
                    "thinkingConfig": {"includeThoughts": False},
                },
            },
            "override": {"generationConfig": {"temperature": 0.3 + variant}},
            "drop": [],
        },
    }[fmt]
    spec = {
        "format": fmt,
        "base_url": "http://127.0.0.1:9/v1",
        "models": {MODEL: {"model": UPSTREAM, "max_tokens": 2048 + 1000 * variant}, "*": "*"},
        "request": edits,
    }
    t = parse_transformer(json.dumps(spec).encode(), f"{fmt}{variant}.json", {})
    return Target(t, UPSTREAM if not variant else "other-model", t.models[MODEL], MODEL)


TARGETS = {fmt: _target(fmt) for fmt in FORMAT_NAMES}
OTHER_TARGETS = {fmt: _target(fmt, 1) for fmt in FORMAT_NAMES}


def _convert(
    raw: bytes, client: str, provider: str, memo: Memo | None, *, target: Target | None = None
) -> tuple[bytes, Notes]:
    """The upstream body and the notes, as the proxy gets them. Same-format pairs go
    through :class:`Converting` (``make_adapter`` would pass the body through)."""
    call = _call(client, raw)
    target = target or TARGETS[provider]
    if client == provider:
        adapter: Any = Converting(call, target, memo)
    else:
        adapter = make_adapter(call, target, memo)
        assert isinstance(adapter, Converting)
    return adapter.body, tuple(adapter.notes)


def _same(raw: bytes, client: str, provider: str, memo: Memo) -> bytes:
    """Convert ``raw`` with ``memo``; assert the result is the memo-less one; the body."""
    got = _convert(raw, client, provider, memo)
    want = _convert(raw, client, provider, None)
    assert got[1] == want[1]
    assert got[0] == want[0]
    return got[0]


def _cost(raw: bytes, fmt: str) -> int:
    """What the memo charges for keeping the conversation of request ``raw``."""
    messages = json.loads(raw)[KEY[fmt]]
    return estimate(mark(messages), len(messages))  # type: ignore[arg-type]


def _parse(
    raw: bytes, fmt: str, memo: Memo | None, *, size: int | None = None
) -> tuple[Request, Notes]:
    return FORMATS[fmt].parse_request(
        json.loads(raw), model=MODEL, memo=memo, size=len(raw) if size is None else size
    )


def _strings(node: Any, keys: tuple[str, ...]) -> list[tuple[Any, Any]]:
    """``(container, key)`` of every string under one of ``keys`` (thoughts left out)."""
    out: list[tuple[Any, Any]] = []
    if isinstance(node, dict):
        if node.get("type") == "thinking" or node.get("thought") is True:
            return out
        for k, v in node.items():
            if k in keys and isinstance(v, str):
                out.append((node, k))
            else:
                out.extend(_strings(v, keys))
    elif isinstance(node, list):
        for v in node:
            out.extend(_strings(v, keys))
    return out


def _mark(index: int, marker: str) -> Callable[[list[Any]], None]:
    """An edit appending ``marker`` to every text of ``messages[index]``."""

    def edit(messages: list[Any]) -> None:
        spots = _strings(messages[index], ("text", "content", "result"))
        assert spots, messages[index]
        for node, k in spots:
            node[k] += marker

    return edit


def _texty(fmt: str, n: int) -> list[int]:
    """Indexes among the first ``n`` messages with text an edit can mark."""
    messages = json.loads(_full_json(fmt, 0, 0))[KEY[fmt]][:n]
    return [i for i, m in enumerate(messages) if _strings(m, ("text", "content", "result"))]


# == 1. equivalence ==========================================================================


@pytest.mark.parametrize(("client", "provider"), PAIRS)
def test_growing_conversation_converts_as_without_a_memo(client: str, provider: str) -> None:
    memo = Memo()
    lengths = list(range(6, _length(client) + 1, 2))
    assert len(lengths) >= 12
    for n in lengths:
        _same(_raw(client, n), client, provider, memo)
    # every request reused the whole of the one before it and parsed only its two new messages
    assert memo.reused == sum(lengths[:-1])
    assert memo.parsed == lengths[0] + 2 * (len(lengths) - 1)


@pytest.mark.parametrize(("client", "provider"), PAIRS)
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_edited_earlier_message_is_parsed_again(client: str, provider: str, where: str) -> None:
    memo = Memo()
    n = 20
    _same(_raw(client, n), client, provider, memo)
    spots = _texty(client, n)
    index = {"first": spots[0], "middle": spots[len(spots) // 2], "last": spots[-1]}[where]
    marker = f" EDITED-{where.upper()}"
    edited = _raw(client, n + 2, edit=_mark(index, marker))
    body = _same(edited, client, provider, memo)
    assert marker.encode() in body
    # and going back to the unedited history is not served the edit either
    body = _same(_raw(client, n + 4), client, provider, memo)
    assert marker.encode() not in body


@pytest.mark.parametrize(("client", "provider"), PAIRS)
def test_edit_deep_inside_the_first_message_is_seen(client: str, provider: str) -> None:
    """Only the image's bytes change: the conversation's fingerprint stays the same."""

    def swap_image(messages: list[Any]) -> None:
        spots = [(node, k) for node, k in _strings(messages, ("data", "url")) if _PNG in node[k]]
        assert len(spots) == 1
        node, k = spots[0]
        node[k] = node[k].replace(_PNG, _OTHER_PNG)

    memo = Memo()
    _same(_raw(client, 12), client, provider, memo)
    body = _same(_raw(client, 14, edit=swap_image), client, provider, memo)
    assert _OTHER_PNG.encode() in body
    assert _PNG.encode() not in body


@pytest.mark.parametrize(("client", "provider"), PAIRS)
def test_messages_removed_from_the_end(client: str, provider: str) -> None:
    memo = Memo()
    steps = [24, 12, 14, 8, 24]
    reused = []
    for n in steps:
        before = memo.reused
        _same(_raw(client, n), client, provider, memo)
        reused.append(memo.reused - before)
    assert reused == [0, 12, 12, 8, 8]


def _interleave(
    client: str, provider: str, memo: Memo, specs: list[dict[str, int]]
) -> list[list[int]]:
    """Requests of the conversations ``specs``, in turns; what each request reused."""
    deltas: list[list[int]] = [[] for _ in specs]
    for n in range(6, 26, 4):
        for spec, out in zip(specs, deltas, strict=True):
            before = memo.reused
            _same(_raw(client, n, **spec), client, provider, memo)
            out.append(memo.reused - before)
    return deltas


@pytest.mark.parametrize(("client", "provider"), PAIRS)
def test_interleaved_conversations(client: str, provider: str) -> None:
    memo = Memo()
    # A and B differ from the first wire message on (for OpenAI that is the shared system
    # prompt: see the next test); C opens like A and then goes elsewhere
    deltas = _interleave(client, provider, memo, [{"seed": 0}, {"seed": 1}])
    assert deltas == [[0, 6, 10, 14, 18]] * 2  # each is remembered on its own
    _interleave(client, provider, memo, [{"seed": 0}, {"seed": 2, "opening": 0}])


def test_interleaved_openai_conversations_with_one_system_prompt() -> None:
    deltas = _interleave("openai", "anthropic", Memo(), [{"seed": 0}, {"seed": 1}])
    assert deltas == [[0, 6, 10, 14, 18]] * 2


def test_cache_control_moving_to_the_newest_message() -> None:
    """Claude Code marks the last block of its newest message on every turn, so the message
    marked in one request comes back unmarked in the next: it must be parsed again."""

    def mark_last(messages: list[Any]) -> None:
        content = messages[-1]["content"]
        if isinstance(content, str):
            messages[-1]["content"] = content = [{"type": "text", "text": content}]
        content[-1]["cache_control"] = {"type": "ephemeral"}

    for provider in FORMAT_NAMES:
        memo = Memo()
        deltas = []
        for n in range(8, 30, 2):
            before = memo.reused
            _same(_raw("anthropic", n, edit=mark_last), "anthropic", provider, memo)
            deltas.append(memo.reused - before)
        assert deltas == [0] + [n - 2 - 1 for n in range(10, 30, 2)]


# == 2. property =============================================================================

_NAME = st.from_regex(r"[a-z][a-z0-9_]{0,5}", fullmatch=True)
_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=10
)
#: Small ints beside booleans on purpose: 0/1 and False/True are == in Python.
_SCALAR = st.one_of(st.integers(-2, 2), st.booleans(), _TEXT)


@st.composite
def _wire_messages(draw: st.DrawFn, min_size: int = 1) -> list[dict[str, Any]]:
    """Anthropic ``messages``: random roles, text, tool_use/tool_result pairs, thinking."""
    out: list[dict[str, Any]] = []
    ids: list[str] = []
    for _ in range(draw(st.integers(min_size, 7))):
        role = draw(st.sampled_from(["user", "user", "assistant", "assistant", "system"]))
        if role == "system" or draw(st.integers(0, 3)) == 0:
            out.append({"role": role, "content": draw(_TEXT)})
            continue
        blocks: list[dict[str, Any]] = []
        for _ in range(draw(st.integers(1, 3))):
            kind = draw(
                st.sampled_from(
                    ["text", "tool_use", "thinking"]
                    if role == "assistant"
                    else ["text", "tool_result"]
                )
            )
            if kind == "text":
                blocks.append({"type": "text", "text": draw(_TEXT)})
            elif kind == "tool_use":
                ids.append(f"toolu_{draw(_NAME)}")
                args = draw(st.dictionaries(_NAME, _SCALAR, max_size=3))
                blocks.append(
                    {"type": "tool_use", "id": ids[-1], "name": draw(_NAME), "input": args}
                )
            elif kind == "thinking":
                blocks.append(
                    {"type": "thinking", "thinking": draw(_TEXT), "signature": draw(_TEXT)}
                )
            else:
                block: dict[str, Any] = {
                    "type": "tool_result",
                    "tool_use_id": draw(st.sampled_from(ids)) if ids else f"toolu_{draw(_NAME)}",
                    "content": draw(
                        _TEXT
                        | st.lists(
                            st.builds(lambda t: {"type": "text", "text": t}, _TEXT), max_size=2
                        )
                    ),
                }
                if draw(st.booleans()):
                    block["is_error"] = draw(st.booleans())
                blocks.append(block)
        out.append({"role": role, "content": blocks})
    return out


_WIRE_TOOLS = st.lists(
    st.builds(
        lambda name, props: {
            "name": name,
            "input_schema": {
                "type": "object",
                "properties": {p: {"type": "integer", "default": v} for p, v in props.items()},
            },
        },
        _NAME,
        st.dictionaries(_NAME, _SCALAR, max_size=2),
    ),
    max_size=2,
)


def _masked(old: list[Any], new: list[Any]) -> bool:
    """True when ``==`` cannot tell the two apart where JSON can (the caveat the memo
    module documents, and dict key order): the memo may then reuse a parse that differs."""
    for a, b in zip(old, new, strict=False):
        if a != b:
            return False
        if json.dumps(a) != json.dumps(b):
            return True
    return False


def _outcome(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except BadRequest as exc:
        return ("BadRequest", str(exc))


@settings(max_examples=50, deadline=None, derandomize=True)
@given(first=_wire_messages(), data=st.data())
def test_random_conversations_parse_as_without_a_memo(
    first: list[Any], data: st.DataObject
) -> None:
    tools = data.draw(_WIRE_TOOLS)
    cut = data.draw(st.integers(0, len(first)))
    second = first[:cut] + data.draw(_wire_messages(min_size=0))
    tools2 = data.draw(st.just(tools) | _WIRE_TOOLS)
    assume(not _masked(first, second) and not _masked([tools], [tools2]))
    memo = Memo(min_messages=1)

    def parse_and_render(raw: bytes, memo: Memo | None) -> Any:
        req, notes = _parse(raw, "anthropic", memo)
        body, more = FORMATS["openai"].render_request(req, upstream_model=UPSTREAM, memo=memo)
        return req, notes, json.dumps(body), more

    for i, (messages, tool_list) in enumerate([(first, tools), (first, tools), (second, tools2)]):
        raw = json.dumps(
            {"model": MODEL, "max_tokens": 64, "messages": messages, "tools": tool_list}
        ).encode()
        got = _outcome(lambda raw=raw: parse_and_render(raw, memo))
        assert got == _outcome(lambda raw=raw: parse_and_render(raw, None))
        if i == 1 and not isinstance(got[0], str):
            assert memo.reused == len(first)  # the resent conversation was not parsed again


# == 3. reuse ================================================================================


def _role(fmt: str, message: dict[str, Any]) -> str:
    role = message["role"]
    if fmt == "openai":
        return {"developer": "system", "tool": "user", "function": "user"}.get(role, role)
    if fmt == "gemini":
        return "assistant" if role == "model" else "user"
    return str(role)


def _unmerged(fmt: str, messages: list[Any]) -> list[bool]:
    """For each canonical message the parser makes of ``messages`` (none has empty
    content here): whether it is one wire message alone rather than several merged."""
    roles: list[str] = []
    sizes: list[int] = []
    for m in messages:
        role = _role(fmt, m)
        if roles and roles[-1] == role and role != "system":
            sizes[-1] += 1
        else:
            roles.append(role)
            sizes.append(1)
    while fmt == "openai" and roles and roles[0] == "system":  # they become Request.system
        roles.pop(0)
        sizes.pop(0)
    return [s == 1 for s in sizes]


@pytest.mark.parametrize("client", FORMAT_NAMES)
def test_appended_messages_are_the_only_ones_parsed(client: str) -> None:
    memo = Memo()
    n = 20
    raw1 = _raw(client, n)
    req1, _ = _parse(raw1, client, memo)
    reused, parsed = memo.reused, memo.parsed
    req2, _ = _parse(_raw(client, n + 2), client, memo)
    assert (memo.reused - reused, memo.parsed - parsed) == (n, 2)

    alone = _unmerged(client, json.loads(raw1)[KEY[client]])
    assert len(alone) == len(req1.messages)
    assert alone.count(False) >= 1  # the fixture has merged turns in every format
    for i, (a, b) in enumerate(zip(req1.messages[:-1], req2.messages, strict=False)):
        if alone[i]:
            assert b is a, i
        else:
            assert b == a, i
    assert req2.tools == req1.tools  # parsed anew: cheaper than comparing them
    # without a memo nothing is shared
    req3, _ = _parse(_raw(client, n + 2), client, None)
    assert req3.messages[0] == req1.messages[0]
    assert req3.messages[0] is not req1.messages[0]


def _rendered_tools(provider: str, body: dict[str, Any]) -> Any:
    return body["tools"][0]["functionDeclarations"] if provider == "gemini" else body["tools"]


@pytest.mark.parametrize("client", [c for c in FORMAT_NAMES if c != "gemini"])
def test_gemini_tool_declarations_are_rendered_once_per_conversation(client: str) -> None:
    """Cleaning tool schemas for Gemini walks them all: an equal tool list of the same
    conversation reuses the declarations; another conversation renders its own."""
    memo = Memo()
    render = FORMATS["gemini"].render_request
    req1, _ = _parse(_raw(client, 12), client, memo)
    body1, notes1 = render(req1, upstream_model=UPSTREAM, memo=memo)
    req2, _ = _parse(_raw(client, 14), client, memo)  # the conversation's next request
    assert req2.tools == req1.tools
    assert req2.tools is not req1.tools
    body2, notes2 = render(req2, upstream_model=UPSTREAM, memo=memo)
    assert _rendered_tools("gemini", body2) is _rendered_tools("gemini", body1)
    assert (body1, notes1) == render(req1, upstream_model=UPSTREAM)
    assert (body2, notes2) == render(req2, upstream_model=UPSTREAM)
    other, _ = _parse(_raw(client, 14, seed=1), client, memo)  # another conversation
    body3, _ = render(other, upstream_model=UPSTREAM, memo=memo)
    assert _rendered_tools("gemini", body3) is not _rendered_tools("gemini", body1)
    assert _rendered_tools("gemini", body3) == _rendered_tools("gemini", body1)
    # a changed tool list in the same conversation is rendered anew
    body = json.loads(_raw(client, 16))
    tools = body["tools"]
    if client == "anthropic":
        tools[0]["description"] = "changed"
    else:
        tools[0]["function"]["description"] = "changed"
    req4, _ = _parse(json.dumps(body).encode(), client, memo)
    body4, _ = render(req4, upstream_model=UPSTREAM, memo=memo)
    assert _rendered_tools("gemini", body4)[0]["description"] == "changed"
    assert body4 == render(req4, upstream_model=UPSTREAM)[0]
    # a request whose conversation is not kept keeps nothing
    short, _ = _parse(_raw(client, 2, seed=5), client, memo)
    first, _ = render(short, upstream_model=UPSTREAM, memo=memo)
    again, _ = render(short, upstream_model=UPSTREAM, memo=memo)
    assert _rendered_tools("gemini", again) is not _rendered_tools("gemini", first)


@pytest.mark.parametrize("client", FORMAT_NAMES)
def test_unchanged_history_is_rendered_once_for_openai(client: str) -> None:
    """The OpenAI renderer keeps each canonical message's rendering: a message handed out
    again by the parse memo comes out as the very same dicts."""
    memo = Memo()
    render = FORMATS["openai"].render_request
    req1, _ = _parse(_raw(client, 20), client, memo)
    req2, _ = _parse(_raw(client, 22), client, memo)
    body1, _ = render(req1, upstream_model=UPSTREAM, memo=memo)
    body2, notes2 = render(req2, upstream_model=UPSTREAM, memo=memo)
    assert (body2, notes2) == render(req2, upstream_model=UPSTREAM)
    shared = sum(a is b for a, b in zip(body1["messages"], body2["messages"], strict=False))
    assert shared >= len(body1["messages"]) // 2

    def not_again(m: Any) -> Any:
        raise AssertionError(f"rendered again: {m}")

    kept = [m for m in req2.messages if any(m is k for k in req1.messages)]
    assert len(kept) >= len(req1.messages) // 2
    for m in kept:  # every message handed out again was rendered once, for req1
        memo.rendered("openai", m, not_again)
    alone, _ = render(req2, upstream_model=UPSTREAM)
    assert not any(a is b for a, b in zip(body1["messages"], alone["messages"], strict=False))


# == 4. bounds ===============================================================================


@pytest.mark.parametrize("client", FORMAT_NAMES)
def test_short_conversations_are_not_kept(client: str) -> None:
    memo = Memo(min_messages=6)
    _parse(_raw(client, 5), client, memo)
    assert memo.held_bytes == 0
    raw = _raw(client, 7)
    _parse(raw, client, memo)
    assert memo.reused == 0  # the five were not kept
    assert memo.held_bytes == _cost(raw, client)  # these seven are

    memo = Memo(min_messages=6)
    raw = _raw(client, 6)
    _parse(raw, client, memo)
    assert memo.held_bytes == _cost(raw, client)  # exactly min_messages: kept
    _parse(_raw(client, 8), client, memo)
    assert memo.reused == 6


def test_held_bytes_are_bounded_and_the_least_recently_used_goes_first() -> None:
    size = 1000
    memo = Memo(max_bytes=4 * size, cost=lambda whole, n: size)

    def reused(seed: int, n: int) -> int:
        before = memo.reused
        _parse(_raw("anthropic", n, seed=seed), "anthropic", memo, size=size)
        assert memo.held_bytes <= memo.max_bytes
        return memo.reused - before

    for seed in range(4):
        assert reused(seed, 10) == 0
    assert memo.held_bytes == 4 * size
    assert reused(0, 12) == 10  # conversation 0 is now the most recently used
    assert reused(4, 10) == 0  # a fifth: conversation 1, the least recently used, goes
    assert memo.held_bytes == 4 * size
    assert reused(0, 14) == 12
    assert reused(1, 12) == 0  # gone; kept again, so conversation 2 goes
    assert reused(3, 12) == 10
    assert reused(2, 12) == 0


def test_many_distinct_conversations_stay_within_max_bytes() -> None:
    sizes = [_cost(_raw("anthropic", 12, seed=s), "anthropic") for s in range(30)]
    memo = Memo(max_bytes=6 * max(sizes))
    for seed in range(30):
        before = memo.reused
        _convert(_raw("anthropic", 12, seed=seed), "anthropic", "openai", memo)
        assert memo.reused == before
        assert 0 < memo.held_bytes <= memo.max_bytes
    assert memo.held_bytes > memo.max_bytes - 2 * max(sizes)  # full, not emptied
    for seed, want in [(24, 12), (29, 12), (0, 0), (1, 0)]:
        before = memo.reused
        _same(_raw("anthropic", 14, seed=seed), "anthropic", "openai", memo)
        assert memo.reused - before == want, seed


def test_a_body_over_a_quarter_of_max_bytes_is_not_kept() -> None:
    raw = _raw("anthropic", 10)
    memo = Memo(max_bytes=4 * _cost(raw, "anthropic") - 4)
    _parse(raw, "anthropic", memo)
    assert memo.held_bytes == 0
    _parse(_raw("anthropic", 12), "anthropic", memo)
    assert memo.reused == 0


def test_adapter_charges_the_estimated_memory() -> None:
    memo = Memo()
    raw = _raw("openai", 12)
    _convert(raw, "openai", "anthropic", memo)
    assert memo.held_bytes == _cost(raw, "openai") > 4 * len(raw)


@pytest.mark.parametrize("client", FORMAT_NAMES)
def test_unknown_size_reuses_but_is_never_kept(client: str) -> None:
    memo = Memo()
    _parse(_raw(client, 10), client, memo, size=0)
    assert memo.held_bytes == 0
    _parse(_raw(client, 12), client, memo, size=0)
    assert memo.reused == 0
    assert memo.held_bytes == 0

    _parse(_raw(client, 14), client, memo)
    held = memo.held_bytes
    assert held > 0
    before = memo.reused
    got = _parse(_raw(client, 16), client, memo, size=0)
    assert memo.reused - before == 14
    assert got == _parse(_raw(client, 16), client, None)
    assert memo.held_bytes <= held  # the unknown-size body itself is not charged


def test_unknown_size_leaves_the_remembered_conversation() -> None:
    memo = Memo()
    _parse(_raw("anthropic", 14), "anthropic", memo)
    _parse(_raw("anthropic", 16), "anthropic", memo, size=0)
    before = memo.reused
    _parse(_raw("anthropic", 18), "anthropic", memo)
    assert memo.reused - before == 14


def _evicted_messages(render_to: str | None) -> list[Any]:
    """Weak references to conversation 0's canonical messages once five later conversations
    pushed it out of a memo that holds four (each rendered to ``render_to`` if given)."""
    memo = Memo(max_bytes=4000)
    refs: list[Any] = []
    for seed in range(6):
        req, _ = _parse(_raw("anthropic", 12, seed=seed), "anthropic", memo, size=1000)
        if render_to is not None:
            FORMATS[render_to].render_request(req, upstream_model=UPSTREAM, memo=memo)
        if seed == 0:
            refs = [weakref.ref(m) for m in req.messages]
        del req
    gc.collect()
    assert memo.held_bytes <= memo.max_bytes
    _parse(_raw("anthropic", 14), "anthropic", memo, size=1000)
    assert memo.reused == 0  # conversation 0 is no longer remembered
    assert len(refs) > 10
    return [r() for r in refs]


@pytest.mark.parametrize("render_to", [None, "anthropic", "gemini"])
def test_an_evicted_conversation_is_let_go(render_to: str | None) -> None:
    alive = _evicted_messages(render_to)
    assert alive == [None] * len(alive)


def test_an_evicted_conversation_rendered_for_openai_is_let_go() -> None:
    alive = _evicted_messages("openai")
    assert alive == [None] * len(alive)


def test_renderings_live_with_their_conversation() -> None:
    memo = Memo()
    calls: list[Any] = []

    def render(message: Any) -> list[Any]:
        calls.append(message)
        return [message.role]

    # an object the memo does not hold is rendered every time and not kept
    stray = Message("user", (Text("hi"),))
    memo.rendered("openai", stray, render)
    memo.rendered("openai", stray, render)
    assert calls == [stray, stray]

    calls.clear()
    req, _ = _parse(_raw("anthropic", 12), "anthropic", memo)
    # the messages the memo holds are those the same body parses to again (a message
    # merged from two wire messages is built anew each time)
    same, _ = _parse(_raw("anthropic", 12), "anthropic", memo)
    held = [m for m, n in zip(req.messages, same.messages, strict=True) if m is n]
    held_ids = {id(m) for m in held}
    merged = [m for m in req.messages if id(m) not in held_ids]
    assert len(held) > 8
    assert len(merged) == 1  # the fixture's two user messages in a row
    first = [memo.rendered("openai", m, render) for m in req.messages]
    again = [memo.rendered("openai", m, render) for m in req.messages]
    assert calls == [*req.messages, *merged]  # each held one rendered once...
    shared = zip(again, first, req.messages, strict=True)
    assert all(a is b for a, b, m in shared if id(m) in held_ids)
    calls.clear()
    memo.rendered("gemini", held[0], render)  # ...per format
    assert calls == [held[0]]

    # the next request keeps the history's renderings; a message it dropped takes its own
    calls.clear()

    def reword(messages: list[Any]) -> None:
        messages[-1] = {"role": messages[-1]["role"], "content": "something else"}

    nxt, _ = _parse(_raw("anthropic", 12, edit=reword), "anthropic", memo)
    assert nxt.messages[:-1] == req.messages[:-1]
    kept = zip(nxt.messages[:-1], req.messages[:-1], strict=True)
    assert all(a is b for a, b in kept if id(b) in held_ids)
    [memo.rendered("openai", m, render) for m in nxt.messages]
    assert calls == [*merged, nxt.messages[-1]]
    calls.clear()
    memo.rendered("openai", req.messages[-1], render)  # no longer held: not kept
    memo.rendered("openai", req.messages[-1], render)
    assert calls == [req.messages[-1], req.messages[-1]]


@pytest.mark.parametrize("client", FORMAT_NAMES)
def test_evictions_still_render_the_same(client: str) -> None:
    memo = Memo(max_bytes=4 * len(_raw(client, 12)))
    for n in range(6, 30, 2):
        for seed in range(3):
            _same(_raw(client, n, seed=seed), client, "openai", memo)
            assert memo.held_bytes <= memo.max_bytes


# == 5. errors ===============================================================================

BAD = [
    ("anthropic", "not-an-object", "not an object"),
    ("anthropic", "bad-role", {"role": "robot", "content": "hi"}),
    ("anthropic", "content-a-number", {"role": "user", "content": 5}),
    ("anthropic", "block-a-number", {"role": "user", "content": [42]}),
    (
        "anthropic",
        "tool_use-id-a-number",
        {"role": "assistant", "content": [{"type": "tool_use", "id": 5, "name": "Bash"}]},
    ),
    (
        "anthropic",
        "tool_result-content-a-number",
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": 7}]},
    ),
    ("openai", "not-an-object", "not an object"),
    ("openai", "bad-role", {"role": "robot", "content": "hi"}),
    (
        "openai",
        "image-url-a-number",
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": 5}}]},
    ),
    (
        "openai",
        "function-a-number",
        {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": 3}]},
    ),
    ("gemini", "not-an-object", "not an object"),
    ("gemini", "parts-a-string", {"role": "user", "parts": "hi"}),
    ("gemini", "call-name-a-number", {"role": "model", "parts": [{"functionCall": {"name": 5}}]}),
    ("gemini", "part-a-number", {"role": "user", "parts": [7]}),
]


def _error(fn: Callable[[], Any]) -> str:
    with pytest.raises(BadRequest) as info:
        fn()
    return str(info.value)


@pytest.mark.parametrize(
    ("client", "bad"), [pytest.param(fmt, bad, id=f"{fmt}-{label}") for fmt, label, bad in BAD]
)
@pytest.mark.parametrize("where", ["appended", "after the prefix", "first"])
def test_malformed_message_raises_as_without_a_memo(client: str, bad: Any, where: str) -> None:
    n = 12
    provider = {"anthropic": "openai", "openai": "gemini", "gemini": "anthropic"}[client]
    memo = Memo()
    _same(_raw(client, n), client, provider, memo)

    def put(messages: list[Any]) -> None:
        index = {"appended": n, "after the prefix": n - 3, "first": 0}[where]
        messages[index] = copy.deepcopy(bad)

    raw = _raw(client, n + 2, edit=put)
    want = _error(lambda: _parse(raw, client, None))
    assert _error(lambda: _parse(raw, client, memo)) == want
    assert _error(lambda: _convert(raw, client, provider, memo)) == want
    assert _error(lambda: _convert(raw, client, client, memo)) == want
    # the memo is still usable, and still remembers the conversation
    before = memo.reused
    _same(_raw(client, n + 2), client, provider, memo)
    assert memo.reused - before == n


@pytest.mark.parametrize("client", FORMAT_NAMES)
def test_malformed_tool_list_raises_as_without_a_memo(client: str) -> None:
    def spoil(body: dict[str, Any]) -> None:
        body["tools"] = (
            [*body["tools"], 17] if client != "gemini" else [{"functionDeclarations": [17]}]
        )

    memo = Memo()
    _parse(_raw(client, 10), client, memo)
    body = json.loads(_raw(client, 12))
    spoil(body)
    raw = json.dumps(body).encode()
    assert _error(lambda: _parse(raw, client, memo)) == _error(lambda: _parse(raw, client, None))
    before = memo.reused
    got = _parse(_raw(client, 12), client, memo)
    assert got == _parse(_raw(client, 12), client, None)
    assert memo.reused - before >= 10  # (the failed request's messages may have been kept)


# == 6. what the memo hands out is not modified downstream ===================================


@pytest.mark.parametrize(("client", "provider"), PAIRS)
def test_request_a_then_b_then_a_again(client: str, provider: str) -> None:
    """B shares A's history and tools and goes to a target with other edits and another
    max_tokens clamp; A's body afterwards is what it was, byte for byte."""
    memo = Memo()
    raw_a = _raw(client, 16)
    raw_b = _raw(client, 22)
    call_a = _call(client, raw_a)
    target = TARGETS[provider]
    first = Converting(call_a, target, memo).body
    other = _convert(raw_b, client, provider, memo, target=OTHER_TARGETS[provider])
    assert other == _convert(raw_b, client, provider, None, target=OTHER_TARGETS[provider])
    again = _convert(raw_a, client, provider, memo)
    assert again[0] == first
    assert again == _convert(raw_a, client, provider, None)
    assert json.dumps(call_a.body) == json.dumps(json.loads(raw_a))  # nor the client's body
    # and the bodies the edits apply to, taken before json encoding
    render = FORMATS[provider].render_request
    req_a, _ = _parse(raw_a, client, memo)
    body_a, _ = render(req_a, upstream_model=UPSTREAM, memo=memo)
    snapshot = json.dumps(body_a)
    _convert(raw_b, client, provider, memo, target=OTHER_TARGETS[provider])
    _convert(raw_a, client, provider, memo)
    assert json.dumps(body_a) == snapshot


# == exactness: what == on decoded JSON would miss (issue 8 item 17) =========================


def _with_input(value: dict[str, Any]) -> Callable[[list[Any]], None]:
    def edit(messages: list[Any]) -> None:
        messages[1]["content"][2]["input"] = value

    return edit


def test_tool_input_key_order_of_a_resent_message() -> None:
    """Marks keep key order: a resent tool input with reordered keys is parsed anew (issue 8
    item 17; was a strict xfail), and the messages before it are still reused."""
    memo = Memo()
    _same(
        _raw("anthropic", 10, edit=_with_input({"limit": 5, "file_path": "/a"})),
        "anthropic",
        "openai",
        memo,
    )
    _same(
        _raw("anthropic", 12, edit=_with_input({"file_path": "/a", "limit": 5})),
        "anthropic",
        "openai",
        memo,
    )
    assert memo.reused == 1  # the message before the edited one


def _reorder_first_schema(body: dict[str, Any]) -> bytes:
    """``body`` with its first tool's schema properties in reverse order."""
    props = body["tools"][0]["input_schema"]["properties"]
    body["tools"][0]["input_schema"]["properties"] = dict(reversed(props.items()))
    return json.dumps(body).encode()


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_tool_schema_key_order_of_a_resent_tool_list(provider: str) -> None:
    """Tool lists are parsed anew for every request (cheaper than comparing them), so a
    reordered schema comes out in its new order; Gemini's reused declarations are only
    reused for an identical list (issue 8 item 17; was a strict xfail)."""
    memo = Memo()
    _same(_raw("anthropic", 10), "anthropic", provider, memo)
    _same(_reorder_first_schema(json.loads(_raw("anthropic", 12))), "anthropic", provider, memo)


def test_true_for_one_in_a_resent_message() -> None:
    """``1 == 1.0 == True`` in Python, but not for the memo's marks (issue 8 item 17; was a
    strict xfail)."""
    memo = Memo()
    _same(
        _raw("anthropic", 10, edit=_with_input({"file_path": "/a", "limit": 1})),
        "anthropic",
        "openai",
        memo,
    )
    _same(
        _raw("anthropic", 12, edit=_with_input({"file_path": "/a", "limit": True})),
        "anthropic",
        "openai",
        memo,
    )
    assert memo.reused == 1  # the message before the edited one


@pytest.mark.parametrize(("client", "provider"), PAIRS)
def test_short_conversations_convert_the_same(client: str, provider: str) -> None:
    """Conversations under ``min_messages`` skip the memo (no look-up, nothing kept), also
    when a kept conversation opens the same way."""
    memo = Memo()
    _same(_raw(client, 12), client, provider, memo)
    held = memo.held_bytes
    for n in (1, 2, 4, 5):
        _same(_raw(client, n), client, provider, memo)
        _same(_raw(client, n, seed=3), client, provider, memo)
    assert memo.held_bytes == held
