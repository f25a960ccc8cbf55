"""Anthropic Messages request body -> canonical :class:`~gateway.convert.model.Request`.

Contract (wire-formats §2.2, §2.3, §4): :func:`parse_request` reads a client
body leniently (unknown top-level fields go to ``Request.extra``) and raises
:class:`~gateway.errors.BadRequest` naming the field when a known field has the
wrong type. The renderer is :mod:`gateway.formats.anthropic.request_render`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gateway.convert import _util as u
from gateway.convert._common import (
    EFFORTS,
    merge_messages,
)
from gateway.convert.memo import Memo
from gateway.convert.model import (
    ContentPart,
    Document,
    Image,
    Message,
    Notes,
    Reasoning,
    RedactedThinking,
    Request,
    ResponseFormat,
    Text,
    Thinking,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
)
from gateway.convert.names import (
    GEMINI_SIG_PREFIX,
    split_signature,
)
from gateway.errors import BadRequest

__all__ = ["parse_request"]

_KNOWN = frozenset(
    {
        "model",
        "messages",
        "system",
        "max_tokens",
        "stop_sequences",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "thinking",
        "output_config",
        "metadata",
        "stream",
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
    """Parse an Anthropic Messages request body.

    Args:
        body: the decoded JSON body.
        model: overrides ``body["model"]`` when given.
        stream: overrides ``body["stream"]`` when given.
        memo: reuse the parse of history seen lately (same result).
        size: the body's size in bytes, for the memo's bound.

    Returns:
        ``(request, notes)``.

    Raises:
        BadRequest: a required field is missing or a known field has the wrong type.
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
        parsed = memo.messages("anthropic", raw_list, _parse_one, size=size)
    else:
        parsed = [_parse_one(i, raw, ()) for i, raw in enumerate(raw_list)]
    for _, more in parsed:
        if more:
            notes.extend(more)
    messages = merge_messages(m for m, _ in parsed)

    tools = _parse_tools(u.opt_list(body, "tools", "") or [])
    tool_choice, parallel = _parse_tool_choice(u.opt_dict(body, "tool_choice", ""))
    output_config = u.opt_dict(body, "output_config", "") or {}
    reasoning = _parse_thinking(u.opt_dict(body, "thinking", ""), output_config)
    response_format = None
    fmt = u.opt_dict(output_config, "format", "output_config")
    if fmt is not None and fmt.get("type") == "json_schema":
        schema = u.opt_dict(fmt, "schema", "output_config.format")
        response_format = ResponseFormat("json_schema", schema=schema)
    metadata = u.opt_dict(body, "metadata", "") or {}
    user = metadata.get("user_id")
    extra = {k: v for k, v in body.items() if k not in _KNOWN}
    req = Request(
        model=name,
        messages=tuple(messages),
        system=_parse_system(body.get("system")),
        tools=tools,
        tool_choice=tool_choice,
        parallel_tool_calls=parallel,
        max_tokens=u.opt_int(body, "max_tokens", ""),
        temperature=u.opt_num(body, "temperature", ""),
        top_p=u.opt_num(body, "top_p", ""),
        top_k=u.opt_int(body, "top_k", ""),
        stop=u.str_or_list(body, "stop_sequences", ""),
        response_format=response_format,
        reasoning=reasoning,
        stream=stream if stream is not None else bool(u.opt_bool(body, "stream", "")),
        include_usage=True,
        user=user if isinstance(user, str) else None,
        extra=extra,
        extra_format="anthropic",
    )
    return req, tuple(notes)


def _parse_system(raw: Any) -> tuple[Text, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        return (Text(raw),) if raw else ()
    out = []
    for i, block in enumerate(u.expect_list(raw, "system")):
        block = u.expect_dict(block, f"system[{i}]")
        text = u.opt_str(block, "text", f"system[{i}]") or ""
        if text:
            out.append(Text(text, cache_control=block.get("cache_control")))
    return tuple(out)


def _parse_tools(raw: Sequence[Any]) -> tuple[Tool, ...]:
    return tuple(_parse_tool(t, i) for i, t in enumerate(raw))


def _parse_one(i: int, raw: Any, _earlier: Any) -> tuple[Message, Notes]:
    """``messages[i]`` as ``(message, notes)`` (the unit :class:`Memo` keeps)."""
    notes: list[str] = []
    role, parts = _parse_message(raw, i, notes)
    return Message(role, parts), tuple(notes)


def _parse_message(raw: Any, i: int, notes: list[str]) -> tuple[Any, tuple[ContentPart, ...]]:
    """``messages[i]`` (its JSON path is only built for errors)."""
    if not isinstance(raw, dict):
        raise u.bad_type(f"messages[{i}]", "an object", raw)
    role = raw.get("role")
    if role not in ("user", "assistant", "system"):
        raise BadRequest(f"`messages[{i}].role` must be 'user', 'assistant' or 'system'.")
    content = raw.get("content")
    if isinstance(content, str):
        return role, (Text(content),) if content else ()
    if not isinstance(content, list):
        raise u.bad_type(f"messages[{i}].content", "an array", content)
    parts: list[ContentPart] = []
    for j, block in enumerate(content):
        part = _parse_block(block, i, j, notes)
        if part is not None:
            parts.append(part)
    if role == "system":
        return role, tuple(p for p in parts if isinstance(p, Text))
    return role, tuple(parts)


def _parse_block(raw: Any, i: int, j: int, notes: list[str]) -> ContentPart | None:
    """``messages[i].content[j]``: the common kinds inline, the rest checked field by field."""
    if not isinstance(raw, dict):
        raise u.bad_type(f"messages[{i}].content[{j}]", "an object", raw)
    kind = raw.get("type")
    if kind == "text":
        text = raw.get("text")
        if isinstance(text, str):
            return Text(text, raw.get("cache_control")) if text else None
    elif kind == "tool_use":
        call_id, name, args = raw.get("id"), raw.get("name"), raw.get("input")
        if isinstance(call_id, str) and isinstance(name, str):
            call_id, sig = split_signature(call_id)
            arguments = "{}" if args is None else u.dumps(args)
            return ToolCall(id=call_id, name=name, arguments=arguments, signature=sig)
    elif kind == "tool_result":
        call_id, content = raw.get("tool_use_id"), raw.get("content")
        if isinstance(call_id, str) and isinstance(content, str):
            is_error = raw.get("is_error")
            if is_error is None or isinstance(is_error, bool):
                return ToolResult(
                    call_id=split_signature(call_id)[0],
                    content=(Text(content),) if content else (),
                    is_error=bool(is_error),
                    cache_control=raw.get("cache_control"),
                )
    # Everything else, and the common kinds with an odd or missing field, the long way.
    return _parse_block_checked(raw, f"messages[{i}].content[{j}]", notes)


def _parse_block_checked(block: dict[str, Any], path: str, notes: list[str]) -> ContentPart | None:
    kind = block.get("type")
    if kind == "text":
        text = u.opt_str(block, "text", path) or ""
        return Text(text, cache_control=block.get("cache_control")) if text else None
    if kind == "image":
        return _parse_source(u.opt_dict(block, "source", path) or {}, f"{path}.source", image=True)
    if kind == "document":
        doc = _parse_source(u.opt_dict(block, "source", path) or {}, f"{path}.source", image=False)
        if isinstance(doc, Document):
            title = block.get("title")
            return Document(
                doc.media_type, doc.data, doc.url, title if isinstance(title, str) else None
            )
        return doc
    if kind == "tool_use":
        call_id, sig = split_signature(u.opt_str(block, "id", path) or "")
        args = block.get("input")
        return ToolCall(
            id=call_id,
            name=u.opt_str(block, "name", path) or "",
            arguments=u.dumps(args) if args is not None else "{}",
            signature=sig,
        )
    if kind == "tool_result":
        call_id, _ = split_signature(u.opt_str(block, "tool_use_id", path) or "")
        return ToolResult(
            call_id=call_id,
            content=_parse_result_content(block.get("content"), f"{path}.content", notes),
            is_error=bool(u.opt_bool(block, "is_error", path)),
            cache_control=block.get("cache_control"),
        )
    if kind == "thinking":
        sig = u.opt_str(block, "signature", path)
        if sig and sig.startswith(GEMINI_SIG_PREFIX):
            return Thinking(
                u.opt_str(block, "thinking", path) or "", sig[len(GEMINI_SIG_PREFIX) :], "gemini"
            )
        return Thinking(
            u.opt_str(block, "thinking", path) or "", sig or None, "anthropic" if sig else None
        )
    if kind == "redacted_thinking":
        return RedactedThinking(u.opt_str(block, "data", path) or "")
    notes.append(f"dropped {path}: content block type {kind!r} has no equivalent")
    return None


def _parse_source(source: dict[str, Any], path: str, *, image: bool) -> ContentPart | None:
    kind = source.get("type")
    if kind == "base64":
        media_type = u.opt_str(source, "media_type", path)
        data = u.opt_str(source, "data", path) or ""
        return Image(media_type, data) if image else Document(media_type, data)
    if kind == "url":
        url = u.opt_str(source, "url", path) or ""
        return Image(url=url) if image else Document(url=url)
    if kind == "text" and not image:
        return Document("text/plain", u.text_to_b64(u.opt_str(source, "data", path) or ""))
    if kind == "content" and not image:
        texts = [b.get("text", "") for b in source.get("content") or () if isinstance(b, dict)]
        return Document(
            "text/plain", u.text_to_b64("".join(t for t in texts if isinstance(t, str)))
        )
    if kind == "file":
        raise BadRequest(
            f"`{path}`: Files API ids belong to one provider and cannot be sent to another; "
            "send the file inline as base64 instead."
        )
    raise BadRequest(f"`{path}.type` {kind!r} is not a supported source type.")


def _parse_result_content(raw: Any, path: str, notes: list[str]) -> tuple[Any, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        return (Text(raw),) if raw else ()
    out: list[Any] = []
    for i, block in enumerate(u.expect_list(raw, path)):
        part = _parse_block_checked(u.expect_dict(block, f"{path}[{i}]"), f"{path}[{i}]", notes)
        if isinstance(part, (Text, Image, Document)):
            out.append(part)
    return tuple(out)


def _parse_tool(raw: Any, i: int) -> Tool:
    if not isinstance(raw, dict):
        raise u.bad_type(f"tools[{i}]", "an object", raw)
    kind, name, description = raw.get("type"), raw.get("name"), raw.get("description")
    schema, strict = raw.get("input_schema"), raw.get("strict")
    if (
        kind is None
        and name
        and isinstance(name, str)
        and (description is None or isinstance(description, str))
        and (schema is None or isinstance(schema, dict))
        and (strict is None or isinstance(strict, bool))
    ):
        return Tool(name, description, schema, strict, raw.get("cache_control"))
    path = f"tools[{i}]"
    if kind not in (None, "custom"):
        raise BadRequest(
            f"`{path}`: the server tool {kind!r} only exists on Anthropic's own API and cannot "
            "be offered through this model's provider; remove it from `tools`."
        )
    name = u.opt_str(raw, "name", path)
    if not name:
        raise BadRequest(f"`{path}.name` is required.")
    return Tool(
        name=name,
        description=u.opt_str(raw, "description", path),
        parameters=u.opt_dict(raw, "input_schema", path),
        strict=u.opt_bool(raw, "strict", path),
        cache_control=raw.get("cache_control"),
    )


def _parse_tool_choice(raw: dict[str, Any] | None) -> tuple[ToolChoice | None, bool | None]:
    if raw is None:
        return None, None
    parallel = False if raw.get("disable_parallel_tool_use") is True else None
    kind = raw.get("type")
    if kind in ("auto", "any", "none"):
        return ToolChoice(kind), parallel
    if kind == "tool":
        return ToolChoice("tool", name=u.opt_str(raw, "name", "tool_choice")), parallel
    raise BadRequest("`tool_choice.type` must be 'auto', 'any', 'tool' or 'none'.")


def _parse_thinking(
    raw: dict[str, Any] | None, output_config: Mapping[str, Any]
) -> Reasoning | None:
    effort = output_config.get("effort")
    effort = effort if effort in EFFORTS else None
    if raw is None:
        return Reasoning(effort=effort) if effort else None
    kind = raw.get("type")
    shown = None if raw.get("display") is None else raw.get("display") != "omitted"
    if kind == "enabled":
        budget = u.opt_int(raw, "budget_tokens", "thinking")
        return Reasoning(
            "enabled",
            effort=effort,
            budget_tokens=budget,
            include_thoughts=shown if shown is not None else True,
        )
    if kind == "adaptive":
        return Reasoning(
            "adaptive", effort=effort, include_thoughts=shown if shown is not None else True
        )
    if kind in ("disabled", "between_tools"):
        return Reasoning("disabled", effort="none")
    raise BadRequest("`thinking.type` must be 'enabled', 'adaptive' or 'disabled'.")
