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

import re
from typing import TYPE_CHECKING, Any

import attrs

from gateway.errors import BadRequest, ModelNotFound, NotFound, echo
from gateway.transformers.model import ModelEntry, Transformer

if TYPE_CHECKING:
    from gateway.transformers.registry import Registry

__all__ = [
    "GEMINI_MODEL_METHODS",
    "MAX_MODEL_CHARS",
    "Target",
    "check_model_name",
    "gemini_model",
    "get_model",
    "list_gemini_models",
    "list_models",
    "route",
    "split_gemini_target",
]

#: Longest model name accepted (real ones are well under 100 characters).
MAX_MODEL_CHARS = 256
#: C0 controls, DEL and C1 controls: never part of a model name, and CR/LF/NUL in one
#: could split a header or a log line.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def check_model_name(model: str) -> str:
    """``model`` if it is a usable model name, else a 400 that says what is wrong.

    Every endpoint that takes a model (the three front ends, ``/v1/models/{id}``)
    checks it here before routing, logging or echoing it.
    """
    if len(model) > MAX_MODEL_CHARS:
        raise BadRequest(
            f"The model name is {len(model)} characters long; "
            f"this gateway accepts at most {MAX_MODEL_CHARS}."
        )
    bad = _CONTROL.search(model)
    if bad:
        raise BadRequest(
            f"The model name holds a control character (U+{ord(bad.group()):04X}) "
            f"at position {bad.start()}; remove it."
        )
    return model


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

    Raises BadRequest for a name :func:`check_model_name` refuses.

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


#: What a Gemini client may call on every model this gateway lists (the Gemini front end's
#: methods; ``supportedGenerationMethods`` in the Gemini list format).
GEMINI_MODEL_METHODS = ("generateContent", "streamGenerateContent", "countTokens")


def _gemini_model_object(model_id: str, owner: str, entry: ModelEntry | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": f"models/{model_id}",
        "displayName": model_id,
        "description": f"Served through the gateway by provider {owner!r}.",
        "supportedGenerationMethods": list(GEMINI_MODEL_METHODS),
    }
    if entry is not None and entry.max_tokens is not None:
        out["outputTokenLimit"] = entry.max_tokens
    return out


def list_gemini_models(registry: Registry) -> list[dict[str, Any]]:
    """Every alias once, as Gemini ``Model`` objects (``GET /v1beta/models``' ``models``).

    The same names, in the same order, as :func:`list_models`: a Gemini client sees what
    an OpenAI client sees, named ``models/<alias>`` as the Gemini API names its models.
    """
    return [
        _gemini_model_object(alias, names[0], registry.transformers[names[0]].models.get(alias))
        for alias, names in registry.aliases.items()
    ]


def gemini_model(registry: Registry, model_id: str) -> dict[str, Any] | None:
    """The Gemini ``Model`` for ``GET /v1beta/models/{model_id}``, or None (404).

    Like :func:`get_model`: a listed alias, or any name that routes somewhere.
    """
    names = registry.aliases.get(model_id)
    if names:
        entry = registry.transformers[names[0]].models.get(model_id)
        return _gemini_model_object(model_id, names[0], entry)
    try:
        first = route(model_id, registry)[0]
    except ModelNotFound:
        return None
    return _gemini_model_object(model_id, first.transformer.name, first.entry)


def split_gemini_target(rest: str) -> tuple[str, str]:
    """Split the part of a Gemini path after ``models/`` into (model, method).

    The model may itself hold ``/`` and ``:``; the method is what follows the
    last colon: ``"openrouter/qwen2.5:7b:generateContent"`` gives
    ``("openrouter/qwen2.5:7b", "generateContent")``.

    Raises:
        NotFound: there is no ``:method``, or no model before it.
    """
    model, colon, method = rest.rpartition(":")
    if not colon or not model or not method:
        raise NotFound(
            f"Unknown path {echo('models/' + rest)}: expected models/{{model}}:{{method}}, "
            "e.g. models/gemini-2.5-flash:generateContent."
        )
    return model, method
