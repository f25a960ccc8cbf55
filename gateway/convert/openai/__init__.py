"""OpenAI Chat Completions <-> canonical model (wire-formats.md §1)."""

from __future__ import annotations

from gateway.convert.openai.request import parse_request, render_request
from gateway.convert.openai.response import parse_response, render_response

__all__ = ["parse_request", "parse_response", "render_request", "render_response"]
