"""The Anthropic front end: ``POST /v1/messages`` and ``/v1/messages/count_tokens``.

Lenient as every front end (gateway.frontends): only a body that is not a JSON
object, no ``model`` string or no ``messages`` list is a 400.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.call import Call
from gateway.catalog import check_model_name
from gateway.formats.anthropic.wire import NAME
from gateway.frontends import parse_json_object, require

if TYPE_CHECKING:
    from gateway.frontends import ClientRequest

__all__ = ["read_count_tokens", "read_messages"]


def _read(request: ClientRequest, op: str) -> Call:
    body = parse_json_object(request.body, request.max_json_depth)
    model = check_model_name(require(body, "model", str, "a model name string"))
    require(body, "messages", list, "a list of messages")
    stream = op != "count_tokens" and bool(body.get("stream"))
    return Call(NAME, op, model, stream, body, len(request.body))


def read_messages(request: ClientRequest) -> Call:
    """POST /v1/messages."""
    return _read(request, "messages")


def read_count_tokens(request: ClientRequest) -> Call:
    """POST /v1/messages/count_tokens (never a stream)."""
    return _read(request, "count_tokens")
