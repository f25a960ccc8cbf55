"""Gemini generateContent on the wire: what the rest of the gateway must know.

A module satisfying :class:`gateway.formats.format.Wire` (design.md, "Routing",
"Front-end endpoints", "Response status and keep-alives"):

- upstream: ``{base_url}/models/{model}:generateContent``,
  ``:streamGenerateContent?alt=sse`` (providers are always asked for SSE) and
  ``:countTokens``; the model (one percent-encoded path segment) and the stream
  flag are in the URL, not the body;
- a client path holds the model and the method after its last colon
  (:func:`split_target`): a model name may itself hold ``/`` and ``:``;
- keep-alives are a bare line end (google-genai skips empty lines but parses any
  other non-``data:`` line as JSON, so a comment would break it);
- a stream is whole once a ``finishReason`` (or ``blockReason``, or an error)
  came: Gemini sends no terminator;
- an answer to a blocked prompt has only ``promptFeedback``;
- the max tokens are ``generationConfig.maxOutputTokens``;
- countTokens accepts only ``contents`` or ``generateContentRequest``, so its body
  goes upstream without the file's ``request`` edits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from gateway.convert.model import Usage
from gateway.convert.names import ToolNameRule
from gateway.errors import NotFound, echo
from gateway.formats.format import ForwardedHeader
from gateway.formats.gemini.response import parse_usage
from gateway.urls import path_segment

NAME = "gemini"
KEEPALIVE = b"\r\n"
#: Plain substrings (``in`` is a fast scan).
TERMINAL_MARKERS: tuple[bytes, ...] = (
    b'"finishReason":"',
    b'"finishReason": "',
    b'"blockReason"',
    b'data: {"error"',
    b'data:{"error"',
)
ANSWER_FIELD = "candidates"
EMPTY_ANSWER_OK = False
BLOCKED_FIELD: str | None = "promptFeedback"
USAGE_KEY = "usageMetadata"
USAGE_MARKER = b'"usageMetadata"'
USAGE_FIELDS: tuple[str, ...] = ("promptTokenCount", "candidatesTokenCount", "totalTokenCount")
#: How a provider key is sent when the file has no ``key_header``: (lower-case
#: header, value prefix), i.e. ``x-goog-api-key: <key>``.
KEY_HEADER = ("x-goog-api-key", "")
FORWARDED_HEADERS: tuple[ForwardedHeader, ...] = ()
MODEL_IN_BODY = False
TOOL_NAMES = ToolNameRule(
    re.compile(r"[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}"), re.compile(r"[^a-zA-Z0-9_.:-]"), True
)
#: Client paths under these prefixes with a ``:method`` are Gemini's.
CLIENT_PATH_PREFIXES = ("/v1beta/", "/v1/models/")


def read_usage(raw: Mapping[str, Any], previous: Usage | None) -> Usage:
    """A Gemini ``usageMetadata`` (cumulative: each one a whole snapshot)."""
    return parse_usage(raw)


def upstream_target(
    model: str, *, stream: bool, count_tokens: bool
) -> tuple[str, tuple[tuple[str, str], ...]]:
    """``/models/{model}:{method}``; streams are asked for as SSE."""
    segment = path_segment(model)
    if count_tokens:
        return f"/models/{segment}:countTokens", ()
    if stream:
        return f"/models/{segment}:streamGenerateContent", (("alt", "sse"),)
    return f"/models/{segment}:generateContent", ()


def clamp_max_tokens(body: dict[str, Any], limit: int) -> None:
    """Clamp ``generationConfig.maxOutputTokens``, filling it in when absent."""
    config = dict(body.get("generationConfig") or {})
    asked = config.get("maxOutputTokens")
    config["maxOutputTokens"] = min(asked, limit) if isinstance(asked, int) else limit
    body["generationConfig"] = config


def count_tokens_body(body: dict[str, Any], upstream_model: str) -> dict[str, Any] | None:
    """A countTokens body for the provider, without the file's ``request`` edits.

    They are for generation, and countTokens accepts only ``contents`` or
    ``generateContentRequest`` (Gemini rejects any other field). A
    ``generateContentRequest`` names its model, so that name becomes the upstream one.
    """
    inner = body.get("generateContentRequest")
    if isinstance(inner, dict) and "model" in inner:
        return {**body, "generateContentRequest": {**inner, "model": f"models/{upstream_model}"}}
    return body


def count_request(body: dict[str, Any]) -> dict[str, Any]:
    """The generateContent-shaped request inside a countTokens body.

    ``countTokens`` takes either ``contents`` or a whole ``generateContentRequest``.
    """
    inner = body.get("generateContentRequest")
    if "contents" not in body and isinstance(inner, dict):
        return inner
    return body


def count_answer(tokens: int) -> dict[str, Any]:
    return {"totalTokens": tokens}


def answers_path(path: str) -> bool:
    return path.startswith(CLIENT_PATH_PREFIXES) and ":" in path


def split_target(rest: str) -> tuple[str, str]:
    """Split the part of a Gemini path after ``models/`` into (model, method).

    The model may itself hold ``/`` and ``:``; the method is what follows the
    last colon: ``"openrouter/qwen2.5:7b:generateContent"`` gives
    ``("openrouter/qwen2.5:7b", "generateContent")``.

    Raises:
        NotFound: there is no ``:method``, or no model before it.
    """
    model, colon, method = rest.rpartition(":")
    if not colon or not model or not method:
        raise NotFound(
            f"Unknown path {echo('models/' + rest)}: expected models/{{model}}:{{method}}, "
            "e.g. models/gemini-2.5-flash:generateContent."
        )
    return model, method
