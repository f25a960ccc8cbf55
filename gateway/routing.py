"""Model name -> ordered upstream targets (design.md, "Routing"). Pure: no I/O.

Theory of operation. For a model string ``M`` the primary targets come from
the first rule that matches:

1. ``M`` is an alias (a key other than ``"*"`` of some file's ``models``): every
   provider defining it, the first picked by ``turn`` from the alias's
   smooth weighted round-robin cycle (plain round-robin when the weights are
   equal), the others after it in file order, rotated to start after the
   chosen one. An exact alias always wins, so ``"anthropic/claude-sonnet-4-5"``
   can be an alias of an OpenRouter file.
2. ``M`` is ``provider/rest`` and a provider has that name: ``rest`` looked up
   in its ``models``, else its ``"*"`` entry (``"*": "*"`` passes ``rest``
   through, ``"*": "x"`` maps it to ``x``).
3. A provider has ``"default": true``: its ``"*"`` entry takes the whole of
   ``M`` (without a ``"*"`` entry it passes ``M`` through). A ``"*"`` in any
   other file applies only under that file's prefix (rule 2).
4. Otherwise :class:`~gateway.errors.ModelNotFound`.

Then come the ``fallbacks`` of the matched entries, in order, each routed by
the same rules. Fallbacks are followed one level deep (a fallback's own
fallbacks are not), so no chain of files can make a cycle, and a target
(provider and upstream model) appears once. A fallback that routes nowhere is
skipped (``python -m gateway check`` warns about it).

The caller owns ``turn``: a counter it increments per request, so the pure
function spreads the load without keeping state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from gateway.catalog import CatalogModel
from gateway.errors import ModelNotFound

if TYPE_CHECKING:
    # Types only: annotations need them, nothing here builds one.
    from gateway.transformers.model import ModelEntry, Transformer
    from gateway.transformers.registry import Registry

__all__ = ["RegistryCatalog", "Target", "route"]


@attrs.frozen
class Target:
    """One place a request can go.

    Attributes:
        transformer: the provider.
        upstream_model: the model name to send it.
        entry: the ``models`` entry that matched (its ``max_tokens`` applies);
            None when a default provider without a ``"*"`` entry passed the
            name through.
        alias: the model string this target was routed from: the client's
            model, or the fallback name for a fallback target.
    """

    transformer: Transformer
    upstream_model: str
    entry: ModelEntry | None
    alias: str

    @property
    def key(self) -> tuple[str, str]:
        """(provider name, upstream model): what makes two targets the same."""
        return (self.transformer.name, self.upstream_model)


def _by_alias(model: str, registry: Registry, turn: int) -> tuple[Target, ...]:
    names = registry.aliases.get(model, ())
    if len(names) > 1:
        schedule = registry.schedules[model]
        first = schedule[turn % len(schedule)]
        start = names.index(first)
        names = names[start:] + names[:start]
    targets = []
    for name in names:
        entry = registry.transformers[name].models[model]
        targets.append(Target(registry.transformers[name], entry.model, entry, model))
    return tuple(targets)


def _through_star(t: Transformer, name: str, alias: str) -> Target:
    star = t.models.get("*")
    upstream = name if star is None or star.model == "*" else star.model
    return Target(t, upstream, star, alias)


def _by_prefix(model: str, registry: Registry) -> Target | None:
    provider, slash, rest = model.partition("/")
    t = registry.transformers.get(provider)
    if not slash or t is None or not rest or rest == "*":
        return None
    entry = t.models.get(rest)
    if entry is not None:
        return Target(t, entry.model, entry, model)
    if "*" in t.models:
        return _through_star(t, rest, model)
    return None


def _primary(model: str, registry: Registry, turn: int) -> tuple[Target, ...]:
    if not model or model == "*":
        return ()
    targets = _by_alias(model, registry, turn)
    if targets:
        return targets
    target = _by_prefix(model, registry)
    if target is None and registry.default is not None:
        target = _through_star(registry.transformers[registry.default], model, model)
    return (target,) if target is not None else ()


def route(model: str, registry: Registry, *, turn: int = 0) -> tuple[Target, ...]:
    """The targets to try for ``model``, in order.

    Args:
        model: the model string the client sent.
        registry: the snapshot the request took at its start.
        turn: a per-request counter; picks the first of several providers
            that share an alias.

    Returns:
        The primary targets, then the fallback targets; never empty.

    Raises:
        ModelNotFound: no rule matches ``model``.
    """
    primary = _primary(model, registry, turn)
    if not primary:
        raise ModelNotFound(model)
    out = list(primary)
    seen = {t.key for t in out}
    fallbacks = dict.fromkeys(f for t in primary if t.entry for f in t.entry.fallbacks)
    for fallback in fallbacks:
        for target in _primary(fallback, registry, turn):
            if target.key not in seen:
                seen.add(target.key)
                out.append(target)
    return tuple(out)


class RegistryCatalog:
    """The :class:`~gateway.catalog.Catalog` of one registry snapshot.

    A listed alias is owned by the first provider defining it, in file order; any
    other name is found when it routes somewhere (a provider prefix, the default
    provider), owned by its first target.
    """

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def _model(self, model_id: str, owner: str, entry: ModelEntry | None) -> CatalogModel:
        limit = entry.max_tokens if entry is not None else None
        return CatalogModel(model_id, owner, self.registry.loaded_at, limit)

    def listed(self) -> list[CatalogModel]:
        transformers = self.registry.transformers
        return [
            self._model(alias, names[0], transformers[names[0]].models.get(alias))
            for alias, names in self.registry.aliases.items()
        ]

    def find(self, model_id: str) -> CatalogModel | None:
        names = self.registry.aliases.get(model_id)
        if names:
            entry = self.registry.transformers[names[0]].models.get(model_id)
            return self._model(model_id, names[0], entry)
        try:
            first = route(model_id, self.registry)[0]
        except ModelNotFound:
            return None
        return self._model(model_id, first.transformer.name, first.entry)
