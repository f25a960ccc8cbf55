"""Gemini ``generateContent`` request body -> canonical :class:`~gateway.convert.model.Request`.

Contract (wire-formats §3.2, §3.3, §4): the model and the stream flag live in the
URL, so :func:`parse_request` takes them as arguments; keys are read in
lowerCamelCase or snake_case (proto JSON accepts both). Function calls without
an id get a deterministic one (``call_gm_<turn>_<n>``) and responses are matched
to calls by id, else by name in order (§4.9). The renderer is
:mod:`gateway.formats.gemini.request_render`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from gateway.convert import _util as u
from gateway.convert._common import (
    EFFORTS,
    merge_messages,
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
from gateway.convert.names import SYNTH_ID_PREFIX
from gateway.convert.schema import from_gemini_schema
from gateway.errors import BadRequest

__all__ = ["parse_request"]

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
    system: tuple[Text, ...] = ()
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
    content: list[Text | Image | Document] = [Text(text)] if text else []
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
