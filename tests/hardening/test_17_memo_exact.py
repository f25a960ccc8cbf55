"""Issue 8 item 17: the memo never changes the output, not even where ``==`` is blind.

The memo used to reuse a remembered parse for a resent message that was ``==`` to the
remembered one; but ``1 == 1.0 == True`` and ``==`` ignores key order, and both reach the
upstream body (a tool call's arguments are the JSON text of its input; Gemini's tool
declarations keep their schema's numbers and property order). It now compares exact marks
(gateway.convert.memo.mark). For every client format that carries JSON values in its
messages (OpenAI's tool arguments are already strings) x every provider, an earlier
message is resent with such a change, and the body must be the memo-less one; the
messages before the change are still reused. The same for tool schemas sent to Gemini, from
every client format.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from gateway.convert.memo import Memo
from gateway.formats import FORMAT_NAMES
from tests.convert.test_memo import KEY, _raw, _same

#: A tool input and what it is resent as: each pair is ``==`` but not the same JSON.
SWAPS = [
    ({"n": 1, "path": "/a"}, {"n": 1.0, "path": "/a"}),
    ({"n": 1, "path": "/a"}, {"n": True, "path": "/a"}),
    ({"n": 0.0, "path": "/a"}, {"n": False, "path": "/a"}),
    ({"n": 1, "path": "/a"}, {"path": "/a", "n": 1}),
    ({"o": {"a": 1, "b": [1, {"c": 2}]}}, {"o": {"a": 1, "b": [1, {"c": 2.0}]}}),
    ({"o": {"a": 1, "b": 2}}, {"o": {"b": 2, "a": 1}}),
]


def _first_call(fmt: str, messages: list[Any]) -> tuple[int, dict[str, Any]]:
    """``(message index, the dict holding the arguments)`` of the first tool call."""
    for i, message in enumerate(messages):
        if fmt == "anthropic" and isinstance(message.get("content"), list):
            for block in message["content"]:
                if block.get("type") == "tool_use":
                    return i, block
        if fmt == "gemini":
            for part in message.get("parts", ()):
                if "functionCall" in part:
                    return i, part["functionCall"]
    raise AssertionError("no tool call in the fixture")


def _with_args(fmt: str, value: dict[str, Any]) -> Callable[[list[Any]], None]:
    def edit(messages: list[Any]) -> None:
        _, holder = _first_call(fmt, messages)
        holder["input" if fmt == "anthropic" else "args"] = value

    return edit


@pytest.mark.parametrize(("first", "then"), SWAPS)
@pytest.mark.parametrize("provider", FORMAT_NAMES)
@pytest.mark.parametrize("client", ["anthropic", "gemini"])
def test_a_resent_tool_input_that_only_equals_the_first_is_parsed_anew(
    client: str, provider: str, first: dict[str, Any], then: dict[str, Any]
) -> None:
    assert first == then
    assert json.dumps(first) != json.dumps(then)
    memo = Memo()
    _same(_raw(client, 10, edit=_with_args(client, first)), client, provider, memo)
    raw = _raw(client, 12, edit=_with_args(client, then))
    before = memo.reused
    body = _same(raw, client, provider, memo)
    where, _ = _first_call(client, json.loads(raw)[KEY[client]])
    assert memo.reused - before == where  # everything before the edited message
    wanted = json.dumps(then, separators=(",", ":"))
    if provider != "openai":  # OpenAI carries arguments as a string: escaped inside it
        assert wanted in body.decode()
    else:
        assert json.dumps(wanted)[1:-1] in body.decode()


def _with_schema(value: Any) -> Callable[[dict[str, Any], str], None]:
    def edit(body: dict[str, Any], fmt: str) -> None:
        if fmt == "openai":
            body["tools"][0]["function"]["parameters"]["properties"]["n"] = value
        elif fmt == "anthropic":
            body["tools"][0]["input_schema"]["properties"]["n"] = value
        else:
            decl = body["tools"][0]["functionDeclarations"][0]
            schema = decl.get("parametersJsonSchema") or decl.get("parameters")
            schema["properties"]["n"] = value

    return edit


SCHEMA_SWAPS = [
    ({"type": "integer", "minimum": 1}, {"type": "integer", "minimum": 1.0}),
    (
        {"type": "integer", "minimum": 1, "maximum": 9},
        {"type": "integer", "maximum": 9, "minimum": 1},
    ),
    ({"type": "number", "minimum": 0.0}, {"type": "number", "minimum": 0}),
]


@pytest.mark.parametrize(("first", "then"), SCHEMA_SWAPS)
@pytest.mark.parametrize("client", FORMAT_NAMES)
def test_a_resent_tool_schema_that_only_equals_the_first_is_rendered_anew_for_gemini(
    client: str, first: Any, then: Any
) -> None:
    memo = Memo()
    tools = []
    for n, value in ((10, first), (12, then)):
        body = json.loads(_raw(client, n))
        _with_schema(value)(body, client)
        out = _same(json.dumps(body).encode(), client, "gemini", memo)
        tools.append(json.dumps(json.loads(out)["tools"]))
    assert tools[0] != tools[1]  # the change shows in the declarations
