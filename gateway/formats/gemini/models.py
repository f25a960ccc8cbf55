"""``GET /v1beta/models`` and ``GET /v1beta/models/{id}``: the models in Gemini's list format.

The same names, in the same order, as ``GET /v1/models``
(gateway.formats.openai.models), named ``models/<alias>`` as the Gemini API names
its models, each offering the methods of the Gemini front end. The list is
paged: ``pageSize`` (default :data:`PAGE_SIZE`, at most :data:`MAX_PAGE_SIZE`)
and ``pageToken``, an opaque offset (so a reload between pages can shift
entries).
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

from gateway.errors import BadRequest, MethodNotAllowed, ModelNotFound
from gateway.formats.gemini.frontend import METHODS
from gateway.frontends import query_params

if TYPE_CHECKING:
    from gateway.catalog import Catalog, CatalogModel
    from gateway.frontends import ClientRequest

__all__ = [
    "MAX_PAGE_SIZE",
    "MODEL_METHODS",
    "PAGE_SIZE",
    "answer_model",
    "answer_models",
    "gemini_model",
    "list_gemini_models",
    "list_page",
    "page_token",
]

#: What a Gemini client may call on every model this gateway lists (the Gemini front end's
#: methods; ``supportedGenerationMethods`` in the Gemini list format).
MODEL_METHODS = ("generateContent", "streamGenerateContent", "countTokens")
#: ``pageSize`` of ``GET /v1beta/models`` when the client gives none (Gemini's default).
PAGE_SIZE = 50
#: The largest ``pageSize`` honoured; larger ones are lowered to it (Gemini does the same).
MAX_PAGE_SIZE = 1000
_TOKEN_PREFIX = "gw1:"


def _model_object(model: CatalogModel) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": f"models/{model.id}",
        "displayName": model.id,
        "description": f"Served through the gateway by provider {model.owner!r}.",
        "supportedGenerationMethods": list(MODEL_METHODS),
    }
    if model.max_tokens is not None:
        out["outputTokenLimit"] = model.max_tokens
    return out


def list_gemini_models(catalog: Catalog) -> list[dict[str, Any]]:
    """Every alias once, as Gemini ``Model`` objects (``GET /v1beta/models``' ``models``)."""
    return [_model_object(model) for model in catalog.listed()]


def gemini_model(catalog: Catalog, model_id: str) -> dict[str, Any] | None:
    """The Gemini ``Model`` for ``GET /v1beta/models/{model_id}``, or None (404).

    A listed alias, or any name that routes somewhere.
    """
    found = catalog.find(model_id)
    return None if found is None else _model_object(found)


def page_token(offset: int) -> str:
    """The opaque ``nextPageToken`` for the page that starts at ``offset``."""
    return base64.urlsafe_b64encode(f"{_TOKEN_PREFIX}{offset}".encode()).decode().rstrip("=")


def list_page(request: ClientRequest) -> tuple[int, int]:
    """``(offset, page_size)`` of a ``GET /v1beta/models`` request (``pageSize``, ``pageToken``).

    No ``pageSize`` (or 0) means :data:`PAGE_SIZE`; larger than :data:`MAX_PAGE_SIZE`
    is lowered to it; negative or not a number is a 400. A ``pageToken`` must be one
    this gateway issued (:func:`page_token`).
    """
    query = query_params(request)
    raw_size = query.get("pageSize", "").strip()
    if not raw_size:
        size = 0
    elif raw_size.isascii() and raw_size.isdigit() and len(raw_size) <= 9:
        size = int(raw_size)
    else:
        raise BadRequest(
            f"pageSize must be a whole number from 0 to {MAX_PAGE_SIZE}, not {raw_size[:40]!r}."
        )
    size = min(size or PAGE_SIZE, MAX_PAGE_SIZE)
    token = query.get("pageToken", "")
    if not token:
        return 0, size
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        text = ""
    digits = text[len(_TOKEN_PREFIX) :]
    if not (text.startswith(_TOKEN_PREFIX) and digits.isdigit() and len(digits) <= 9):
        raise BadRequest(
            "pageToken is not one this gateway issued; send the nextPageToken of the "
            "previous page, or none for the first page."
        )
    return int(digits), size


def answer_models(request: ClientRequest, catalog: Catalog) -> dict[str, Any]:
    """Gemini's models.list: ``{"models": [...], "nextPageToken": ...}``, paged."""
    offset, size = list_page(request)
    models = list_gemini_models(catalog)
    body: dict[str, Any] = {"models": models[offset : offset + size]}
    if offset + size < len(models):
        body["nextPageToken"] = page_token(offset + size)
    return body


def answer_model(request: ClientRequest, catalog: Catalog) -> dict[str, Any]:
    """Gemini's models.get: ``GET /v1beta/models/{id}`` (``models/`` is the path's).

    A GET on a method path (``models/x:generateContent``) is a 405: use POST.
    """
    model_id = request.params["model"]
    _, colon, method = model_id.rpartition(":")
    if colon and method in METHODS:
        raise MethodNotAllowed(
            f"GET is not allowed on {request.path[:300]}; use POST.", allowed=("POST",)
        )
    found = gemini_model(catalog, model_id)
    if found is None:
        raise ModelNotFound(model_id)
    return found
