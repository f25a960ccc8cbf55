"""The client-facing endpoints: read a request of one wire format into a :class:`Call`.

Bodies are read leniently (design.md): fields the gateway does not know pass
through untouched; only what it needs and cannot find is a 400 (a body that
is not a JSON object, no ``model``, no ``messages`` / ``contents``), and the
message says what to fix. The route's format decides the error body's shape.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from gateway.call import Call
from gateway.errors import BadRequest, NotFound, echo
from gateway.routing import check_model_name, split_gemini_target

if TYPE_CHECKING:
    from gateway.server.connection import Exchange

__all__ = ["anthropic_call", "gemini_call", "openai_call", "parse_json_object"]

GEMINI_METHODS = {"generateContent": False, "streamGenerateContent": True}


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object, or a 400 that says what is wrong with it."""
    if not raw:
        raise BadRequest("The request body is empty; send a JSON object.")
    try:
        body = json.loads(raw)
    except UnicodeDecodeError:
        raise BadRequest("The request body is not UTF-8 text; send a JSON object.") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"The request body is not valid JSON: {exc.msg} at line {exc.lineno} "
            f"column {exc.colno}."
        ) from None
    if not isinstance(body, dict):
        raise BadRequest(f"The request body must be a JSON object, not {type(body).__name__}.")
    return body


def _require(body: dict[str, Any], field: str, kind: type, what: str) -> Any:
    value = body.get(field)
    if value is None:
        raise BadRequest(f"The request needs {field!r} ({what}).")
    if not isinstance(value, kind) or (kind is str and not value):
        raise BadRequest(f"{field!r} must be {what}.")
    return value


def openai_call(ex: Exchange) -> Call:
    """POST /v1/chat/completions."""
    body = parse_json_object(ex.request.body)
    model = check_model_name(_require(body, "model", str, "a model name string"))
    _require(body, "messages", list, "a list of messages")
    return Call("openai", "chat", model, bool(body.get("stream")), body, len(ex.request.body))


def anthropic_call(ex: Exchange, *, count_tokens: bool = False) -> Call:
    """POST /v1/messages and /v1/messages/count_tokens."""
    body = parse_json_object(ex.request.body)
    model = check_model_name(_require(body, "model", str, "a model name string"))
    _require(body, "messages", list, "a list of messages")
    if count_tokens:
        return Call("anthropic", "count_tokens", model, False, body, len(ex.request.body))
    size = len(ex.request.body)
    return Call("anthropic", "messages", model, bool(body.get("stream")), body, size)


def gemini_call(ex: Exchange) -> Call:
    """POST /v1beta/models/{model}:{method} (and the same under /v1/models/)."""
    model, method = split_gemini_target(ex.request.params["rest"])
    if method not in GEMINI_METHODS:
        raise NotFound(
            f"Unknown method {echo(method)}; this gateway serves "
            + " and ".join(sorted(GEMINI_METHODS))
            + "."
        )
    check_model_name(model)
    body = parse_json_object(ex.request.body)
    _require(body, "contents", list, "a list of contents")
    return Call("gemini", "generate", model, GEMINI_METHODS[method], body, len(ex.request.body))
