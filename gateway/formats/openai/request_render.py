"""Canonical :class:`~gateway.convert.model.Request` -> OpenAI Chat Completions request body.

Contract (wire-formats §1.2, §1.3, §4): :func:`render_request` builds a body an
OpenAI-compatible server accepts: one ``tool`` message per result right after
the assistant turn that called it, follow-up user content after the tool
messages (§4.3 rule 3), ``system`` rather than ``developer`` (some compatible
backends reject it), arguments as JSON strings, ``stream_options.include_usage``
always on for streams (the renderer for an OpenAI client strips the usage chunk
again when that client did not ask for it, §5.2 item 8). Thinking blocks are
dropped with a note: OpenAI has no field for them and some compatible servers
reject ``reasoning_content`` in history. The parser is
:mod:`gateway.formats.openai.request_parse`.
"""

from __future__ import annotations

import re
from typing import Any

from gateway.convert import _util as u
from gateway.convert._common import (
    budget_to_effort,
    defer_system_messages,
    result_text,
)
from gateway.convert.encoded import EncodedList, encode
from gateway.convert.memo import Memo
from gateway.convert.model import (
    Audio,
    Document,
    Image,
    Message,
    Notes,
    Reasoning,
    Request,
    ResponseFormat,
    Text,
    ToolCall,
    ToolResult,
)
from gateway.convert.names import wire_tool_name
from gateway.errors import BadRequest
from gateway.formats.openai.wire import TOOL_NAMES

__all__ = ["render_request"]

#: Upstream model names that take ``reasoning_effort`` (others reject it with a 400).
_REASONING_MODELS = re.compile(
    r"(?:^|[/:])(?:o[1-9]|gpt-5|gpt-oss|grok-[3-9]|qwen3|deepseek-r|gemini-[2-9]|magistral)",
    re.IGNORECASE,
)
_NO_RESULT = "Error: no result was provided for this tool call."
_AUDIO_FORMATS = {"audio/wav": "wav", "audio/x-wav": "wav", "audio/mp3": "mp3", "audio/mpeg": "mp3"}


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
            fn: dict[str, Any] = {"name": wire_tool_name(t.name, TOOL_NAMES)}
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
                        {"type": "function", "function": {"name": wire_tool_name(n, TOOL_NAMES)}}
                        for n in choice.allowed
                    ],
                },
            }
        elif choice.mode == "tool":
            name = wire_tool_name(choice.name or "", TOOL_NAMES)
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
                        "name": wire_tool_name(p.name, TOOL_NAMES),
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
