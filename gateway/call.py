"""One client request as a front end parsed it (what the proxy and the adapters work from)."""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["Call"]


@attrs.frozen
class Call:
    """One client request, as a front end parsed it.

    Attributes:
        fmt: the client's wire format: ``openai``, ``anthropic`` or ``gemini``.
        op: ``chat``, ``messages``, ``count_tokens`` or ``generate``.
        model: the model name the client asked for.
        stream: the client asked for a stream.
        body: the parsed JSON body (not modified by the proxy).
        size: the body's size in bytes as it arrived (0 when unknown).
    """

    fmt: str
    op: str
    model: str
    stream: bool
    body: dict[str, Any]
    size: int = 0
