"""The State the settings ask for: :func:`make_state`.

No ``[state] redis_url``: a :class:`LocalState`. With one: a :class:`RedisState` on a
:class:`~gateway.redis.RedisClient` whose connect and command timeouts are
``state.timeout_s``. Both have ``run`` (a service for the app's nursery: ``await
services.start(state.run)``; RedisState renews leases and watches Redis there) and
``aclose`` (after the nursery: closes the connections).
"""

from __future__ import annotations

import ssl

from gateway.config import StateConfig
from gateway.redis import RedisClient
from gateway.state.local import LocalState
from gateway.state.shared import RedisState

__all__ = ["make_state"]


def make_state(
    config: StateConfig, *, ssl_context: ssl.SSLContext | None = None
) -> LocalState | RedisState:
    """The state for ``config`` (nothing is connected until it is used or run).

    Args:
        config: the ``[state]`` settings (already checked: the URL parses).
        ssl_context: for ``rediss://`` (default: the system's CAs).
    """
    if not config.redis_url:
        return LocalState()
    client = RedisClient(
        config.redis_url,
        connect_timeout_s=config.timeout_s,
        command_timeout_s=config.timeout_s,
        ssl_context=ssl_context,
    )
    return RedisState(client, fail_open=config.fail_open, prefix=config.key_prefix)
