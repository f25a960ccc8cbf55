"""Gemini ``generateContent`` request body <-> canonical :class:`~gateway.convert.model.Request`.

Contract (wire-formats §3.2, §3.3, §4): the model and the stream flag live in the
URL, so :func:`parse_request` takes them as arguments; keys are read in
lowerCamelCase or snake_case (proto JSON accepts both). Function calls without
an id get a deterministic one (``call_gm_<turn>_<n>``) and responses are matched
to calls by id, else by name in order (§4.9).

:func:`render_request` obeys Gemini's turn rules (§4.3 rule 2, §5.3 item 18):
contents alternate ``user``/``model``, start and end with a user turn, a model
turn with N function calls is followed by a user turn with exactly N function
responses in call order (missing ones filled with an error response), follow-up
user text sits in a separate user turn, no empty parts. Tool schemas go through
the §4.6 sanitiser. Gemini signatures of function calls are put back on the
calls; in the current turn a call without one gets Google's documented
placeholder (§4.13) so Gemini 3 does not reject it. Mid-conversation system
messages join ``systemInstruction`` (Gemini has no system role in contents).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from gateway.convert import _util as u
from gateway.convert._common import (
    EFFORTS,
    GEMINI_EFFORT_BUDGET,
    call_names,
    merge_messages,
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
    ResponseFormat,
    Role,
    Text,
    Thinking,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
)
from gateway.convert.names import DUMMY_GEMINI_SIGNATURE, SYNTH_ID_PREFIX, wire_tool_name
from gateway.convert.schema import from_gemini_schema, to_gemini_schema
from gateway.errors import BadRequest

__all__ = ["parse_request", "render_request"]

_MODELLED = frozenset(
    {
        "contents",
        "systemInstruction",
        "system_instruction",
        "tools",
        "toolConfig",
        "tool_config",
        "generationConfig",
        "generation_config",
        "model",
    }
)
_SNAKE = re.compile(r"(?<!^)(?=[A-Z])")
_NO_RESULT = "No result was provided for this tool call."
#: Models that validate function-call thought signatures (Gemini 3 and later).
_OLD_MODELS = re.compile(r"gemini-(?:1|2)(?:\.|-)", re.IGNORECASE)
_LEVELS = {"minimal": "MINIMAL", "low": "LOW", "medium": "MEDIUM", "high": "HIGH", "xhigh": "HIGH"}


def gk(d: Mapping[str, Any], camel: str) -> Any:
    """A proto-JSON field by its lowerCamelCase name, or its snake_case twin."""
    value = d.get(camel)
    if value is None:
        value = d.get(_SNAKE.sub("_", camel).lower())
    return value


def _gdict(d: Mapping[str, Any], camel: str, path: str) -> dict[str, Any] | None:
    value = gk(d, camel)
    return None if value is None else u.expect_dict(value, f"{path}.{camel}" if path else camel)


def _glist(d: Mapping[str, Any], camel: str, path: str) -> list[Any]:
    value = gk(d, camel)
    return [] if value is None else u.expect_list(value, f"{path}.{camel}" if path else camel)


# == parse ===================================================================================


def parse_request(
    body: Any,
    *,
    model: str | None = None,
    stream: bool | None = None,
    memo: Memo | None = None,
    size: int = 0,
) -> tuple[Request, Notes]:
    """Parse a Gemini ``GenerateContentRequest`` body.

    Args:
        body: the decoded JSON body.
        model: the model named in the URL (``models/{model}:generateContent``).
        stream: True for ``:streamGenerateContent``.
        memo: reuse the parse of history seen lately (same result).
        size: the body's size in bytes, for the memo's bound.

    Returns:
        ``(request, notes)``.

    Raises:
        BadRequest: ``contents`` is missing, a known field has the wrong type, or
            the body uses a Gemini-only tool.
    """
    body = u.expect_dict(body, "body")
    notes: list[str] = []
    name = model or (gk(body, "model") if isinstance(gk(body, "model"), str) else "")
    if not name:
        raise BadRequest("The model name is required in the request URL.")
    if gk(body, "contents") is None:
        raise BadRequest("`contents` is required.")
    raw_list = _glist(body, "contents", "")
    if memo is not None:
        parsed = memo.messages("gemini", raw_list, _ContentsParser(), size=size)
    else:
        parse = _ContentsParser()
        parsed = []
        for i, raw in enumerate(raw_list):
            parsed.append(parse(i, raw, parsed))
    for _, more in parsed:
        if more:
            notes.extend(more)
    messages = merge_messages(m for m, _ in parsed)
    system = ()
    si = gk(body, "systemInstruction")
    if isinstance(si, str):
        system = (Text(si),) if si else ()
    elif si is not None:
        si = u.expect_dict(si, "systemInstruction")
        system = tuple(
            Text(p["text"])
            for p in _glist(si, "parts", "systemInstruction")
            if isinstance(p, dict) and isinstance(p.get("text"), str) and p["text"]
        )
    gen = _gdict(body, "generationConfig", "") or {}
    tools = _parse_tools(_glist(body, "tools", ""))
    modalities = gk(gen, "responseModalities")
    req = Request(
        model=name,
        messages=tuple(messages),
        system=system,
        tools=tools,
        tool_choice=_parse_tool_config(_gdict(body, "toolConfig", "")),
        max_tokens=_gint(gen, "maxOutputTokens"),
        temperature=_gnum(gen, "temperature"),
        top_p=_gnum(gen, "topP"),
        top_k=_gint(gen, "topK"),
        stop=tuple(_glist(gen, "stopSequences", "generationConfig")),
        n=_gint(gen, "candidateCount"),
        seed=_gint(gen, "seed"),
        presence_penalty=_gnum(gen, "presencePenalty"),
        frequency_penalty=_gnum(gen, "frequencyPenalty"),
        response_format=_parse_response_format(gen),
        reasoning=_parse_thinking(_gdict(gen, "thinkingConfig", "generationConfig")),
        stream=bool(stream),
        include_usage=True,
        audio_output=isinstance(modalities, list)
        and "AUDIO" in [str(m).upper() for m in modalities],
        extra={k: v for k, v in body.items() if k not in _MODELLED},
        extra_format="gemini",
    )
    if any(not isinstance(s, str) for s in req.stop):
        raise BadRequest("`generationConfig.stopSequences` must be an array of strings.")
    return req, tuple(notes)


def _gint(d: Mapping[str, Any], camel: str) -> int | None:
    value = gk(d, camel)
    return u.opt_int({camel: value}, camel, "generationConfig")


def _gnum(d: Mapping[str, Any], camel: str) -> float | None:
    value = gk(d, camel)
    return u.opt_num({camel: value}, camel, "generationConfig")


class _ContentsParser:
    """Parses ``contents[i]`` as ``(message, notes)`` (the unit :class:`Memo` keeps).

    A function response without an id is matched to the calls of the model turn before it,
    so each call looks back at the parses of earlier contents (``earlier``, those of
    ``contents[:i]``). One instance serves one request, called for ascending ``i`` over
    the same growing ``earlier``: it remembers how far it has looked and the calls of the
    last model turn by name, so the whole request costs one pass, however many user turns
    follow one model turn (a search back from every turn would cost their square). The
    result is the pure function of ``(i, raw, earlier)`` the memo asks for.
    """

    __slots__ = ("_by_name", "_previous", "_seen")

    def __init__(self) -> None:
        self._seen = 0
        self._previous: tuple[ContentPart, ...] = ()
        self._by_name: dict[str, list[str]] | None = None

    def __call__(
        self, i: int, raw: Any, earlier: list[tuple[Message, Notes]]
    ) -> tuple[Message, Notes]:
        content = u.expect_dict(raw, f"contents[{i}]")
        role: Role = "assistant" if content.get("role") == "model" else "user"
        for k in range(len(earlier) - 1, self._seen - 1, -1):
            if earlier[k][0].role == "assistant":
                self._previous = earlier[k][0].content
                self._by_name = None
                break
        self._seen = len(earlier)
        notes: list[str] = []
        parts = _parse_parts(content, f"contents[{i}]", i, role, self._calls, notes)
        return Message(role, tuple(parts)), tuple(notes)

    def _calls(self) -> dict[str, list[str]]:
        """``{name: [call ids in order]}`` of the last model turn's calls (made on demand)."""
        if self._by_name is None:
            by_name: dict[str, list[str]] = {}
            for p in self._previous:
                if isinstance(p, ToolCall):
                    by_name.setdefault(p.name, []).append(p.id)
            self._by_name = by_name
        return self._by_name


def _parse_parts(
    content: dict[str, Any],
    path: str,
    turn: int,
    role: str,
    previous: Callable[[], dict[str, list[str]]],
    notes: list[str],
) -> list[ContentPart]:
    out: list[ContentPart] = []
    n_calls = 0
    used: set[str] = set()
    cursor: dict[str, int] = {}
    for j, raw in enumerate(_glist(content, "parts", path)):
        where = f"{path}.parts[{j}]"
        part = u.expect_dict(raw, where)
        sig = gk(part, "thoughtSignature")
        sig = sig if isinstance(sig, str) and sig else None
        if isinstance(part.get("text"), str):
            if part.get("thought") is True:
                out.append(Thinking(part["text"], sig, "gemini" if sig else None))
            elif part["text"]:
                out.append(Text(part["text"]))
        elif gk(part, "inlineData") is not None:
            blob = u.expect_dict(gk(part, "inlineData"), f"{where}.inlineData")
            out.append(_media(str(gk(blob, "mimeType") or ""), data=str(blob.get("data") or "")))
        elif gk(part, "fileData") is not None:
            fd = u.expect_dict(gk(part, "fileData"), f"{where}.fileData")
            out.append(_media(str(gk(fd, "mimeType") or ""), url=str(gk(fd, "fileUri") or "")))
        elif gk(part, "functionCall") is not None:
            fc = u.expect_dict(gk(part, "functionCall"), f"{where}.functionCall")
            call_id = fc.get("id") if isinstance(fc.get("id"), str) and fc["id"] else None
            args = fc.get("args")
            out.append(
                ToolCall(
                    call_id or f"{SYNTH_ID_PREFIX}_{turn}_{n_calls}",
                    u.expect_str(fc.get("name"), f"{where}.functionCall.name"),
                    u.dumps(args if args is not None else {}),
                    sig,
                )
            )
            n_calls += 1
        elif gk(part, "functionResponse") is not None:
            fr = u.expect_dict(gk(part, "functionResponse"), f"{where}.functionResponse")
            out.append(
                _parse_function_response(fr, f"{where}.functionResponse", previous, used, cursor)
            )
        else:
            notes.append(f"dropped {where}: part kind has no equivalent in other formats")
    return out


def _media(mime: str, *, data: str | None = None, url: str | None = None) -> ContentPart:
    if mime.startswith("image/"):
        return Image(mime, data, url)
    if mime.startswith("audio/") and data is not None:
        return Audio(mime, data)
    return Document(mime or None, data, url)


def _parse_function_response(
    fr: dict[str, Any],
    path: str,
    previous: Callable[[], dict[str, list[str]]],
    used: set[str],
    cursor: dict[str, int],
) -> ToolResult:
    """One ``functionResponse``; one without an id takes the first call of the previous
    model turn with its name whose id no response of this turn took (``cursor`` skips
    the taken ones once: ids never leave ``used``)."""
    name = u.expect_str(fr.get("name"), f"{path}.name")
    call_id = fr.get("id") if isinstance(fr.get("id"), str) and fr["id"] else None
    if call_id is None:  # match the previous model turn's calls by name, in order
        ids = previous().get(name, ())
        pos = cursor.get(name, 0)
        while pos < len(ids) and ids[pos] in used:
            pos += 1
        cursor[name] = pos
        call_id = ids[pos] if pos < len(ids) else f"{SYNTH_ID_PREFIX}_{name}"
    used.add(call_id)
    response = fr.get("response")
    is_error = False
    if isinstance(response, dict) and set(response) == {"error"}:
        is_error, value = True, response["error"]
    elif (
        isinstance(response, dict) and len(response) == 1 and set(response) <= {"result", "output"}
    ):
        value = next(iter(response.values()))
    else:
        value = response
    text = value if isinstance(value, str) else u.dumps(value if value is not None else {})
    content: list[ContentPart] = [Text(text)] if text else []
    for j, raw in enumerate(_glist(fr, "parts", path)):
        where = f"{path}.parts[{j}]"
        part = u.expect_dict(raw, where)
        if gk(part, "inlineData") is not None:
            blob = u.expect_dict(gk(part, "inlineData"), f"{where}.inlineData")
            media = _media(str(gk(blob, "mimeType") or ""), data=str(blob.get("data") or ""))
        elif gk(part, "fileData") is not None:
            fd = u.expect_dict(gk(part, "fileData"), f"{where}.fileData")
            media = _media(str(gk(fd, "mimeType") or ""), url=str(gk(fd, "fileUri") or ""))
        else:
            continue
        if isinstance(media, (Image, Document)):  # what a tool result can carry elsewhere
            content.append(media)
    return ToolResult(call_id, tuple(content), is_error=is_error, name=name)


def _parse_tools(raw: list[Any]) -> tuple[Tool, ...]:
    tools: list[Tool] = []
    for i, entry in enumerate(raw):
        entry = u.expect_dict(entry, f"tools[{i}]")
        for key in entry:
            if _SNAKE.sub("_", key).lower() != "function_declarations":
                raise BadRequest(
                    f"`tools[{i}].{key}` is a Gemini built-in tool and cannot be offered through "
                    "this model's provider; remove it."
                )
        for j, fd in enumerate(_glist(entry, "functionDeclarations", f"tools[{i}]")):
            where = f"tools[{i}].functionDeclarations[{j}]"
            fd = u.expect_dict(fd, where)
            schema = gk(fd, "parametersJsonSchema")
            if schema is None and fd.get("parameters") is not None:
                schema = from_gemini_schema(u.expect_dict(fd["parameters"], f"{where}.parameters"))
            tools.append(
                Tool(
                    name=u.expect_str(fd.get("name"), f"{where}.name"),
                    description=u.opt_str(fd, "description", where),
                    parameters=schema if isinstance(schema, dict) else None,
                )
            )
    return tuple(tools)


def _parse_tool_config(raw: dict[str, Any] | None) -> ToolChoice | None:
    if raw is None:
        return None
    fcc = _gdict(raw, "functionCallingConfig", "toolConfig")
    if fcc is None:
        return None
    mode = str(fcc.get("mode") or "AUTO").upper()
    names = tuple(
        n for n in _glist(fcc, "allowedFunctionNames", "toolConfig") if isinstance(n, str)
    )
    if mode == "NONE":
        return ToolChoice("none")
    if mode in ("ANY", "VALIDATED"):
        if len(names) == 1:
            return ToolChoice("tool", name=names[0])
        return ToolChoice("any", allowed=names)
    return ToolChoice("auto", allowed=names)


def _parse_response_format(gen: Mapping[str, Any]) -> ResponseFormat | None:
    mime = gk(gen, "responseMimeType")
    schema = gk(gen, "responseJsonSchema")
    if schema is None and gk(gen, "responseSchema") is not None:
        schema = from_gemini_schema(gk(gen, "responseSchema"))
    if mime == "application/json":
        if isinstance(schema, dict):
            return ResponseFormat("json_schema", schema=schema)
        return ResponseFormat("json_object")
    return None


def _parse_thinking(raw: dict[str, Any] | None) -> Reasoning | None:
    if raw is None:
        return None
    include = gk(raw, "includeThoughts")
    include = include if isinstance(include, bool) else None
    level = gk(raw, "thinkingLevel")
    if isinstance(level, str) and level.lower() in EFFORTS:
        return Reasoning("enabled", effort=level.lower(), include_thoughts=include)
    budget = gk(raw, "thinkingBudget")
    if isinstance(budget, int) and not isinstance(budget, bool):
        if budget == 0:
            return Reasoning("disabled", include_thoughts=include)
        if budget < 0:
            return Reasoning("adaptive", include_thoughts=include)
        return Reasoning("enabled", budget_tokens=budget, include_thoughts=include)
    return Reasoning(include_thoughts=include) if include is not None else None


# == render ==================================================================================


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
        decl: dict[str, Any] = {"name": wire_tool_name(t.name, "gemini")}
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
        fcc = {"mode": "ANY", "allowedFunctionNames": [wire_tool_name(choice.name or "", "gemini")]}
    elif choice.mode == "any":
        fcc = {"mode": "ANY"}
        if choice.allowed:
            fcc["allowedFunctionNames"] = [wire_tool_name(n, "gemini") for n in choice.allowed]
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
        fc: dict[str, Any] = {"name": wire_tool_name(p.name, "gemini"), "args": args}
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
    fr: dict[str, Any] = {"name": wire_tool_name(name, "gemini"), "response": response}
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
