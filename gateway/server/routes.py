"""Pure request routing: ``(method, path) -> (Route, params)``.

Routes are literal paths, or a literal prefix followed by one catch-all
parameter ``{name:path}`` that takes the rest of the path, slashes and colons
included (Gemini model names such as ``openrouter/qwen2.5:7b:generateContent``).
Literal routes win over prefixes; among prefixes the longest wins. A path
that exists under another method is a 405 with ``Allow``; otherwise 404.
HEAD is served by every GET route (the connection sends the head only) and
is a 405 on the others (RFC 9110 section 9.3.2).
A route may name the dialect its errors are worded in (gateway.server.dialect);
one that names none speaks the server's default. A route marked ``websocket``
answers WebSocket upgrades only (gateway.server.websocket).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import attrs

from gateway.errors import MethodNotAllowed, NotFound, echo

if TYPE_CHECKING:
    from gateway.server.dialect import Dialect
    from gateway.server.exchange import Exchange

__all__ = ["Handler", "Route", "Router"]

Handler = Callable[["Exchange"], Awaitable[None]]


@attrs.frozen
class Route:
    """One endpoint.

    Attributes:
        method: HTTP method, upper case.
        pattern: ``/literal`` or ``/prefix/{name:path}``.
        handler: the coroutine function answering it.
        dialect: how its errors are worded (None: the server's default dialect).
        watch_disconnect: run a watchdog that cancels the handler when the
            client leaves (for handlers that wait on providers).
        websocket: the route answers WebSocket upgrades (RFC 6455) only: its
            handler finds ``ex.upgrade`` to accept with (gateway.server.websocket);
            a plain request gets 426.
    """

    method: str
    pattern: str
    handler: Handler
    dialect: Dialect | None = None
    watch_disconnect: bool = False
    websocket: bool = False

    @property
    def prefix(self) -> str | None:
        head, brace, _ = self.pattern.partition("{")
        return head if brace else None

    @property
    def param(self) -> str | None:
        _, brace, rest = self.pattern.partition("{")
        return rest.split(":", 1)[0].rstrip("}") if brace else None


class Router:
    """An immutable table of routes, built once at start-up."""

    def __init__(self, routes: list[Route]) -> None:
        self._exact: dict[str, dict[str, Route]] = {}
        self._prefixed: list[Route] = []
        for route in routes:
            if route.prefix is None:
                self._exact.setdefault(route.pattern, {})[route.method] = route
            else:
                self._prefixed.append(route)
        self._prefixed.sort(key=lambda r: len(r.prefix or ""), reverse=True)

    def match(self, method: str, path: str) -> tuple[Route, dict[str, Any]]:
        """The route for ``method`` and ``path`` and its parameters.

        Raises:
            NotFound: nothing serves this path.
            MethodNotAllowed: the path exists under other methods (``allowed``;
                HEAD wherever GET is).
        """
        if method == "HEAD":
            try:
                return self.match("GET", path)
            except MethodNotAllowed as exc:
                raise MethodNotAllowed(
                    f"HEAD is not allowed on {path}; use {', '.join(exc.allowed)}.",
                    allowed=exc.allowed,
                ) from None
        by_method = self._exact.get(path)
        if by_method is not None:
            route = by_method.get(method)
            if route is not None:
                return route, {}
        allowed = set(by_method or ())
        for route in self._prefixed:
            prefix = route.prefix
            assert prefix is not None
            if path.startswith(prefix) and len(path) > len(prefix):
                if route.method == method:
                    param = route.param
                    assert param is not None  # a prefix route has its parameter
                    return route, {param: path[len(prefix) :]}
                allowed.add(route.method)
        if allowed:
            if "GET" in allowed:
                allowed.add("HEAD")
            raise MethodNotAllowed(
                f"{echo(method, quote=False)} is not allowed on {echo(path, quote=False)}; "
                f"use {', '.join(sorted(allowed))}.",
                allowed=tuple(sorted(allowed)),
            )
        raise NotFound(
            f"There is no endpoint at {echo(path, quote=False)}; "
            "see the gateway's README for its API."
        )
