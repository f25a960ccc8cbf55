"""OpenAI Chat Completions request body -> canonical :class:`~gateway.convert.model.Request`.

Contract (wire-formats §1.2, §1.3, §4): :func:`parse_request` reads a client body
leniently (fields it does not model go to ``Request.extra``; a known field of
the wrong type is a BadRequest naming it). Leading ``system``/``developer``
messages become ``Request.system``; later ones stay in place as system
messages. ``tool`` messages become tool results inside a user turn.
The renderer is :mod:`gateway.formats.openai.request_render`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

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
from gateway.convert.names import split_signature
from gateway.errors import BadRequest

__all__ = ["parse_request"]

_MODELLED = frozenset(
    {
        "model",
        "messages",
        "stream",
        "stream_options",
        "max_completion_tokens",
        "max_tokens",
        "temperature",
        "top_p",
        "stop",
        "n",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "reasoning_effort",
        "user",
        "safety_identifier",
        "metadata",
    }
)


def parse_request(
    body: Any,
    *,
    model: str | None = None,
    stream: bool | None = None,
    memo: Memo | None = None,
    size: int = 0,
) -> tuple[Request, Notes]:
    """Parse an OpenAI Chat Completions request body.

    Args:
        body: the decoded JSON body.
        model: overrides ``body["model"]`` when given.
        stream: overrides ``body["stream"]`` when given.
        memo: reuse the parse of history seen lately (same result).
        size: the body's size in bytes, for the memo's bound.

    Returns:
        ``(request, notes)``.

    Raises:
        BadRequest: a required field is missing, a known field has the wrong type,
            or the body uses something no other format can carry (custom tools,
            provider file ids).
    """
    body = u.expect_dict(body, "body")
    notes: list[str] = []
    name = model if model is not None else u.opt_str(body, "model", "")
    if not name:
        raise BadRequest("`model` is required.")
    raw_messages = body.get("messages")
    if raw_messages is None:
        raise BadRequest("`messages` is required.")
    raw_list = u.expect_list(raw_messages, "messages")
    if memo is not None:
        parsed = memo.messages("openai", raw_list, _parse_one, size=size)
    else:
        parsed = [_parse_one(i, raw, ()) for i, raw in enumerate(raw_list)]
    messages = merge_messages(m for m, _ in parsed)
    system: list[Text] = []
    lead = 0
    while lead < len(messages) and messages[lead].role == "system":
        system.extend(p for p in messages[lead].content if isinstance(p, Text))
        lead += 1
    del messages[:lead]

    tools = _parse_tools(u.opt_list(body, "tools", "") or [])
    stream_options = u.opt_dict(body, "stream_options", "") or {}
    effort = u.opt_str(body, "reasoning_effort", "")
    reasoning = None
    if effort is not None:
        if effort not in EFFORTS:
            raise BadRequest(f"`reasoning_effort` must be one of {', '.join(EFFORTS)}.")
        reasoning = Reasoning("disabled" if effort == "none" else "enabled", effort=effort)
    modalities = body.get("modalities")
    audio_output = body.get("audio") is not None or (
        isinstance(modalities, list) and "audio" in modalities
    )
    metadata = u.opt_dict(body, "metadata", "")
    max_tokens = u.opt_int(body, "max_completion_tokens", "")
    req = Request(
        model=name,
        messages=tuple(messages),
        system=tuple(system),
        tools=tools,
        tool_choice=_parse_tool_choice(body.get("tool_choice")),
        parallel_tool_calls=u.opt_bool(body, "parallel_tool_calls", ""),
        max_tokens=max_tokens if max_tokens is not None else u.opt_int(body, "max_tokens", ""),
        temperature=u.opt_num(body, "temperature", ""),
        top_p=u.opt_num(body, "top_p", ""),
        stop=u.str_or_list(body, "stop", ""),
        n=u.opt_int(body, "n", ""),
        seed=u.opt_int(body, "seed", ""),
        presence_penalty=u.opt_num(body, "presence_penalty", ""),
        frequency_penalty=u.opt_num(body, "frequency_penalty", ""),
        response_format=_parse_response_format(u.opt_dict(body, "response_format", "")),
        reasoning=reasoning,
        stream=stream if stream is not None else bool(u.opt_bool(body, "stream", "")),
        include_usage=bool(u.opt_bool(stream_options, "include_usage", "stream_options")),
        user=u.opt_str(body, "user", "") or u.opt_str(body, "safety_identifier", ""),
        metadata={str(k): str(v) for k, v in metadata.items()} if metadata else None,
        audio_output=audio_output,
        extra={k: v for k, v in body.items() if k not in _MODELLED},
        extra_format="openai",
    )
    return req, tuple(notes)


def _text_of(content: Any, path: str) -> list[Text]:
    """``content`` that may only hold text: a string or an array of text parts."""
    if content is None:
        return []
    if isinstance(content, str):
        return [Text(content)] if content else []
    out = []
    for i, part in enumerate(u.expect_list(content, path)):
        part = u.expect_dict(part, f"{path}[{i}]")
        if part.get("type") in ("text", "refusal"):
            text = u.opt_str(part, part["type"], f"{path}[{i}]") or ""
            if text:
                out.append(Text(text))
    return out


def _parse_tools(raw: Sequence[Any]) -> tuple[Tool, ...]:
    return tuple(_parse_tool(t, f"tools[{i}]") for i, t in enumerate(raw))


def _parse_one(i: int, raw: Any, _earlier: Any) -> tuple[Message, Notes]:
    """``messages[i]`` as ``(message, notes)`` (the unit :class:`Memo` keeps)."""
    role, parts = _parse_role_parts(i, raw)
    return Message(role, parts), ()


def _parse_role_parts(i: int, raw: Any) -> tuple[Role, tuple[ContentPart, ...]]:
    path = f"messages[{i}]"
    raw = u.expect_dict(raw, path)
    role = raw.get("role")
    content = raw.get("content")
    if role in ("system", "developer"):
        return "system", tuple(_text_of(content, f"{path}.content"))
    if role == "user":
        return "user", tuple(_parse_user_content(content, f"{path}.content"))
    if role == "assistant":
        return "assistant", tuple(_parse_assistant(raw, path))
    if role == "tool":
        call_id, _ = split_signature(u.opt_str(raw, "tool_call_id", path) or "")
        parts = _parse_user_content(content, f"{path}.content")
        kept = tuple(p for p in parts if isinstance(p, (Text, Image, Document)))
        result = ToolResult(call_id, kept)
        return "user", (result,)
    if role == "function":  # legacy function calling
        name = u.opt_str(raw, "name", path) or ""
        result = ToolResult(
            f"legacy_{name}", tuple(_text_of(content, f"{path}.content")), name=name
        )
        return "user", (result,)
    raise BadRequest(f"`{path}.role` must be one of system, developer, user, assistant, tool.")


def _parse_user_content(content: Any, path: str) -> list[ContentPart]:
    if content is None:
        return []
    if isinstance(content, str):
        return [Text(content)] if content else []
    parts: list[ContentPart] = []
    for i, part in enumerate(u.expect_list(content, path)):
        where = f"{path}[{i}]"
        part = u.expect_dict(part, where)
        kind = part.get("type")
        if kind == "text":
            text = u.opt_str(part, "text", where) or ""
            if text:
                parts.append(Text(text))
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            url = u.expect_str(url, f"{where}.image_url.url")
            parsed = u.parse_data_url(url)
            parts.append(Image(parsed[0], parsed[1]) if parsed else Image(url=url))
        elif kind == "input_audio":
            audio = u.opt_dict(part, "input_audio", where) or {}
            fmt = u.opt_str(audio, "format", f"{where}.input_audio") or "wav"
            data = u.opt_str(audio, "data", f"{where}.input_audio") or ""
            parts.append(Audio(f"audio/{fmt}", data))
        elif kind == "file":
            parts.append(_parse_file(u.opt_dict(part, "file", where) or {}, f"{where}.file"))
        else:
            raise BadRequest(f"`{where}.type` {kind!r} is not a supported content part.")
    return parts


def _parse_file(file: dict[str, Any], path: str) -> Document:
    data_url = u.opt_str(file, "file_data", path)
    if data_url is None:
        raise BadRequest(
            f"`{path}.file_id`: uploaded-file ids belong to one provider and cannot be sent "
            "to another; send the file inline as `file_data` instead."
        )
    parsed = u.parse_data_url(data_url)
    title = u.opt_str(file, "filename", path)
    if parsed is None:
        return Document("application/pdf", data_url, title=title)
    return Document(parsed[0], parsed[1], title=title)


def _parse_assistant(raw: dict[str, Any], path: str) -> list[ContentPart]:
    parts: list[ContentPart] = []
    for key in ("reasoning_content", "reasoning"):
        reasoning = raw.get(key)
        if isinstance(reasoning, str) and reasoning:
            parts.append(Thinking(reasoning, origin="openai"))
            break
    parts.extend(_text_of(raw.get("content"), f"{path}.content"))
    refusal = raw.get("refusal")
    if isinstance(refusal, str) and refusal:
        parts.append(Text(refusal))
    for j, call in enumerate(u.opt_list(raw, "tool_calls", path) or ()):
        where = f"{path}.tool_calls[{j}]"
        call = u.expect_dict(call, where)
        if call.get("type", "function") != "function":
            raise BadRequest(f"`{where}`: custom tool calls cannot be converted to another format.")
        fn = u.opt_dict(call, "function", where) or {}
        call_id, sig = split_signature(u.opt_str(call, "id", where) or f"call_{j}")
        args = fn.get("arguments")
        parts.append(
            ToolCall(
                call_id,
                u.opt_str(fn, "name", f"{where}.function") or "",
                args if isinstance(args, str) else u.dumps(args if args is not None else {}),
                sig,
            )
        )
    legacy = raw.get("function_call")
    if isinstance(legacy, dict):
        name = str(legacy.get("name") or "")
        parts.append(ToolCall(f"legacy_{name}", name, str(legacy.get("arguments") or "{}")))
    return parts


def _parse_tool(raw: Any, path: str) -> Tool:
    raw = u.expect_dict(raw, path)
    if raw.get("type", "function") != "function":
        raise BadRequest(
            f"`{path}`: {raw.get('type')!r} tools exist only on OpenAI; "
            "use a function tool instead."
        )
    fn = u.opt_dict(raw, "function", path)
    if fn is None or not fn.get("name"):
        raise BadRequest(f"`{path}.function.name` is required.")
    return Tool(
        name=u.expect_str(fn["name"], f"{path}.function.name"),
        description=u.opt_str(fn, "description", f"{path}.function"),
        parameters=u.opt_dict(fn, "parameters", f"{path}.function"),
        strict=u.opt_bool(fn, "strict", f"{path}.function"),
    )


#: OpenAI's ``tool_choice`` strings -> canonical modes.
_CHOICE_MODES: dict[str, Literal["auto", "any", "none"]] = {
    "auto": "auto",
    "required": "any",
    "none": "none",
}


def _parse_tool_choice(raw: Any) -> ToolChoice | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        mode = _CHOICE_MODES.get(raw)
        if mode is None:
            raise BadRequest("`tool_choice` must be 'auto', 'required', 'none' or an object.")
        return ToolChoice(mode)
    raw = u.expect_dict(raw, "tool_choice")
    kind = raw.get("type")
    if kind == "function":
        fn = u.opt_dict(raw, "function", "tool_choice") or {}
        return ToolChoice("tool", name=u.opt_str(fn, "name", "tool_choice.function"))
    if kind == "allowed_tools":
        allowed = u.opt_dict(raw, "allowed_tools", "tool_choice") or {}
        names = []
        for t in u.opt_list(allowed, "tools", "tool_choice.allowed_tools") or ():
            function = t.get("function") if isinstance(t, dict) else None
            if isinstance(function, dict) and isinstance(function.get("name"), str):
                names.append(function["name"])
        return ToolChoice(
            "any" if allowed.get("mode") == "required" else "auto", allowed=tuple(names)
        )
    raise BadRequest(f"`tool_choice.type` {kind!r} cannot be converted to another format.")


def _parse_response_format(raw: dict[str, Any] | None) -> ResponseFormat | None:
    if raw is None:
        return None
    kind = raw.get("type")
    if kind in ("text", "json_object"):
        return ResponseFormat(kind)
    if kind == "json_schema":
        js = u.opt_dict(raw, "json_schema", "response_format") or {}
        return ResponseFormat(
            "json_schema",
            schema=u.opt_dict(js, "schema", "response_format.json_schema"),
            name=u.opt_str(js, "name", "response_format.json_schema"),
            description=u.opt_str(js, "description", "response_format.json_schema"),
            strict=u.opt_bool(js, "strict", "response_format.json_schema"),
        )
    raise BadRequest("`response_format.type` must be 'text', 'json_object' or 'json_schema'.")
