"""OpenAI Chat Completions on the wire: what the rest of the gateway must know.

A module satisfying :class:`gateway.formats.format.Wire` (design.md, "Routing",
"Headers towards a provider", "Response status and keep-alives"):

- upstream: ``{base_url}/chat/completions``, the model and stream flag in the body;
  the client's ``OpenAI-Beta`` header is forwarded;
- keep-alives are SSE comment lines;
- a stream is whole once its ``finish_reason`` (or ``[DONE]``, or an error) came:
  some OpenAI-compatible servers never send ``[DONE]``;
- the max tokens are ``max_completion_tokens`` when the client used that field,
  else ``max_tokens``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from gateway.convert.model import Usage
from gateway.convert.names import ToolNameRule
from gateway.formats.format import ForwardedHeader
from gateway.formats.openai.response import parse_usage

NAME = "openai"
KEEPALIVE = b": keep-alive\n\n"
#: Plain substrings (``in`` is a fast scan): the finish chunk, ``[DONE]``, an error event.
TERMINAL_MARKERS: tuple[bytes, ...] = (
    b"data: [DONE]",
    b"data:[DONE]",
    b'"finish_reason":"',
    b'"finish_reason": "',
    b'data: {"error"',
    b'data:{"error"',
)
ANSWER_FIELD = "choices"
EMPTY_ANSWER_OK = False
BLOCKED_FIELD: str | None = None
USAGE_KEY = "usage"
USAGE_MARKER = b'"usage"'
USAGE_FIELDS: tuple[str, ...] = ("prompt_tokens", "completion_tokens")
#: How a provider key is sent when the file has no ``key_header``: (lower-case
#: header, value prefix), i.e. ``Authorization: Bearer <key>``.
KEY_HEADER = ("authorization", "Bearer ")
FORWARDED_HEADERS: tuple[ForwardedHeader, ...] = (
    ForwardedHeader("openai-beta", "OpenAI-Beta header"),
)
MODEL_IN_BODY = True
TOOL_NAMES = ToolNameRule(re.compile(r"[a-zA-Z0-9_-]{1,64}"), re.compile(r"[^a-zA-Z0-9_-]"))
#: The client paths whose errors are OpenAI's (also the default for every other path).
CLIENT_PATH_PREFIXES = ("/v1/chat/",)


def read_usage(raw: Mapping[str, Any], previous: Usage | None) -> Usage:
    """An OpenAI usage object (each one a whole snapshot)."""
    return parse_usage(raw)


def upstream_target(
    model: str, *, stream: bool, count_tokens: bool
) -> tuple[str, tuple[tuple[str, str], ...]]:
    """``/chat/completions``: the model and stream flag go in the body."""
    return "/chat/completions", ()


def clamp_max_tokens(body: dict[str, Any], limit: int) -> None:
    """Clamp ``max_completion_tokens`` if the client used it, else ``max_tokens``."""
    field = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
    asked = body.get(field)
    body[field] = min(asked, limit) if isinstance(asked, int) else limit


def count_tokens_body(body: dict[str, Any], upstream_model: str) -> dict[str, Any] | None:
    """OpenAI has no count-tokens call: never used."""
    return None


def count_request(body: dict[str, Any]) -> dict[str, Any]:
    return body


def count_answer(tokens: int) -> dict[str, Any]:
    return {"input_tokens": tokens}


def answers_path(path: str) -> bool:
    return path.startswith(CLIENT_PATH_PREFIXES)
