"""gateway: a small, fast, dependable LLM API gateway on Trio."""

from gateway._version import __version__

__all__ = ["__version__"]
