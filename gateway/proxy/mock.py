"""The built-in offline ``mock`` provider (a transformer file with ``"format": "mock"``).

A provider kind, not a wire format: it answers in the client's own format,
whatever that is. The client's body is parsed into the canonical model by the
client format's parser, answered by :func:`mock_response` (or
:func:`mock_stream`), and the answer is rendered by the client format's own
renderer, so the mock exercises the same renderers as real conversions
(:func:`answer_from_mock`, the one function here that does I/O). A
count-tokens call gets the gateway's estimate, as for a provider of another
format.

The answer itself is pure and deterministic (the same request always gets the
same answer, ids included), so it works in every client format and in tests:

- answers ``Echo: <last user text>`` (JSON when a JSON response format was
  asked for: ``{"echo": ...}`` or a placeholder object built from the schema);
- honours ``max_tokens`` as a count of whitespace-separated words (cut there,
  stop reason ``max_tokens``) and stop sequences (cut before, ``stop_sequence``);
- calls a tool when the request forces one (``tool_choice`` naming a tool, or
  ``any``/``required``: the first tool allowed) or when the last user text says
  ``call <tool name>`` for a tool the request defines; the arguments hold a
  placeholder of each required property's type. A user turn holding only tool
  results is answered with what the tools returned;
- reports usage: the rough estimate of tokens.py in, answer words out.

:func:`mock_stream` is the same answer as stream events, text in several deltas.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from gateway.convert import _util as u
from gateway.convert._common import result_text
from gateway.convert.emulate import response_to_stream
from gateway.convert.encoded import dumps_body
from gateway.convert.model import (
    MessageStart,
    Request,
    Response,
    StopReason,
    StreamEvent,
    Text,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolResult,
    Usage,
    UsageUpdate,
)
from gateway.convert.tokens import estimate_input_tokens
from gateway.formats import FORMATS
from gateway.proxy.adapters import off_loop
from gateway.proxy.replies import (
    answer_estimated_count,
    note_usage,
    provider_header,
    stream_headers,
)
from gateway.server.responses import JSON, SSE

if TYPE_CHECKING:
    from gateway.call import Call
    from gateway.routing import Target
    from gateway.server.exchange import Exchange

__all__ = ["answer_from_mock", "mock_response", "mock_stream", "placeholder"]

_CALL = re.compile(r"\bcall\s+([A-Za-z0-9_.:-]+)", re.IGNORECASE)
_PLACEHOLDER = {"string": "example", "integer": 1, "number": 1.5, "boolean": True, "null": None}


def placeholder(schema: Any, depth: int = 0) -> Any:
    """A value of the type ``schema`` describes (required object properties filled in)."""
    if not isinstance(schema, Mapping) or depth > 8:
        return {}
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        for key in ("anyOf", "oneOf"):
            if isinstance(schema.get(key), list) and schema[key]:
                return placeholder(schema[key][0], depth + 1)
        kind = "object" if "properties" in schema else "string"
    if kind == "array":
        return (
            [placeholder(schema["items"], depth + 1)]
            if isinstance(schema.get("items"), Mapping)
            else []
        )
    if kind == "object":
        props = schema.get("properties")
        if not isinstance(props, Mapping):
            props = {}
        required = schema.get("required")
        if not isinstance(required, list):
            required = []
        return {k: placeholder(props.get(k), depth + 1) for k in required if isinstance(k, str)}
    return _PLACEHOLDER.get(str(kind).lower(), "example")


def _last_user(req: Request) -> tuple[str, list[ToolResult]]:
    for m in reversed(req.messages):
        if m.role == "user":
            text = " ".join(p.text for p in m.content if isinstance(p, Text)).strip()
            return text, [p for p in m.content if isinstance(p, ToolResult)]
    return "", []


def _forced_tool(req: Request, text: str) -> Tool | None:
    tools = {t.name: t for t in req.tools}
    choice = req.tool_choice
    if not tools or (choice is not None and choice.mode == "none"):
        return None
    if choice is not None and choice.mode == "tool" and choice.name in tools:
        return tools[choice.name]
    if choice is not None and choice.mode == "any":
        names = [n for n in choice.allowed if n in tools] or list(tools)
        return tools[names[0]]
    for match in _CALL.finditer(text):
        name = match.group(1).rstrip(".,;:!?")
        if name in tools:
            return tools[name]
    return None


def _answer_text(req: Request, text: str, results: list[ToolResult]) -> str:
    rf = req.response_format
    if rf is not None and rf.type == "json_schema" and rf.schema is not None:
        return u.dumps(placeholder(rf.schema))
    if rf is not None and rf.type == "json_object":
        return u.dumps({"echo": text})
    if results and not text:
        return " ".join(f"Tool {r.call_id} returned: {result_text(r)}" for r in results)
    return f"Echo: {text}" if text else "Hello from the mock provider."


def mock_response(req: Request, *, model: str) -> Response:
    """The mock provider's whole answer to ``req``, reported as coming from ``model``."""
    text, results = _last_user(req)
    digest = hashlib.sha1(
        f"{model}\0{len(req.messages)}\0{text}".encode("utf-8", "surrogatepass")
    ).hexdigest()[:16]
    usage_in = estimate_input_tokens(req)
    tool = _forced_tool(req, text)
    if tool is not None:
        args = placeholder(tool.parameters) if tool.parameters is not None else {}
        call = ToolCall(f"call_mock_{digest[:12]}", tool.name, u.dumps(args))
        return Response(
            f"mock-{digest}", model, (call,), StopReason.TOOL_USE, usage=Usage(usage_in, 1)
        )
    answer = _answer_text(req, text, results)
    stop, stop_sequence = StopReason.END_TURN, None
    for seq in req.stop:
        if seq and seq in answer:
            answer, stop, stop_sequence = answer[: answer.index(seq)], StopReason.STOP_SEQUENCE, seq
    words = answer.split()
    if req.max_tokens is not None and len(words) > req.max_tokens:
        answer = " ".join(words[: max(req.max_tokens, 0)])
        stop, stop_sequence = StopReason.MAX_TOKENS, None
        words = answer.split()
    content = (Text(answer),) if answer else ()
    usage = Usage(usage_in, len(words))
    return Response(f"mock-{digest}", model, content, stop, stop_sequence, usage)


def mock_stream(req: Request, *, model: str) -> list[StreamEvent]:
    """The same answer as :func:`mock_response`, as canonical stream events."""
    resp = mock_response(req, model=model)
    words = sum(len(p.text.split()) for p in resp.content if isinstance(p, Text))
    events = response_to_stream(resp, text_pieces=min(max(words, 1), 8))
    out: list[StreamEvent] = []
    for ev in events:
        if isinstance(ev, ToolCallDelta) and len(ev.arguments) > 1:
            half = len(ev.arguments) // 2  # tool arguments arrive in fragments too
            out.append(attrs.evolve(ev, arguments=ev.arguments[:half]))
            out.append(attrs.evolve(ev, arguments=ev.arguments[half:]))
        else:
            out.append(ev)
    return out


async def answer_from_mock(ex: Exchange, call: Call, target: Target) -> None:
    """The mock's answer to ``call``, in the client's own format, written to ``ex``."""
    if call.op == "count_tokens":
        await answer_estimated_count(ex, call, target.transformer.name)
        return
    client = FORMATS[call.fmt]
    parse = functools.partial(client.parse_request, call.body, model=call.model, stream=call.stream)
    req, _notes = await off_loop(call.size, parse)
    if not call.stream:
        resp = mock_response(req, model=target.upstream_model)
        note_usage(ex, resp.usage)
        # dumps_body: a lone surrogate the client sent goes back as the same escape.
        answer = dumps_body(client.render_response(resp, model=call.model))
        head = [provider_header(target.transformer.name)]
        await ex.respond(200, answer, content_type=JSON, headers=head)
        return
    renderer = client.stream_renderer(call.model, include_usage=req.include_usage)
    await ex.start(200, content_type=SSE, headers=stream_headers(target.transformer.name))
    for event in mock_stream(req, model=target.upstream_model):
        if isinstance(event, (MessageStart, UsageUpdate)):
            note_usage(ex, event.usage)
        await ex.send(renderer.render(event))
    await ex.send(renderer.finish())
