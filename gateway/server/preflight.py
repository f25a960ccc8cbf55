"""The route that answers a CORS preflight, on any path a route serves (see cors.py).

A preflight is an ``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``.
No route serves ``OPTIONS``, so the router refuses it: a 405 for a path that
exists under other methods (the methods are in the refusal), a 404 otherwise.
When CORS is on, the connection asks :func:`preflight_route` for a route before
it answers the refusal: a preflight on a path that exists gets a route whose
handler answers 204 with the preflight headers; anything else keeps its 404 or
405. The handler runs like any other (the body is read, the access line and the
observer see the request), but it is the server's own: no client key is asked
for and nothing reaches the app's handlers or a provider.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING

from gateway.errors import Forbidden, GatewayError, MethodNotAllowed, echo
from gateway.server.cors import preflight_headers
from gateway.server.routes import Route

if TYPE_CHECKING:
    from gateway.server.cors import CorsPolicy
    from gateway.server.dialect import DialectForPath
    from gateway.server.exchange import Exchange, Request

__all__ = ["preflight_route"]


def preflight_route(
    cors: CorsPolicy, request: Request, error: GatewayError, dialect_for_path: DialectForPath
) -> Route | None:
    """The route answering ``request`` if it is a preflight on a path that exists, else None.

    Args:
        cors: the policy.
        request: the request the router refused.
        error: the router's refusal (:class:`~gateway.errors.MethodNotAllowed` names the
            path's methods; a :class:`~gateway.errors.NotFound` path has none).
        dialect_for_path: words a refusal (an origin not allowed) in the path's language.
    """
    if (
        request.method != "OPTIONS"
        or not isinstance(error, MethodNotAllowed)
        or request.header(b"origin") is None
        or request.header(b"access-control-request-method") is None
    ):
        return None
    handler = partial(_answer, cors, methods=error.allowed)
    return Route("OPTIONS", request.path, handler, dialect_for_path(request.path))


async def _answer(cors: CorsPolicy, ex: Exchange, *, methods: Sequence[str]) -> None:
    """204 with the preflight headers; 403 for an origin the settings do not allow."""
    origin = (ex.request.header(b"origin") or b"").decode("latin-1")
    if not cors.allows(origin):
        raise Forbidden(
            f"The origin {echo(origin)} may not call this gateway from a browser; "
            "add it to the gateway's [cors] allow_origins."
        )
    asked = ex.request.header(b"access-control-request-headers") or b""
    await ex.respond(204, b"", content_type=b"", headers=preflight_headers(asked, methods))
