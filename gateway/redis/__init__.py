"""A small Redis client on Trio sockets (RESP2): what the shared state needs, no more.

redis-py has no Trio support, so the gateway speaks RESP itself: ``resp`` (the sans-IO
codec), ``url`` (``redis://`` and ``rediss://``), ``connection`` (one connection: TLS,
``AUTH``, ``SELECT``), ``client`` (the pool, pipelines, scripts, timeouts, backoff) and
``errors`` (an error reply vs Redis unavailable). Nothing here knows what the gateway
stores; that is :mod:`gateway.state`.
"""

from gateway.redis.client import RedisClient, Script
from gateway.redis.errors import RedisAuthError, RedisError, RedisProtocolError, RedisUnavailable
from gateway.redis.resp import Reply
from gateway.redis.url import RedisURL, parse_redis_url

__all__ = [
    "RedisAuthError",
    "RedisClient",
    "RedisError",
    "RedisProtocolError",
    "RedisURL",
    "RedisUnavailable",
    "Reply",
    "Script",
    "parse_redis_url",
]
