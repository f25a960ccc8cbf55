"""``GET /v1/models`` and ``GET /v1/models/{id}``: the routable models in OpenAI's list format.

Each alias is listed once by the name a client sends (design.md, "Front-end
endpoints"), owned by its provider (the first in file order when several share
it); wildcard entries are not listed. A name that is not listed but routes
somewhere (through a provider prefix or the default provider) is still found
by ``GET /v1/models/{id}``, owned by the provider it routes to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.errors import ModelNotFound
from gateway.routing import check_model_name, route

if TYPE_CHECKING:
    from gateway.frontends import ClientRequest
    from gateway.transformers.registry import Registry

__all__ = ["answer_model", "answer_models", "get_model", "list_models"]


def _model_object(model_id: str, owner: str, created: int) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": created, "owned_by": owner}


def list_models(registry: Registry) -> list[dict[str, Any]]:
    """Every alias once, as OpenAI model objects (``GET /v1/models``'s ``data``).

    An alias several providers share is owned by the first in file order;
    wildcard entries are not listed.
    """
    return [
        _model_object(alias, names[0], registry.loaded_at)
        for alias, names in registry.aliases.items()
    ]


def get_model(registry: Registry, model_id: str) -> dict[str, Any] | None:
    """The model object for ``GET /v1/models/{model_id}``, or None (404).

    Raises BadRequest for a name :func:`~gateway.routing.check_model_name` refuses.

    A listed alias gives its listed object; any other routable name (through
    a provider prefix or the default provider) gives an object owned by the
    provider it routes to.
    """
    check_model_name(model_id)
    names = registry.aliases.get(model_id)
    if names:
        return _model_object(model_id, names[0], registry.loaded_at)
    try:
        targets = route(model_id, registry)
    except ModelNotFound:
        return None
    return _model_object(model_id, targets[0].transformer.name, registry.loaded_at)


def answer_models(request: ClientRequest, registry: Registry) -> dict[str, Any]:
    """GET /v1/models."""
    return {"object": "list", "data": list_models(registry)}


def answer_model(request: ClientRequest, registry: Registry) -> dict[str, Any]:
    """GET /v1/models/{model}: the model, or a 404 in OpenAI's format."""
    model_id = request.params["model"]
    found = get_model(registry, model_id)
    if found is None:
        raise ModelNotFound(model_id)
    return found
