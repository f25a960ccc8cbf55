"""The OpenAI front end: ``POST /v1/chat/completions`` read into a :class:`Call`.

Lenient as every front end (gateway.frontends): only a body that is not a JSON
object, no ``model`` string or no ``messages`` list is a 400.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.call import Call
from gateway.catalog import check_model_name
from gateway.formats.openai.wire import NAME
from gateway.frontends import parse_json_object, require

if TYPE_CHECKING:
    from gateway.frontends import ClientRequest

__all__ = ["read_chat"]


def read_chat(request: ClientRequest) -> Call:
    """POST /v1/chat/completions."""
    body = parse_json_object(request.body, request.max_json_depth)
    model = check_model_name(require(body, "model", str, "a model name string"))
    require(body, "messages", list, "a list of messages")
    return Call(NAME, "chat", model, bool(body.get("stream")), body, len(request.body))
