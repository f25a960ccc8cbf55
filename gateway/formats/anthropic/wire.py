"""Anthropic Messages on the wire: what the rest of the gateway must know.

A module satisfying :class:`gateway.formats.format.Wire` (design.md, "Routing",
"Headers towards a provider", "Response status and keep-alives"):

- upstream: ``{base_url}/messages`` and ``/messages/count_tokens``, the model and
  stream flag in the body; the client's ``anthropic-version`` (else
  :data:`ANTHROPIC_VERSION`) and ``anthropic-beta`` are forwarded;
- keep-alives are ``event: ping`` (the SDK skips them);
- a stream is whole once its ``message_stop``, or the ``message_delta`` that
  carries the stop reason, or an error event came;
- an answer's ``content`` may be empty (a model may say nothing).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from gateway.convert.model import Usage
from gateway.convert.names import ToolNameRule
from gateway.formats.anthropic.response import parse_usage
from gateway.formats.format import ForwardedHeader

NAME = "anthropic"
#: The API version sent when the client named none.
ANTHROPIC_VERSION = "2023-06-01"
KEEPALIVE = b'event: ping\ndata: {"type":"ping"}\n\n'
#: Plain substrings (``in`` is a fast scan).
TERMINAL_MARKERS: tuple[bytes, ...] = (
    b"event: message_stop",
    b"event:message_stop",
    b"event: error",
    b"event:error",
    b'"type":"message_stop"',
    b'"type": "message_stop"',
    b'"stop_reason":"',  # message_delta's, as for the converting parser
    b'"stop_reason": "',
)
ANSWER_FIELD = "content"
EMPTY_ANSWER_OK = True
BLOCKED_FIELD: str | None = None
#: At the top of ``message_delta`` and inside ``message_start``'s message.
USAGE_KEY = "usage"
USAGE_MARKER = b'"usage"'
USAGE_FIELDS: tuple[str, ...] = ("input_tokens", "output_tokens")
#: How a provider key is sent when the file has no ``key_header``: (lower-case
#: header, value prefix), i.e. ``x-api-key: <key>``.
KEY_HEADER = ("x-api-key", "")
FORWARDED_HEADERS: tuple[ForwardedHeader, ...] = (
    ForwardedHeader("anthropic-version", "anthropic-version header", ANTHROPIC_VERSION),
    ForwardedHeader("anthropic-beta", "anthropic-beta header"),
)
MODEL_IN_BODY = True
TOOL_NAMES = ToolNameRule(re.compile(r"[a-zA-Z0-9_-]{1,64}"), re.compile(r"[^a-zA-Z0-9_-]"))
#: The client paths whose errors are Anthropic's.
CLIENT_PATH_PREFIXES = ("/v1/messages",)


def read_usage(raw: Mapping[str, Any], previous: Usage | None) -> Usage:
    """An Anthropic usage object: ``message_delta`` updates what ``message_start`` said."""
    return parse_usage(raw, previous)


def upstream_target(
    model: str, *, stream: bool, count_tokens: bool
) -> tuple[str, tuple[tuple[str, str], ...]]:
    """``/messages`` or ``/messages/count_tokens``: the model and stream flag go in the body."""
    return ("/messages/count_tokens" if count_tokens else "/messages"), ()


def clamp_max_tokens(body: dict[str, Any], limit: int) -> None:
    """Clamp ``max_tokens``, filling it in when absent."""
    asked = body.get("max_tokens")
    body["max_tokens"] = min(asked, limit) if isinstance(asked, int) else limit


def count_tokens_body(body: dict[str, Any], upstream_model: str) -> dict[str, Any] | None:
    """None: a count_tokens body gets the model swap and the file's edits like any other."""
    return None


def count_request(body: dict[str, Any]) -> dict[str, Any]:
    return body


def count_answer(tokens: int) -> dict[str, Any]:
    return {"input_tokens": tokens}


def answers_path(path: str) -> bool:
    return path.startswith(CLIENT_PATH_PREFIXES)
