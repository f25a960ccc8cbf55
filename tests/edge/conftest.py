"""Fixtures for edge tests: the proxy tests' fake providers and transformer directory."""

from __future__ import annotations

from tests.proxy.conftest import backup, provider, tdir

__all__ = ["backup", "provider", "tdir"]
