"""The Gemini front end: ``POST /v1beta/models/{model}:{method}`` read into a :class:`Call`.

The model and the method are in the path (also under ``/v1/models/``); the method
says whether the call streams. ``streamGenerateContent`` with ``alt=sse`` streams
server-sent events (what google-genai asks for); without ``alt``, or with
``alt=json`` (Gemini's default), one JSON array written element by element
(gateway.json_array); any other ``alt`` is a 400. Lenient as every front end
(gateway.frontends): only a body that is not a JSON object or has no
``contents`` list is a 400.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.call import Call
from gateway.catalog import check_model_name
from gateway.errors import BadRequest, NotFound, echo
from gateway.formats.gemini.wire import NAME, split_target
from gateway.frontends import parse_json_object, query_params, require

if TYPE_CHECKING:
    from gateway.frontends import ClientRequest

__all__ = ["METHODS", "read_call", "stream_alt", "wants_json_array"]

#: Gemini method -> whether it streams.
METHODS = {"generateContent": False, "streamGenerateContent": True, "countTokens": False}


def stream_alt(request: ClientRequest) -> str:
    """How a ``streamGenerateContent`` answer is framed: ``"sse"`` or ``"json"``.

    ``alt=sse`` asks for server-sent events (what google-genai sends); ``alt=json``,
    or no ``alt`` at all (Gemini's default), for one JSON array written element by
    element. Anything else is a 400 naming both.
    """
    query = query_params(request)
    alt = query.get("alt", query.get("$alt", "json"))
    if alt not in ("sse", "json"):
        raise BadRequest(
            f"Unsupported alt={alt[:40]!r}: use alt=sse (server-sent events) or alt=json "
            "(a JSON array, the default)."
        )
    return alt


def wants_json_array(request: ClientRequest) -> bool:
    """Whether a streaming call wants its stream as one JSON array (not ``alt=sse``)."""
    return stream_alt(request) == "json"


def read_call(request: ClientRequest) -> Call:
    """POST /v1beta/models/{model}:{method} (and the same under /v1/models/)."""
    model, method = split_target(request.params["rest"])
    if method not in METHODS:
        names = sorted(METHODS)
        raise NotFound(
            f"Unknown method {echo(method)}; this gateway serves "
            + ", ".join(names[:-1])
            + f" and {names[-1]}."
        )
    check_model_name(model)
    stream = METHODS[method]
    if stream:
        stream_alt(request)  # a 400 for an alt it cannot frame
    body = parse_json_object(request.body, request.max_json_depth)
    if method == "countTokens":
        if "contents" not in body and isinstance(body.get("generateContentRequest"), dict):
            require(body["generateContentRequest"], "contents", list, "a list of contents")
        else:
            require(body, "contents", list, "a list of contents")
        return Call(NAME, "count_tokens", model, False, body, len(request.body))
    require(body, "contents", list, "a list of contents")
    return Call(NAME, "generate", model, stream, body, len(request.body))
