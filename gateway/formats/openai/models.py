"""``GET /v1/models`` and ``GET /v1/models/{id}``: the routable models in OpenAI's list format.

Each alias is listed once by the name a client sends (design.md, "Front-end
endpoints"), owned by its provider (the first in file order when several share
it); wildcard entries are not listed. A name that is not listed but routes
somewhere (through a provider prefix or the default provider) is still found
by ``GET /v1/models/{id}``, owned by the provider it routes to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.catalog import CatalogModel, check_model_name
from gateway.errors import ModelNotFound

if TYPE_CHECKING:
    from gateway.catalog import Catalog
    from gateway.frontends import ClientRequest

__all__ = ["answer_model", "answer_models", "get_model", "list_models"]


def _model_object(model: CatalogModel) -> dict[str, Any]:
    return {"id": model.id, "object": "model", "created": model.created, "owned_by": model.owner}


def list_models(catalog: Catalog) -> list[dict[str, Any]]:
    """Every alias once, as OpenAI model objects (``GET /v1/models``'s ``data``).

    An alias several providers share is owned by the first in file order;
    wildcard entries are not listed.
    """
    return [_model_object(model) for model in catalog.listed()]


def get_model(catalog: Catalog, model_id: str) -> dict[str, Any] | None:
    """The model object for ``GET /v1/models/{model_id}``, or None (404).

    Raises BadRequest for a name :func:`~gateway.catalog.check_model_name` refuses.

    A listed alias gives its listed object; any other routable name (through
    a provider prefix or the default provider) gives an object owned by the
    provider it routes to.
    """
    check_model_name(model_id)
    found = catalog.find(model_id)
    return None if found is None else _model_object(found)


def answer_models(request: ClientRequest, catalog: Catalog) -> dict[str, Any]:
    """GET /v1/models."""
    return {"object": "list", "data": list_models(catalog)}


def answer_model(request: ClientRequest, catalog: Catalog) -> dict[str, Any]:
    """GET /v1/models/{model}: the model, or a 404 in OpenAI's format."""
    model_id = request.params["model"]
    found = get_model(catalog, model_id)
    if found is None:
        raise ModelNotFound(model_id)
    return found
