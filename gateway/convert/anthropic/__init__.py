"""Anthropic Messages <-> canonical model (wire-formats.md §2)."""

from __future__ import annotations

from gateway.convert.anthropic.request import parse_request, render_request
from gateway.convert.anthropic.response import parse_response, render_response

__all__ = ["parse_request", "parse_response", "render_request", "render_response"]
