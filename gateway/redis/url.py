"""``redis://`` and ``rediss://`` URLs: where Redis is and how to log in.

    redis://[[user]:password@]host[:port][/db]      plain TCP, port 6379 by default
    rediss://...                                    the same over TLS

The user and password are percent-decoded (a password holding ``@`` or ``/`` is written
``%40``, ``%2F``); a password without a user logs in as Redis's ``default`` user (the
``requirepass`` kind, ``AUTH password``); a user without a password sends none. ``db``
is a database number (``SELECT``). A query string, a fragment, another scheme
(``unix://``, ``http://``) or a malformed part is refused with a message that names the
part and never repeats the password: the whole URL is a secret setting
(``state.redis_url``), so messages say ``host:port`` at most.

TLS: ``rediss://`` verifies the server's certificate against the system's CAs (and
``SSL_CERT_FILE`` / ``SSL_CERT_DIR``, which OpenSSL reads), with its host name checked.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

import attrs

__all__ = ["DEFAULT_PORT", "RedisURL", "parse_redis_url", "redis_url_problem"]

DEFAULT_PORT = 6379
_HOST_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,252})?")
_IPV6 = re.compile(r"\[([0-9A-Fa-f:.]{2,45})\]")
_DIGITS = re.compile(r"[0-9]{1,10}")


@attrs.frozen
class RedisURL:
    """A parsed Redis URL. Its repr and :attr:`where` never show the password."""

    host: str
    port: int = DEFAULT_PORT
    db: int = 0
    username: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    tls: bool = False

    @property
    def where(self) -> str:
        """``host:port`` for messages (``[::1]:6379`` for IPv6)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_redis_url(url: str) -> RedisURL:
    """Parse ``url``.

    Raises:
        ValueError: not a redis URL we can use; the message never contains the password.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("redis", "rediss"):
        raise ValueError("expected a redis://host:port/db or rediss:// URL")
    if "?" in rest or "#" in rest:
        raise ValueError(
            "a redis URL takes no query string or fragment (percent-encode ? and # in a password)"
        )
    userinfo, at, hostpart = rest.rpartition("@")
    if not at:
        userinfo, hostpart = "", rest
    hostport, slash, path = hostpart.partition("/")
    host, port = _host_port(hostport)
    username, password = _credentials(userinfo) if at else (None, None)
    return RedisURL(
        host=host,
        port=port,
        db=_db(path) if slash else 0,
        username=username,
        password=password,
        tls=scheme.lower() == "rediss",
    )


def _host_port(text: str) -> tuple[str, int]:
    if text.startswith("["):
        end = text.find("]")
        host_text, port_text = text[: end + 1], text[end + 1 :]
        if end < 0 or not _IPV6.fullmatch(host_text):
            raise ValueError("a redis URL's IPv6 host must be [address]")
        host = host_text[1:-1]
    else:
        host, colon, port_text = text.partition(":")
        port_text = colon + port_text
        if not _HOST_NAME.fullmatch(host):
            raise ValueError("a redis URL needs a host name or address (letters, digits, . - _)")
    if not port_text:
        return host, DEFAULT_PORT
    digits = port_text[1:]
    if not port_text.startswith(":") or not _DIGITS.fullmatch(digits):
        raise ValueError("a redis URL's port must be digits after the host's colon")
    port = int(digits)
    if not 1 <= port <= 65535:
        raise ValueError(f"a redis URL's port must be 1-65535, got {port}")
    return host, port


def _credentials(userinfo: str) -> tuple[str | None, str | None]:
    user, colon, password = userinfo.partition(":")
    try:
        username = unquote(user, errors="strict") if user else None
        secret = unquote(password, errors="strict") if colon else None
    except UnicodeDecodeError:
        raise ValueError(
            "a redis URL's user or password is not valid percent-encoded UTF-8"
        ) from None
    return username, secret


def _db(path: str) -> int:
    if path == "":
        return 0
    if not _DIGITS.fullmatch(path):
        raise ValueError("a redis URL's path is a database number (redis://host:6379/0)")
    return int(path)


def redis_url_problem(url: str) -> str | None:
    """What is wrong with ``url`` (for the settings check), or None; never the password."""
    try:
        parse_redis_url(url)
    except ValueError as exc:
        return str(exc)
    return None
