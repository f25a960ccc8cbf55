"""Gemini generateContent <-> canonical model (wire-formats.md §3)."""

from __future__ import annotations

from gateway.convert.gemini.request import parse_request, render_request
from gateway.convert.gemini.response import parse_response, render_response

__all__ = ["parse_request", "parse_response", "render_request", "render_response"]
