"""What can go wrong talking to Redis, in two kinds the callers treat differently.

- :class:`RedisError`: Redis answered, with an error reply (``-ERR ...``, ``-NOSCRIPT ...``).
  The connection is fine and goes back to the pool. The parser hands error replies back as
  values (a pipeline's third reply may be an error while the others are not); the client
  raises the one of a single command.
- :class:`RedisUnavailable`: no answer to be had: refused or timed-out connects, a
  connection broken mid-command, a command that took longer than its timeout, a server
  that does not speak RESP (:class:`RedisProtocolError`) or refused our credentials
  (:class:`RedisAuthError`). The shared state turns this into serving on local limits
  (``fail_open``) or into 503s. The connection involved is closed, never reused.

Messages name the server as ``host:port`` and never carry the password of the URL.
"""

from __future__ import annotations

__all__ = ["RedisAuthError", "RedisError", "RedisProtocolError", "RedisUnavailable"]


class RedisError(Exception):
    """An error reply from Redis: its text as Redis wrote it (``NOSCRIPT No matching script``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def code(self) -> str:
        """The reply's first word (``ERR``, ``NOSCRIPT``, ``WRONGPASS``, ...)."""
        return self.message.split(" ", 1)[0]

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, RedisError)
            and type(other) is type(self)
            and other.message == self.message
        )

    def __hash__(self) -> int:
        return hash((type(self), self.message))


class RedisUnavailable(Exception):
    """Redis cannot be used right now (unreachable, timed out, broken, refusing us)."""


class RedisProtocolError(RedisUnavailable):
    """The bytes from the server are not RESP, or exceed our bounds: the connection is closed."""


class RedisAuthError(RedisUnavailable):
    """The server refused the URL's credentials (or wanted some): a configuration problem."""
