"""Canonical messages -> Anthropic Messages ``messages`` (wire-formats §2.2, §4.3).

Contract: consecutive same-role turns merged, tool results first in a user turn,
every ``tool_use`` answered in the next turn (a synthetic error result
otherwise), no empty text blocks, first turn ``user`` (§4.3 rule 1, §5.1);
thinking blocks only when an Anthropic upstream signed them; mid-conversation
system messages become ``<system>`` text in the user turn unless
``system_messages`` (the upstream accepts ``role: "system"``, §5.5). Part of
:func:`gateway.formats.anthropic.request_render.render_request`, which says
what the rest of the body holds.
"""

from __future__ import annotations

from typing import Any

from gateway.convert import _util as u
from gateway.convert.model import (
    Audio,
    ContentPart,
    Document,
    Image,
    Message,
    RedactedThinking,
    Text,
    Thinking,
    ToolCall,
    ToolResult,
)
from gateway.convert.names import wire_call_id, wire_tool_name
from gateway.errors import BadRequest
from gateway.formats.anthropic.wire import TOOL_NAMES

__all__ = ["render_messages", "text_block"]

_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_NO_RESULT = "No result was provided for this tool call."


def text_block(t: Text) -> dict[str, Any]:
    """A text block, with its cache marker (the system prompt's blocks too)."""
    block: dict[str, Any] = {"type": "text", "text": t.text}
    if t.cache_control is not None:
        block["cache_control"] = dict(t.cache_control)
    return block


def render_messages(
    messages: tuple[Message, ...], system_messages: bool, notes: list[str]
) -> tuple[list[dict[str, Any]], bool]:
    """Canonical history -> Anthropic ``messages``; also says whether the pending
    tool turn lacks a thinking block (so thinking must be turned off)."""
    turns: list[list[Any]] = []  # [role, blocks]
    dropped_thinking = False
    for m in messages:
        if m.role == "system":
            texts = [p.text for p in m.content if isinstance(p, Text) and p.text]
            if not texts:
                continue
            if system_messages:
                turns.append(["system", [{"type": "text", "text": t} for t in texts]])
                continue
            block = {"type": "text", "text": "<system>\n" + "\n\n".join(texts) + "\n</system>"}
            _add_turn(turns, "user", [block])
            continue
        blocks: list[dict[str, Any]] = []
        for p in m.content:
            part = _render_part(p, m.role, notes)
            if part is None:
                if isinstance(p, Thinking):
                    dropped_thinking = True
                continue
            blocks.append(part)
        _add_turn(turns, m.role, blocks)
    if dropped_thinking:
        notes.append("dropped thinking blocks that no Anthropic model signed")
    _pair_tool_results(turns, notes)
    if turns and turns[0][0] == "assistant":
        turns.insert(0, ["user", [{"type": "text", "text": "."}]])
        notes.append("added a placeholder user turn: Anthropic histories start with a user turn")
    lost = _pending_turn_lacks_thinking(turns)
    return [{"role": r, "content": b} for r, b in turns], lost


def _add_turn(turns: list[list[Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    if not blocks:
        return
    if turns and turns[-1][0] == role and role != "system":
        turns[-1][1].extend(blocks)
    else:
        turns.append([role, list(blocks)])


def _render_part(p: ContentPart, role: str, notes: list[str]) -> dict[str, Any] | None:
    if isinstance(p, Text):
        return text_block(p) if p.text.strip() else None
    if isinstance(p, Image):
        return _image_block(p)
    if isinstance(p, Document):
        return _document_block(p)
    if isinstance(p, Audio):
        raise BadRequest("Anthropic models cannot take audio input; remove the audio part.")
    if isinstance(p, ToolCall):
        args, ok = u.args_object(p.arguments)
        if not ok:
            notes.append(f"tool call {p.id}: arguments were not a JSON object; sent as raw_input")
        return {
            "type": "tool_use",
            "id": wire_call_id(p.id),
            "name": wire_tool_name(p.name, TOOL_NAMES),
            "input": args,
        }
    if isinstance(p, ToolResult):
        return _result_block(p)
    if isinstance(p, Thinking):
        if p.origin != "anthropic" or not p.signature or role != "assistant":
            return None
        return {"type": "thinking", "thinking": p.text, "signature": p.signature}
    if isinstance(p, RedactedThinking):
        return {"type": "redacted_thinking", "data": p.data}


def _image_block(p: Image) -> dict[str, Any]:
    if p.url is not None:
        parsed = u.parse_data_url(p.url)
        if parsed is None:
            u.check_portable_url(p.url)
            return {"type": "image", "source": {"type": "url", "url": p.url}}
        media_type, data = parsed
    else:
        media_type, data = p.media_type or "image/png", p.data or ""
    if media_type not in _IMAGE_TYPES:
        raise BadRequest(
            f"Anthropic models take JPEG, PNG, GIF or WebP images, not {media_type!r}; "
            "convert the image."
        )
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _document_block(p: Document) -> dict[str, Any]:
    block: dict[str, Any]
    media_type, data = p.media_type, p.data
    if p.url is not None:
        parsed = u.parse_data_url(p.url)
        if parsed is None:
            u.check_portable_url(p.url)
            block = {"type": "document", "source": {"type": "url", "url": p.url}}
            return _titled(block, p.title)
        media_type, data = parsed
    if media_type == "application/pdf":
        block = {
            "type": "document",
            "source": {"type": "base64", "media_type": media_type, "data": data or ""},
        }
    elif media_type == "text/plain":
        text = u.b64_to_text(data or "")
        if text is None:
            raise BadRequest("A text/plain document is not valid base64-encoded UTF-8.")
        block = {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": text},
        }
    else:
        raise BadRequest(
            f"Anthropic models take PDF or plain-text documents, not {media_type!r}; "
            "convert the file."
        )
    return _titled(block, p.title)


def _titled(block: dict[str, Any], title: str | None) -> dict[str, Any]:
    if title:
        block["title"] = title
    return block


def _result_block(p: ToolResult) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    for c in p.content:
        if isinstance(c, Text):
            if c.text:
                content.append({"type": "text", "text": c.text})
        elif isinstance(c, Image):
            content.append(_image_block(c))
        elif isinstance(c, Document):
            content.append(_document_block(c))
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": wire_call_id(p.call_id)}
    if len(content) == 1 and content[0]["type"] == "text":
        block["content"] = content[0]["text"]
    elif content:
        block["content"] = content
    if p.is_error:
        block["is_error"] = True
    if p.cache_control is not None:
        block["cache_control"] = dict(p.cache_control)
    return block


def _pair_tool_results(turns: list[list[Any]], notes: list[str]) -> None:
    """Every tool_use answered in the next user turn, no result without its call (§5.1 item 2).

    Builds the new list in one pass (sets for the ids): deleting or inserting turns in
    place, or looking ids up in lists, would cost the square of a long history.
    """
    paired: list[list[Any]] = []
    for turn in turns:
        role, blocks = turn
        if role != "user":
            paired.append(turn)
            continue
        prev = paired[-1] if paired and paired[-1][0] == "assistant" else None
        wanted = [b["id"] for b in prev[1] if b["type"] == "tool_use"] if prev else []
        results = [b for b in blocks if b["type"] == "tool_result"]
        if not wanted and not results:
            paired.append(turn)
            continue
        wanted_ids = set(wanted)
        others = [b for b in blocks if b["type"] != "tool_result"]
        kept = [b for b in results if b["tool_use_id"] in wanted_ids]
        if len(kept) != len(results):
            notes.append("dropped tool results that answer no tool call of the previous turn")
        have = {b["tool_use_id"] for b in kept}
        for call_id in wanted:
            if call_id not in have:
                kept.append(
                    {
                        "type": "tool_result",
                        "tool_use_id": call_id,
                        "content": _NO_RESULT,
                        "is_error": True,
                    }
                )
                notes.append(f"added an error result for unanswered tool call {call_id}")
        if kept or others:
            turn[1] = kept + others
            paired.append(turn)
    # An assistant tool turn followed by another assistant turn (or nothing user-side but
    # more history) gets a synthetic result turn.
    out: list[list[Any]] = []
    for i, turn in enumerate(paired):
        out.append(turn)
        role, blocks = turn
        if role == "assistant" and i + 1 < len(paired) and paired[i + 1][0] != "user":
            ids = [b["id"] for b in blocks if b["type"] == "tool_use"]
            if ids:
                fill = [
                    {
                        "type": "tool_result",
                        "tool_use_id": c,
                        "content": _NO_RESULT,
                        "is_error": True,
                    }
                    for c in ids
                ]
                out.append(["user", fill])
                notes.append("added error results for unanswered tool calls")
    turns[:] = out


def _pending_turn_lacks_thinking(turns: list[list[Any]]) -> bool:
    if len(turns) < 2 or turns[-1][0] != "user" or turns[-2][0] != "assistant":
        return False
    if not any(b["type"] == "tool_result" for b in turns[-1][1]):
        return False
    first = turns[-2][1][0] if turns[-2][1] else None
    return first is None or first["type"] not in ("thinking", "redacted_thinking")
