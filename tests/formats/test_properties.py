"""Property: canonical request -> wire format -> canonical keeps what that format can express."""

from __future__ import annotations

import base64
import json
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.convert._util import dumps
from gateway.convert.model import (
    Image,
    Message,
    Request,
    Text,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
)
from gateway.convert.schema import to_gemini_schema
from gateway.formats import FORMATS

NAME = st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True)
TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=20
).filter(lambda s: bool(s.strip()) and not s.startswith("{"))
SCALAR = st.one_of(TEXT, st.integers(-1000, 1000), st.booleans())


@st.composite
def tools(draw: st.DrawFn) -> tuple[Tool, ...]:
    names = draw(st.lists(NAME, min_size=1, max_size=3, unique=True))
    out = []
    for name in names:
        props = draw(st.lists(NAME, min_size=1, max_size=3, unique=True))
        required = draw(st.lists(st.sampled_from(props), unique=True))
        schema = {"type": "object", "properties": {p: {"type": "string"} for p in props}}
        if required:
            schema["required"] = required
        out.append(Tool(name, draw(st.none() | TEXT), schema))
    return tuple(out)


@st.composite
def requests(draw: st.DrawFn, *, system_messages: bool = True) -> Request:
    toolset = draw(st.none() | tools())
    counter = iter(range(1000))
    png = base64.b64encode(draw(st.binary(min_size=1, max_size=12))).decode()
    first: list[Any] = [Text(draw(TEXT))]
    if draw(st.booleans()):
        first.append(Image("image/png", png))
    messages = [Message("user", tuple(first))]
    if system_messages and draw(st.booleans()):  # as Claude Code sends it (§5.5)
        messages.append(Message("system", (Text(draw(TEXT)),)))
    for _ in range(draw(st.integers(0, 3))):
        calls = []
        if toolset:
            for _ in range(draw(st.integers(0, 2))):
                tool = draw(st.sampled_from(toolset))
                args = draw(st.dictionaries(NAME, SCALAR, max_size=3))
                calls.append(
                    ToolCall(
                        f"call_{next(counter)}_{draw(NAME)}",
                        tool.name,
                        dumps(args),
                    )
                )
        lead = [Text(draw(TEXT))] if draw(st.booleans()) or not calls else []
        messages.append(Message("assistant", tuple(lead + calls)))
        answers: list[Any] = [ToolResult(c.id, (Text(draw(TEXT)),)) for c in calls]
        if draw(st.booleans()) or not calls:
            answers.append(Text(draw(TEXT)))
        messages.append(Message("user", tuple(answers)))
    choice = None
    if toolset:
        choice = draw(
            st.none()
            | st.sampled_from([ToolChoice("auto"), ToolChoice("any"), ToolChoice("none")])
            | st.sampled_from(toolset).map(lambda t: ToolChoice("tool", name=t.name))
        )
    temperature = draw(st.none() | st.floats(0, 1, allow_nan=False).map(lambda f: round(f, 3)))
    return Request(
        model="up-model",
        messages=tuple(messages),
        system=tuple(Text(t) for t in draw(st.lists(TEXT, max_size=2))),
        tools=toolset or (),
        tool_choice=choice,
        max_tokens=draw(st.integers(1, 100000)),
        temperature=temperature,
        top_p=None
        if temperature is not None
        else draw(st.none() | st.floats(0.1, 1).map(lambda f: round(f, 3))),
        stop=tuple(draw(st.lists(TEXT, max_size=4))),
    )


FIELDS = (
    "messages",
    "system",
    "tools",
    "tool_choice",
    "max_tokens",
    "temperature",
    "top_p",
    "stop",
)


def view(req: Request) -> dict[str, Any]:
    return {f: getattr(req, f) for f in FIELDS}


def round_trip(fmt: str, req: Request, **options: Any) -> Request:
    body, _ = FORMATS[fmt].render_request(req, upstream_model=req.model, **options)
    body = json.loads(json.dumps(body))  # what goes over the wire
    back, notes = FORMATS[fmt].parse_request(body, model=req.model)
    assert notes == ()
    return back


@settings(max_examples=150, deadline=None, derandomize=True)
@given(req=requests())
def test_anthropic_keeps_everything(req: Request) -> None:
    back = round_trip("anthropic", req, system_messages=True)
    assert view(back) == view(req)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(req=requests())
def test_openai_keeps_everything_but_system_blocks(req: Request) -> None:
    back = round_trip("openai", req)
    want = view(req)
    want["system"] = (Text("\n\n".join(t.text for t in req.system)),) if req.system else ()
    assert view(back) == want


@settings(max_examples=150, deadline=None, derandomize=True)
@given(req=requests(system_messages=False))
def test_gemini_keeps_everything_but_tool_result_names(req: Request) -> None:
    req = attrs.evolve(req, model="gemini-2.5-flash")  # no placeholder signatures (Gemini 3 only)
    back = round_trip("gemini", req)
    # Gemini names every function response; the canonical result learns the name.
    messages = tuple(
        Message(
            m.role,
            tuple(
                attrs.evolve(p, name=None) if isinstance(p, ToolResult) else p for p in m.content
            ),
        )
        for m in back.messages
    )
    got = view(attrs.evolve(back, messages=messages))
    want = view(req)
    want["tools"] = tuple(
        attrs.evolve(t, parameters=to_gemini_schema(t.parameters)) for t in req.tools
    )
    assert got == want


@pytest.mark.parametrize("src", ["openai", "anthropic", "gemini"])
@pytest.mark.parametrize("dst", ["openai", "anthropic", "gemini"])
@settings(max_examples=40, deadline=None, derandomize=True)
@given(req=requests())
def test_any_pair_converts_without_crashing(src: str, dst: str, req: Request) -> None:
    body, _ = FORMATS[src].render_request(req, upstream_model="m")
    parsed, _ = FORMATS[src].parse_request(json.loads(json.dumps(body)), model="m")
    out, _ = FORMATS[dst].render_request(parsed, upstream_model="m")
    json.dumps(out)
