"""Canonical :class:`~gateway.convert.model.Request` -> Gemini ``generateContent`` request body.

Contract (wire-formats §3.2, §3.3, §4): :func:`render_request` obeys Gemini's turn
rules (§4.3 rule 2, §5.3 item 18): contents alternate ``user``/``model``, start
and end with a user turn, a model turn with N function calls is followed by a
user turn with exactly N function responses in call order (missing ones filled
with an error response), follow-up user text sits in a separate user turn, no
empty parts. Tool schemas go through the §4.6 sanitiser. Gemini signatures of
function calls are put back on the calls; in the current turn a call without
one gets Google's documented placeholder (§4.13) so Gemini 3 does not reject
it. Mid-conversation system messages join ``systemInstruction`` (Gemini has no
system role in contents). The parser is :mod:`gateway.formats.gemini.request_parse`.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping
from typing import Any

from gateway.convert import _util as u
from gateway.convert._common import (
    GEMINI_EFFORT_BUDGET,
    call_names,
    result_text,
)
from gateway.convert.memo import Memo
from gateway.convert.model import (
    Audio,
    ContentPart,
    Document,
    Image,
    Message,
    Notes,
    Reasoning,
    Request,
    Text,
    Tool,
    ToolCall,
    ToolResult,
)
from gateway.convert.names import DUMMY_GEMINI_SIGNATURE, SYNTH_ID_PREFIX, wire_tool_name
from gateway.convert.schema import to_gemini_schema
from gateway.errors import BadRequest
from gateway.formats.gemini.wire import TOOL_NAMES

__all__ = ["render_request"]

_NO_RESULT = "No result was provided for this tool call."
#: Models that validate function-call thought signatures (Gemini 3 and later).
_OLD_MODELS = re.compile(r"gemini-(?:1|2)(?:\.|-)", re.IGNORECASE)
_LEVELS = {"minimal": "MINIMAL", "low": "LOW", "medium": "MEDIUM", "high": "HIGH", "xhigh": "HIGH"}


def render_request(
    req: Request, *, upstream_model: str, memo: Memo | None = None
) -> tuple[dict[str, Any], Notes]:
    """Render a canonical request as a Gemini ``GenerateContentRequest`` body.

    ``memo`` reuses the declarations rendered lately for an equal tool list (cleaning the
    JSON schemas for Gemini walks every schema).

    The model and streaming live in the URL
    (``models/{upstream_model}:generateContent`` or
    ``:streamGenerateContent?alt=sse``), so neither is in the body.

    Raises:
        BadRequest: audio output was asked for.
    """
    notes: list[str] = []
    if req.audio_output:
        raise BadRequest("This model's provider cannot produce audio; remove `modalities`/`audio`.")
    if req.n is not None and req.n > 1:
        # Gemini could, but the gateway relays one candidate: refuse rather than drop answers.
        raise BadRequest("This model's provider returns one choice per request here; set `n` to 1.")
    body: dict[str, Any] = {}
    system = [t.text for t in req.system if t.text]
    for m in req.messages:
        if m.role == "system":
            system.extend(p.text for p in m.content if isinstance(p, Text) and p.text)
            notes.append("mid-conversation system message moved into systemInstruction")
    if system:
        body["systemInstruction"] = {"parts": [{"text": t} for t in system]}
    body["contents"] = _render_contents(req.messages, upstream_model, notes)
    _render_tools(req, body, notes, memo)
    gen = _render_generation_config(req, upstream_model, notes)
    if gen:
        body["generationConfig"] = gen
    if req.user or req.metadata:
        notes.append("user/metadata dropped: Gemini has no equivalent")
    if req.parallel_tool_calls is False:
        notes.append("parallel_tool_calls=false dropped: Gemini has no equivalent")
    if req.extra:
        if req.extra_format == "gemini":
            for k, v in req.extra.items():
                body.setdefault(k, v)
        else:
            notes.append(
                "dropped fields with no Gemini equivalent: " + ", ".join(sorted(req.extra))
            )
    return body, tuple(notes)


def _render_generation_config(req: Request, model: str, notes: list[str]) -> dict[str, Any]:
    gen: dict[str, Any] = {}
    for field, key in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("top_k", "topK"),
        ("max_tokens", "maxOutputTokens"),
        ("n", "candidateCount"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ):
        value = getattr(req, field)
        if value is not None:
            gen[key] = value
    if req.stop:
        gen["stopSequences"] = list(req.stop[:5])
        if len(req.stop) > 5:
            notes.append("stop sequences beyond the first 5 dropped (Gemini's limit)")
    rf = req.response_format
    if rf is not None and rf.type != "text":
        gen["responseMimeType"] = "application/json"
        if rf.type == "json_schema" and rf.schema is not None:
            schema = to_gemini_schema(rf.schema, root=False)
            if schema:
                gen["responseSchema"] = schema
    thinking = _render_thinking(req.reasoning, model, notes)
    if thinking:
        gen["thinkingConfig"] = thinking
    return gen


def _render_thinking(r: Reasoning | None, model: str, notes: list[str]) -> dict[str, Any]:
    if r is None:
        return {}
    out: dict[str, Any] = {}
    old = bool(_OLD_MODELS.search(model))
    if r.mode == "disabled" or r.effort == "none":
        if old:
            out["thinkingBudget"] = 0
        else:
            out["thinkingLevel"] = "LOW"
            notes.append("thinking cannot be turned off on this Gemini model; asked for LOW")
    elif r.mode == "adaptive":
        out["thinkingBudget"] = -1
    elif r.budget_tokens is not None:
        out["thinkingBudget"] = r.budget_tokens
    elif r.effort is not None and r.effort in GEMINI_EFFORT_BUDGET:
        if old:
            out["thinkingBudget"] = GEMINI_EFFORT_BUDGET[r.effort]
        else:
            out["thinkingLevel"] = _LEVELS.get(r.effort, "HIGH")
    if r.include_thoughts and r.mode != "disabled":
        out["includeThoughts"] = True
    return out


def _declarations(tools: tuple[Tool, ...]) -> list[dict[str, Any]]:
    decls = []
    for t in tools:
        decl: dict[str, Any] = {"name": wire_tool_name(t.name, TOOL_NAMES)}
        if t.description:
            decl["description"] = t.description
        params = to_gemini_schema(t.parameters) if t.parameters is not None else None
        if params is not None:
            decl["parameters"] = params
        decls.append(decl)
    return decls


def _render_tools(req: Request, body: dict[str, Any], notes: list[str], memo: Memo | None) -> None:
    choice = req.tool_choice
    tools = req.tools
    if choice is not None and choice.allowed and choice.mode == "auto":
        allowed = set(choice.allowed)
        tools = tuple(t for t in tools if t.name in allowed)
        notes.append("allowed_tools in auto mode: tools outside the list were left out")
    if not tools:
        return
    if memo is not None:
        decls = memo.rendered_tools("gemini", req.messages, tools, _declarations)
    else:
        decls = _declarations(tools)
    body["tools"] = [{"functionDeclarations": decls}]
    if choice is None:
        return
    fcc: dict[str, Any]
    if choice.mode == "tool":
        name = wire_tool_name(choice.name or "", TOOL_NAMES)
        fcc = {"mode": "ANY", "allowedFunctionNames": [name]}
    elif choice.mode == "any":
        fcc = {"mode": "ANY"}
        if choice.allowed:
            fcc["allowedFunctionNames"] = [wire_tool_name(n, TOOL_NAMES) for n in choice.allowed]
    else:
        fcc = {"mode": choice.mode.upper()}
    body["toolConfig"] = {"functionCallingConfig": fcc}


# -- contents ------------------------------------------------------------------------------


def _render_contents(
    messages: tuple[Message, ...], model: str, notes: list[str]
) -> list[dict[str, Any]]:
    names = call_names(messages)
    # Gemini 3 takes media inside a function response (``functionResponse.parts``).
    media_parts = not _OLD_MODELS.search(model)
    turns: list[list[Any]] = []  # [role, kind ("text" | "fr"), parts]
    for m in messages:
        if m.role == "system":
            continue
        if m.role == "assistant":
            parts = [p for p in (_model_part(c) for c in m.content) if p is not None]
            _add(turns, "model", "text", parts)
            continue
        results = [p for p in m.content if isinstance(p, ToolResult)]
        responses = [_response_part(p, names, media_parts) for p in results]
        others = [
            p
            for p in (_user_part(c) for c in m.content if not isinstance(c, ToolResult))
            if p is not None
        ]
        if not media_parts:  # the results' media follow in the user turn after them
            late = [
                _media_part(c.media_type, c.data, c.url) for r in results for c in _result_media(r)
            ]
            if late:
                notes.append("media of tool results sent as user parts after the responses")
                others = late + others
        _add(turns, "user", "fr", responses)
        _add(turns, "user", "text", others)
    _pair_function_calls(turns, notes)
    if turns and turns[0][0] == "model":
        turns.insert(0, ["user", "text", [{"text": "."}]])
        notes.append("added a placeholder user turn: Gemini histories start with a user turn")
    while turns and turns[-1][0] == "model":
        turns.pop()
        notes.append("dropped a trailing model turn: Gemini requests end with a user turn")
    if not _OLD_MODELS.search(model):
        _fill_signatures(turns, notes)
    return [{"role": role, "parts": parts} for role, _, parts in turns]


def _add(turns: list[list[Any]], role: str, kind: str, parts: list[dict[str, Any]]) -> None:
    if not parts:
        return
    if turns and turns[-1][0] == role and turns[-1][1] == kind:
        turns[-1][2].extend(parts)
    else:
        turns.append([role, kind, list(parts)])


def _user_part(p: ContentPart) -> dict[str, Any] | None:
    if isinstance(p, Text):
        return {"text": p.text} if p.text else None
    if isinstance(p, (Image, Document)):
        return _media_part(p.media_type, p.data, p.url)
    if isinstance(p, Audio):
        return {"inlineData": {"mimeType": p.media_type, "data": p.data}}
    return None


def _media_part(media_type: str | None, data: str | None, url: str | None) -> dict[str, Any]:
    if url is not None:
        parsed = u.parse_data_url(url)
        if parsed is None:
            mime = media_type or u.guess_mime(url, "application/octet-stream")
            return {"fileData": {"mimeType": mime, "fileUri": url}}
        media_type, data = parsed
    return {
        "inlineData": {"mimeType": media_type or "application/octet-stream", "data": data or ""}
    }


def _model_part(p: ContentPart) -> dict[str, Any] | None:
    if isinstance(p, Text):
        return {"text": p.text} if p.text else None
    if isinstance(p, ToolCall):
        args, _ = u.args_object(p.arguments)
        fc: dict[str, Any] = {"name": wire_tool_name(p.name, TOOL_NAMES), "args": args}
        if p.id and not p.id.startswith(SYNTH_ID_PREFIX):
            fc["id"] = p.id
        part: dict[str, Any] = {"functionCall": fc}
        if p.signature:
            part["thoughtSignature"] = p.signature
        return part
    return None  # thinking is not sent back; Gemini only validates call signatures


def _result_media(result: ToolResult) -> list[Image | Document]:
    return [c for c in result.content if isinstance(c, (Image, Document))]


def _response_part(
    p: ToolResult, names: Mapping[str, str], media_parts: bool = True
) -> dict[str, Any]:
    """A tool result as a ``functionResponse``: its text (one line per text block) as the
    response, its images and documents as ``parts`` (wire-formats §4.10) when
    ``media_parts`` (else the caller sends them after)."""
    name = p.name or names.get(p.call_id) or "tool"
    text = result_text(p)
    response: dict[str, Any]
    if p.is_error:
        response = {"error": text or "error"}
    else:
        value, ok = u.args_object(text) if text.startswith("{") else ({}, False)
        response = value if ok and value else {"result": text}
    fr: dict[str, Any] = {"name": wire_tool_name(name, TOOL_NAMES), "response": response}
    if p.call_id and not p.call_id.startswith(SYNTH_ID_PREFIX):
        fr["id"] = p.call_id
    media = _result_media(p) if media_parts else []
    if media:
        fr["parts"] = [_media_part(c.media_type, c.data, c.url) for c in media]
    return {"functionResponse": fr}


def _pair_function_calls(turns: list[list[Any]], notes: list[str]) -> None:
    """N function calls -> the next turn holds exactly N responses, in call order.

    One pass that builds the new list; responses are found through indexes by id and by
    name (searching the pool for every call, or deleting turns in place, would cost the
    square of a turn's calls or of the history).
    """
    out: list[list[Any]] = []
    i, n = 0, len(turns)
    while i < n:
        turn = turns[i]
        role, kind, parts = turn
        calls = [p["functionCall"] for p in parts if "functionCall" in p] if role == "model" else []
        if not calls:
            if role == "user" and kind == "fr":  # not right after a model turn with calls
                notes.append("dropped function responses that answer no function call")
            else:
                out.append(turn)
            i += 1
            continue
        nxt = turns[i + 1] if i + 1 < n and turns[i + 1][1] == "fr" else None
        pool = _Pool(nxt[2] if nxt else [])
        ordered = []
        for call in calls:
            match = pool.take(call)
            if match is None:
                notes.append(f"added an error response for unanswered call {call['name']}")
                match = {
                    "functionResponse": {"name": call["name"], "response": {"error": _NO_RESULT}}
                }
                if "id" in call:
                    match["functionResponse"]["id"] = call["id"]
            ordered.append(match)
        if pool.left:
            notes.append("dropped function responses that answer no function call")
        out.append(turn)
        out.append(["user", "fr", ordered])
        i += 2 if nxt is not None else 1
    turns[:] = out


class _Pool:
    """A turn's function responses, taken by a call's id (else its name), first come first."""

    __slots__ = ("_by", "_parts", "_taken", "left")

    def __init__(self, parts: list[dict[str, Any]]) -> None:
        self._parts = parts
        self._taken = [False] * len(parts)
        self.left = len(parts)
        self._by: dict[tuple[str, Any], deque[int]] = {}
        for j, part in enumerate(parts):
            fr = part["functionResponse"]
            if "id" in fr:
                self._by.setdefault(("id", fr["id"]), deque()).append(j)
            self._by.setdefault(("name", fr.get("name")), deque()).append(j)

    def take(self, call: Mapping[str, Any]) -> dict[str, Any] | None:
        for key in ("id", "name"):
            if key not in call:
                continue
            positions = self._by.get((key, call[key]))
            while positions:
                j = positions.popleft()
                if not self._taken[j]:
                    self._taken[j] = True
                    self.left -= 1
                    return self._parts[j]
        return None


def _fill_signatures(turns: list[list[Any]], notes: list[str]) -> None:
    """First call of each model step in the current turn must carry a signature (§5.3)."""
    start = 0
    for i, (role, kind, _) in enumerate(turns):
        if role == "user" and kind == "text":
            start = i
    for role, _, parts in turns[start:]:
        if role != "model":
            continue
        first = next((p for p in parts if "functionCall" in p), None)
        if first is not None and "thoughtSignature" not in first:
            first["thoughtSignature"] = DUMMY_GEMINI_SIGNATURE
            notes.append("function call without a Gemini thought signature: sent the placeholder")
