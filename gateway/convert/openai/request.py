"""OpenAI Chat Completions request body <-> canonical :class:`~gateway.convert.model.Request`.

Contract (wire-formats §1.2, §1.3, §4): :func:`parse_request` reads a client body
leniently (fields it does not model go to ``Request.extra``; a known field of
the wrong type is a BadRequest naming it). Leading ``system``/``developer``
messages become ``Request.system``; later ones stay in place as system
messages. ``tool`` messages become tool results inside a user turn.

:func:`render_request` builds a body an OpenAI-compatible server accepts: one
``tool`` message per result right after the assistant turn that called it,
follow-up user content after the tool messages (§4.3 rule 3), ``system``
rather than ``developer`` (some compatible backends reject it), arguments as
JSON strings, ``stream_options.include_usage`` always on for streams (the
renderer for an OpenAI client strips the usage chunk again when that client
did not ask for it, §5.2 item 8). Thinking blocks are dropped with a note:
OpenAI has no field for them and some compatible servers reject
``reasoning_content`` in history.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from gateway.convert import _util as u
from gateway.convert._common import (
    EFFORTS,
    budget_to_effort,
    defer_system_messages,
    merge_messages,
    result_text,
)
from gateway.convert.encoded import EncodedList, encode
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
from gateway.convert.names import split_signature, wire_tool_name
from gateway.errors import BadRequest

__all__ = ["parse_request", "render_request"]

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
#: Upstream model names that take ``reasoning_effort`` (others reject it with a 400).
_REASONING_MODELS = re.compile(
    r"(?:^|[/:])(?:o[1-9]|gpt-5|gpt-oss|grok-[3-9]|qwen3|deepseek-r|gemini-[2-9]|magistral)",
    re.IGNORECASE,
)
_NO_RESULT = "Error: no result was provided for this tool call."
_AUDIO_FORMATS = {"audio/wav": "wav", "audio/x-wav": "wav", "audio/mp3": "mp3", "audio/mpeg": "mp3"}


# == parse ===================================================================================


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


def _parse_tool_choice(raw: Any) -> ToolChoice | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        mode = {"auto": "auto", "required": "any", "none": "none"}.get(raw)
        if mode is None:
            raise BadRequest("`tool_choice` must be 'auto', 'required', 'none' or an object.")
        return ToolChoice(mode)  # type: ignore[arg-type]
    raw = u.expect_dict(raw, "tool_choice")
    kind = raw.get("type")
    if kind == "function":
        fn = u.opt_dict(raw, "function", "tool_choice") or {}
        return ToolChoice("tool", name=u.opt_str(fn, "name", "tool_choice.function"))
    if kind == "allowed_tools":
        allowed = u.opt_dict(raw, "allowed_tools", "tool_choice") or {}
        names = []
        for t in u.opt_list(allowed, "tools", "tool_choice.allowed_tools") or ():
            fn = t.get("function") if isinstance(t, dict) else None
            if isinstance(fn, dict) and isinstance(fn.get("name"), str):
                names.append(fn["name"])
        mode = "any" if allowed.get("mode") == "required" else "auto"
        return ToolChoice(mode, allowed=tuple(names))
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


# == render ==================================================================================


def render_request(
    req: Request,
    *,
    upstream_model: str,
    max_tokens_field: str = "max_completion_tokens",
    reasoning: bool | None = None,
    memo: Memo | None = None,
) -> tuple[dict[str, Any], Notes]:
    """Render a canonical request as an OpenAI Chat Completions body.

    Args:
        req: the canonical request.
        upstream_model: the provider's model name, written into ``model``.
        max_tokens_field: ``max_completion_tokens`` (OpenAI) or ``max_tokens``
            (older OpenAI-compatible servers).
        reasoning: send ``reasoning_effort`` (True), never (False), or when the
            model name looks like a reasoning model (None): other models reject it.
        memo: reuse the rendering of messages rendered lately (the same objects).

    Returns:
        ``(body, notes)``.
    """
    notes: list[str] = []
    body: dict[str, Any] = {
        "model": upstream_model,
        "messages": _render_messages(req, notes, memo),
    }
    _render_tools(req, body)
    if req.max_tokens is not None:
        body[max_tokens_field] = req.max_tokens
    effort = _effort(req.reasoning)
    send_effort = (
        reasoning if reasoning is not None else bool(_REASONING_MODELS.search(upstream_model))
    )
    if effort is not None and send_effort:
        body["reasoning_effort"] = effort
    elif req.reasoning is not None and req.reasoning.mode != "disabled":
        notes.append("reasoning settings dropped: the upstream model takes no reasoning_effort")
    reasoning_on = effort not in (None, "none") and send_effort
    for field in ("temperature", "top_p"):
        value = getattr(req, field)
        if value is not None:
            if reasoning_on:
                notes.append(f"{field} dropped: reasoning models reject it")
            else:
                body[field] = value
    if req.top_k is not None:
        notes.append("top_k dropped: OpenAI has no equivalent")
    if req.stop:
        body["stop"] = list(req.stop[:4])
        if len(req.stop) > 4:
            notes.append("stop sequences beyond the first 4 dropped (OpenAI's limit)")
    for field in ("n", "seed", "presence_penalty", "frequency_penalty"):
        value = getattr(req, field)
        if value is not None:
            body[field] = value
    rf = _render_response_format(req.response_format)
    if rf is not None:
        body["response_format"] = rf
    if req.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    if req.user:
        if len(req.user) <= 64:
            body["user"] = req.user
        else:
            notes.append("user id longer than 64 characters dropped")
    if req.metadata:
        body["metadata"] = dict(req.metadata)
    if req.extra:
        if req.extra_format == "openai":
            for k, v in req.extra.items():
                body.setdefault(k, v)
        else:
            notes.append(
                "dropped fields with no OpenAI equivalent: " + ", ".join(sorted(req.extra))
            )
    return body, tuple(notes)


def _effort(r: Reasoning | None) -> str | None:
    if r is None:
        return None
    if r.effort is not None:
        return r.effort
    if r.mode == "disabled":
        return "none"
    if r.budget_tokens is not None:
        return budget_to_effort(r.budget_tokens)
    return None


def _render_response_format(rf: ResponseFormat | None) -> dict[str, Any] | None:
    if rf is None:
        return None
    if rf.type != "json_schema":
        return {"type": rf.type}
    js: dict[str, Any] = {"name": rf.name or "response"}
    if rf.description:
        js["description"] = rf.description
    if rf.schema is not None:
        js["schema"] = dict(rf.schema)
    if rf.strict is not None:
        js["strict"] = rf.strict
    return {"type": "json_schema", "json_schema": js}


def _render_tools(req: Request, body: dict[str, Any]) -> None:
    if req.tools:
        tools = []
        for t in req.tools:
            fn: dict[str, Any] = {"name": wire_tool_name(t.name, "openai")}
            if t.description:
                fn["description"] = t.description
            if t.parameters is not None:
                fn["parameters"] = dict(t.parameters)
            if t.strict is not None:
                fn["strict"] = t.strict
            tools.append({"type": "function", "function": fn})
        body["tools"] = tools
    choice = req.tool_choice
    if choice is not None and req.tools:
        if choice.allowed:
            body["tool_choice"] = {
                "type": "allowed_tools",
                "allowed_tools": {
                    "mode": "required" if choice.mode == "any" else "auto",
                    "tools": [
                        {"type": "function", "function": {"name": wire_tool_name(n, "openai")}}
                        for n in choice.allowed
                    ],
                },
            }
        elif choice.mode == "tool":
            name = wire_tool_name(choice.name or "", "openai")
            body["tool_choice"] = {"type": "function", "function": {"name": name}}
        else:
            body["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}[choice.mode]
    if req.parallel_tool_calls is not None and req.tools:
        body["parallel_tool_calls"] = req.parallel_tool_calls


def _render_messages(req: Request, notes: list[str], memo: Memo | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if req.system:
        out.append({"role": "system", "content": "\n\n".join(t.text for t in req.system)})
    dropped_thinking = False
    texts: dict[int, str] = {}  # id(rendered message) -> its JSON, from the memo
    if memo is not None and not memo.keeps(req.messages):
        memo = None  # a conversation the memo does not keep: nothing to reuse or keep
    for m in defer_system_messages(req.messages):
        if memo is not None:
            msgs, lost, more, encoded = memo.rendered("openai", m, _render_encoded)
            for msg, text in zip(msgs, encoded, strict=True):
                texts[id(msg)] = text
        else:
            msgs, lost, more = _render_one(m)
        out.extend(msgs)
        dropped_thinking |= lost
        if more:
            notes.extend(more)
    if dropped_thinking:
        notes.append("thinking blocks dropped: OpenAI chat history has no place for them")
    paired = _pair_tool_messages(out, notes)
    if memo is None:
        return paired
    # Every dict in ``paired`` is alive (in ``out`` or made by the pairing), so the ids hold.
    return EncodedList(paired, [texts.get(id(msg)) for msg in paired])


def _render_encoded(m: Message) -> tuple[list[dict[str, Any]], bool, Notes, tuple[str, ...]]:
    """:func:`_render_one` with each rendered message's JSON text (kept by the memo)."""
    msgs, lost, notes = _render_one(m)
    return msgs, lost, notes, tuple(encode(msg) for msg in msgs)


def _render_one(m: Message) -> tuple[list[dict[str, Any]], bool, Notes]:
    """One canonical message as OpenAI messages: ``(messages, thinking dropped, notes)``."""
    if m.role == "system":
        text = "\n\n".join(p.text for p in m.content if isinstance(p, Text))
        return ([{"role": "system", "content": text}] if text else []), False, ()
    if m.role == "assistant":
        msg, lost = _render_assistant(m)
        return ([msg] if msg is not None else []), lost, ()
    out: list[dict[str, Any]] = []
    notes: list[str] = []
    _render_user(m, out, notes)
    return out, False, tuple(notes)


def _pair_tool_messages(msgs: list[dict[str, Any]], notes: list[str]) -> list[dict[str, Any]]:
    """Each assistant ``tool_calls`` answered by ``tool`` messages right after it (§5.1 item 2).

    The calls still unanswered are counted by id (a list searched and shortened for every
    result would cost the square of a turn's calls).
    """
    out: list[dict[str, Any]] = []
    pending: list[str] = []  # the last assistant message's call ids, in order
    calls: dict[str, int] = {}  # how many times each id is in ``pending``
    open_ids: dict[str, int] = {}  # how many of each are still unanswered
    unanswered = 0
    for msg in msgs:
        if msg["role"] == "tool":
            call_id = msg["tool_call_id"]
            if open_ids.get(call_id, 0) > 0:
                open_ids[call_id] -= 1
                unanswered -= 1
                out.append(msg)
            else:
                notes.append(f"dropped a tool result for unknown call {call_id}")
            continue
        if unanswered:
            # Answers took the first occurrences of their ids in ``pending``.
            answered = {c: calls[c] - left for c, left in open_ids.items()}
            for call_id in pending:
                if answered[call_id] > 0:
                    answered[call_id] -= 1
                    continue
                out.append({"role": "tool", "tool_call_id": call_id, "content": _NO_RESULT})
                notes.append(f"added an error result for unanswered tool call {call_id}")
        out.append(msg)
        tool_calls = msg.get("tool_calls")
        if not tool_calls:
            open_ids, unanswered = {}, 0
            continue
        pending = [c["id"] for c in tool_calls]
        calls = {}
        for call_id in pending:
            calls[call_id] = calls.get(call_id, 0) + 1
        open_ids = dict(calls)
        unanswered = len(pending)
    return out


def _render_assistant(m: Message) -> tuple[dict[str, Any] | None, bool]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    lost = False
    for p in m.content:
        if isinstance(p, Text):
            texts.append(p.text)
        elif isinstance(p, ToolCall):
            calls.append(
                {
                    "id": p.id,
                    "type": "function",
                    "function": {
                        "name": wire_tool_name(p.name, "openai"),
                        "arguments": p.arguments,
                    },
                }
            )
        else:
            lost = True
    text = "".join(texts)
    if not text and not calls:
        return None, lost
    msg: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        msg["tool_calls"] = calls
    return msg, lost


def _render_user(m: Message, out: list[dict[str, Any]], notes: list[str]) -> None:
    parts: list[dict[str, Any]] = []
    late_images: list[dict[str, Any]] = []
    for p in m.content:
        if isinstance(p, ToolResult):
            text = result_text(p)
            if p.is_error:
                text = f"Error: {text}" if text else "Error"
            out.append({"role": "tool", "tool_call_id": p.call_id, "content": text})
            for c in p.content:  # OpenAI tool messages are text: media follow as user parts
                if isinstance(c, Image):
                    late_images.append(_image_part(c))
                elif isinstance(c, Document):
                    late_images.append(_document_part(c, notes))
        elif isinstance(p, Text):
            if p.text:
                parts.append({"type": "text", "text": p.text})
        elif isinstance(p, Image):
            parts.append(_image_part(p))
        elif isinstance(p, Document):
            parts.append(_document_part(p, notes))
        elif isinstance(p, Audio):
            fmt = _AUDIO_FORMATS.get(p.media_type)
            if fmt is None:
                raise BadRequest(
                    f"OpenAI models take WAV or MP3 audio, not {p.media_type!r}; convert the audio."
                )
            parts.append({"type": "input_audio", "input_audio": {"data": p.data, "format": fmt}})
    if late_images:
        notes.append(
            "images inside tool results moved to a user message (OpenAI tool messages are text)"
        )
        parts = late_images + parts
    if not parts:
        return
    if len(parts) == 1 and parts[0]["type"] == "text":
        out.append({"role": "user", "content": parts[0]["text"]})
    else:
        out.append({"role": "user", "content": parts})


def _image_part(p: Image) -> dict[str, Any]:
    if p.url is not None:
        u.check_portable_url(p.url)
    url = p.url if p.url is not None else u.make_data_url(p.media_type or "image/png", p.data or "")
    return {"type": "image_url", "image_url": {"url": url}}


def _document_part(p: Document, notes: list[str]) -> dict[str, Any]:
    if p.url is not None and not p.url.startswith("data:"):
        u.check_portable_url(p.url)
        raise BadRequest(
            "OpenAI chat models cannot read a document by URL and the gateway does not fetch "
            "client URLs; send the document inline as base64."
        )
    if p.media_type == "text/plain" and p.data is not None:
        text = u.b64_to_text(p.data)
        if text is not None:
            notes.append("plain-text document sent as a text part")
            return {"type": "text", "text": text}
    url = p.url or u.make_data_url(p.media_type or "application/pdf", p.data or "")
    file: dict[str, Any] = {"file_data": url, "filename": p.title or "document.pdf"}
    return {"type": "file", "file": file}
