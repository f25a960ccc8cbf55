"""Values that go into an upstream URL: each one exactly one path segment. Pure.

Why: a model name is chosen by the client, and the gateway sends it to a
provider *with the provider's key*. Put into a URL as it is, ``p/../../admin``
walks to another path of the provider's host (httpx, like every client,
removes dot segments), and ``x?key=INJECTED#`` rewrites the query and cuts
off ours. So every value that becomes part of an upstream URL goes through
:func:`path_segment`, which percent-encodes everything but RFC 3986's
unreserved characters (``/``, ``?``, ``#``, ``%``, ``:``, ``\\``, spaces and
non-ASCII included; a ``%2e%2e`` the client already encoded becomes
``%252e%252e``, a literal name, never a dot segment), and refuses a value
that is a dot segment on its own (``.`` or ``..``): no encoding makes those
safe for every server, since some decode ``%2e`` before resolving paths.

This is the one place that builds upstream URL paths from variable values:
:func:`gateway.proxy.upstream_request.upstream_url` uses it for the Gemini model, and any URL
the gateway builds later (a model-listing or count-tokens path) must go through it too.
A value that goes into a query (the realtime URL's ``?model=``,
gateway.proxy.realtime) is :func:`query_value`: the same encoding, so an ``&``,
``=`` or ``#`` in it cannot add a parameter or cut the query short.
"""

from __future__ import annotations

from urllib.parse import quote

from gateway.errors import BadRequest

__all__ = ["path_segment", "query_value"]


def path_segment(value: str, what: str = "model name") -> str:
    """``value`` percent-encoded as exactly one URL path segment.

    Args:
        value: any text (a model name, an id).
        what: how to name the value in an error message.

    Raises:
        BadRequest: ``value`` is empty, ``.`` or ``..``.
    """
    if value in ("", ".", ".."):
        raise BadRequest(
            f"The {what} {value!r} cannot be used in a provider URL; "
            "it must not be empty, '.' or '..'."
        )
    return quote(value, safe="")


def query_value(value: str, what: str = "model name") -> str:
    """``value`` percent-encoded as exactly one query parameter value.

    Everything but RFC 3986's unreserved characters is encoded, as in
    :func:`path_segment` (``&``, ``=``, ``#``, ``+``, ``/``, ``?``, ``%`` included).

    Raises:
        BadRequest: ``value`` is empty.
    """
    if not value:
        raise BadRequest(f"The {what} cannot be empty in a provider URL.")
    return quote(value, safe="")
