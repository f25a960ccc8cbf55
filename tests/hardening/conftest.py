"""Fixtures shared by the hardening tests: the proxy tests' fake provider and transformer dir."""

from tests.proxy.conftest import backup, provider, tdir

__all__ = ["backup", "provider", "tdir"]
