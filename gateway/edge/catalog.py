"""The model lists as one client key sees them: only the models it may use."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from gateway.catalog import Catalog, CatalogModel

if TYPE_CHECKING:
    from gateway.edge.clientkeys import ClientKey

__all__ = ["KeyCatalog"]


class KeyCatalog:
    """``inner`` with every model ``key`` may not use left out (not found, as if absent)."""

    def __init__(self, inner: Catalog, key: ClientKey) -> None:
        self._inner = inner
        self._key = key

    def listed(self) -> Sequence[CatalogModel]:
        return [model for model in self._inner.listed() if self._key.allows(model.id)]

    def find(self, model_id: str) -> CatalogModel | None:
        if not self._key.allows(model_id):
            return None
        return self._inner.find(model_id)
