"""Canonical :class:`~gateway.convert.model.Request` -> Anthropic Messages request body.

Contract (wire-formats §2.2, §2.3, §4): :func:`render_request` builds a body a
real Anthropic API accepts:

- ``max_tokens`` always set (``default_max_tokens`` when the client gave none)
  and above the thinking budget (§4.8, §5.4 item 24);
- consecutive same-role turns merged, tool results first in a user turn, every
  ``tool_use`` answered in the next turn (a synthetic error result otherwise),
  no empty text blocks, first turn ``user`` (§4.3 rule 1, §5.1);
- thinking blocks only when an Anthropic upstream signed them; when thinking is
  on and the pending tool turn lost its thinking block, thinking is turned off
  (§5.1 item 3); sampling parameters dropped while thinking is on (§5.4 item 23);
- mid-conversation system messages become ``<system>`` text in the user turn
  unless ``system_messages=True`` (the upstream accepts ``role: "system"``, §5.5).

The history itself is rendered by :mod:`gateway.formats.anthropic.request_messages`.
Everything dropped is named in the returned notes. What would change the
meaning (``n > 1``, audio output, an input Anthropic cannot read) is a
BadRequest saying what to change. Nothing here is worth remembering between
requests (turns merge across messages), so unlike the other renderers this one
takes no memo. The parser is :mod:`gateway.formats.anthropic.request_parse`.
"""

from __future__ import annotations

import re
from typing import Any

from gateway.convert._common import (
    ANTHROPIC_EFFORT_BUDGET,
    defer_system_messages,
)
from gateway.convert.model import (
    Message,
    Notes,
    Reasoning,
    Request,
    Text,
)
from gateway.convert.names import (
    wire_tool_name,
)
from gateway.errors import BadRequest
from gateway.formats.anthropic.request_messages import render_messages, text_block
from gateway.formats.anthropic.wire import TOOL_NAMES

__all__ = ["render_request"]

_JSON_HINT = "Respond with a single valid JSON object and nothing else."
#: Models that take ``thinking: {type: "adaptive"}`` + ``output_config.effort``
#: rather than a fixed budget (SDK 2.12 warns that ``enabled`` is deprecated there).
_ADAPTIVE_MODELS = re.compile(r"claude-(?:opus|sonnet|haiku)-4-[6-9]|claude-mythos|claude-[5-9]")
_EFFORT = {
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "xhigh",
    "max": "max",
}


def render_request(
    req: Request,
    *,
    upstream_model: str,
    default_max_tokens: int = 4096,
    system_messages: bool = False,
    sampling: bool = True,
    adaptive_thinking: bool | None = None,
) -> tuple[dict[str, Any], Notes]:
    """Render a canonical request as an Anthropic Messages body.

    Args:
        req: the canonical request.
        upstream_model: the provider's model name, written into ``model``.
        default_max_tokens: ``max_tokens`` when the client gave none.
        system_messages: send mid-conversation system messages as
            ``role: "system"`` (only for upstreams known to accept it).
        sampling: False drops temperature/top_p/top_k (models that reject them).
        adaptive_thinking: force (True) or forbid (False) adaptive thinking for an
            effort-only request; None decides by the model name.

    Returns:
        ``(body, notes)``.

    Raises:
        BadRequest: the request asks for something Anthropic cannot do.
    """
    notes: list[str] = []
    if req.n is not None and req.n > 1:
        raise BadRequest("Anthropic models return one choice per request; set `n` to 1.")
    if req.audio_output:
        raise BadRequest("This model's provider cannot produce audio; remove `modalities`/`audio`.")
    body: dict[str, Any] = {"model": upstream_model}

    system = list(req.system)
    messages, hoisted = _split_leading_system(defer_system_messages(req.messages))
    system.extend(hoisted)
    rf = req.response_format
    output_config: dict[str, Any] = {}
    if rf is not None and rf.type == "json_object":
        system.append(Text(_JSON_HINT))
        notes.append(
            "response_format json_object: Anthropic has no JSON mode; added a system instruction"
        )
    elif rf is not None and rf.type == "json_schema" and rf.schema is not None:
        output_config["format"] = {"type": "json_schema", "schema": dict(rf.schema)}
    if system:
        if len(system) == 1 and system[0].cache_control is None:
            body["system"] = system[0].text
        else:
            body["system"] = [text_block(t) for t in system]

    thinking, effort = _render_thinking(req.reasoning, upstream_model, adaptive_thinking)
    rendered, thinking_lost = render_messages(messages, system_messages, notes)
    if thinking is not None and thinking["type"] != "disabled" and thinking_lost:
        notes.append("thinking turned off: the pending tool turn has no Anthropic thinking block")
        thinking, effort = None, None
    body["messages"] = rendered

    max_tokens = req.max_tokens if req.max_tokens is not None else default_max_tokens
    if thinking is not None and thinking.get("type") == "enabled":
        budget = thinking["budget_tokens"]
        if max_tokens <= budget:
            notes.append(
                f"max_tokens raised to {budget + max_tokens} to exceed the thinking budget"
            )
            max_tokens = budget + max_tokens
    body["max_tokens"] = max_tokens
    if thinking is not None:
        body["thinking"] = thinking
    if effort is not None:
        output_config["effort"] = effort
    if output_config:
        body["output_config"] = output_config

    thinking_on = thinking is not None and thinking["type"] != "disabled"
    _render_sampling(req, body, notes, enabled=sampling and not thinking_on)
    if req.stop:
        body["stop_sequences"] = list(req.stop)
    _render_tools(req, body, notes, thinking_on)
    if req.user:
        body["metadata"] = {"user_id": req.user}
    if req.metadata:
        notes.append("metadata map dropped: Anthropic only takes metadata.user_id")
    for field in ("seed", "presence_penalty", "frequency_penalty"):
        if getattr(req, field) is not None:
            notes.append(f"{field} dropped: Anthropic has no equivalent")
    if req.stream:
        body["stream"] = True
    _merge_extra(req, body, notes)
    return body, tuple(notes)


def _merge_extra(req: Request, body: dict[str, Any], notes: list[str]) -> None:
    if not req.extra:
        return
    if req.extra_format == "anthropic":
        for k, v in req.extra.items():
            body.setdefault(k, v)
    else:
        notes.append("dropped fields with no Anthropic equivalent: " + ", ".join(sorted(req.extra)))


def _split_leading_system(messages: tuple[Message, ...]) -> tuple[tuple[Message, ...], list[Text]]:
    hoisted: list[Text] = []
    i = 0
    while i < len(messages) and messages[i].role == "system":
        hoisted.extend(p for p in messages[i].content if isinstance(p, Text))
        i += 1
    return messages[i:], hoisted


def _render_thinking(
    r: Reasoning | None, model: str, adaptive: bool | None
) -> tuple[dict[str, Any] | None, str | None]:
    """``(thinking, output_config.effort)`` for a canonical reasoning setting (§4.13)."""
    if r is None:
        return None, None
    if r.mode == "disabled" or r.effort == "none":
        return {"type": "disabled"}, None
    effort = _EFFORT.get(r.effort or "")
    display = {} if r.include_thoughts is not False else {"display": "omitted"}
    if r.mode == "adaptive":
        return {"type": "adaptive", **display}, effort
    if r.mode is None:
        return None, effort  # an effort alone: output_config.effort only
    if r.budget_tokens is None and effort is not None:
        use_adaptive = adaptive if adaptive is not None else bool(_ADAPTIVE_MODELS.search(model))
        if use_adaptive:
            return {"type": "adaptive", **display}, effort
        effort = None
    budget = r.budget_tokens or ANTHROPIC_EFFORT_BUDGET.get(r.effort or "", 2048)
    return {"type": "enabled", "budget_tokens": max(1024, budget), **display}, effort


def _render_sampling(
    req: Request, body: dict[str, Any], notes: list[str], *, enabled: bool
) -> None:
    present = [f for f in ("temperature", "top_p", "top_k") if getattr(req, f) is not None]
    if not enabled:
        if present:
            notes.append(
                f"dropped {', '.join(present)}: not sent while thinking is on or sampling is off"
            )
        return
    if req.temperature is not None:
        temperature = req.temperature
        if temperature > 1:
            notes.append(f"temperature {temperature} clamped to 1 (Anthropic's range is 0-1)")
            temperature = 1.0
        body["temperature"] = temperature
        if req.top_p is not None:
            notes.append("top_p dropped: Anthropic models reject temperature and top_p together")
    elif req.top_p is not None:
        body["top_p"] = req.top_p
    if req.top_k is not None:
        body["top_k"] = req.top_k


def _render_tools(req: Request, body: dict[str, Any], notes: list[str], thinking_on: bool) -> None:
    choice = req.tool_choice
    tools = req.tools
    if choice is not None and choice.allowed:
        allowed = set(choice.allowed)
        tools = tuple(t for t in tools if t.name in allowed)
        notes.append("allowed_tools: tools outside the allowed list were left out")
    if not tools:
        return
    out = []
    for t in tools:
        schema = (
            dict(t.parameters) if t.parameters is not None else {"type": "object", "properties": {}}
        )
        schema.setdefault("type", "object")
        tool: dict[str, Any] = {"name": wire_tool_name(t.name, TOOL_NAMES), "input_schema": schema}
        if t.description:
            tool["description"] = t.description
        if t.strict is not None:
            tool["strict"] = t.strict
        if t.cache_control is not None:
            tool["cache_control"] = dict(t.cache_control)
        out.append(tool)
    body["tools"] = out
    tc: dict[str, Any] | None = None
    if choice is not None:
        mode = choice.mode
        if thinking_on and mode in ("any", "tool"):
            notes.append(
                "forced tool_choice downgraded to auto: Anthropic forbids it with thinking on"
            )
            mode = "auto"
        tc = {"type": mode}
        if mode == "tool":
            tc["name"] = wire_tool_name(choice.name or "", TOOL_NAMES)
    if req.parallel_tool_calls is False:
        tc = tc or {"type": "auto"}
        if tc["type"] != "none":
            tc["disable_parallel_tool_use"] = True
    if tc is not None:
        body["tool_choice"] = tc


# -- messages ------------------------------------------------------------------------------
