"""Tests for gateway.routing: design.md "Routing", rule by rule, table-driven.

The model lists (``GET /v1/models``) are checked here too, on the same registries
(gateway.formats.openai.models).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from gateway.errors import ModelNotFound
from gateway.formats.openai.models import get_model, list_models
from gateway.routing import RegistryCatalog, Target, route
from gateway.transformers.model import ModelEntry, Transformer
from gateway.transformers.registry import Registry, make_registry


def _t(name: str, models: dict[str, Any], **kw: Any) -> Transformer:
    entries = {k: v if isinstance(v, ModelEntry) else ModelEntry(v) for k, v in models.items()}
    return Transformer(
        name=name,
        format=kw.pop("format", "openai"),
        base_url="https://example.invalid",
        models=entries,
        source=f"{name}.json",
        **kw,
    )


OPENAI = _t(
    "openai",
    {
        "gpt-4o": "gpt-4o-2024-08-06",
        "fast": ModelEntry("gpt-4o-mini", ("anthropic/claude-haiku-4-5", "slow"), 16384),
        "shared": "gpt-shared",
        "*": "*",
    },
)
ANTHROPIC = _t(
    "anthropic",
    {"claude-haiku-4-5": "claude-haiku-4-5-20251001", "shared": "claude-shared", "*": "*"},
    format="anthropic",
)
OPENROUTER = _t(
    "openrouter",
    {
        "anthropic/claude-sonnet-4-5": "anthropic/claude-sonnet-4.5",
        "slow": ModelEntry("meta/llama", ("fast",)),  # fast -> slow -> fast: no cycle
        "*": "*",
    },
)
FIXED = _t("fixed", {"*": "always-this"})  # "*": "x" maps any name under its prefix
NOSTAR = _t("nostar", {"only": "only-upstream"})
VLLM = _t("vllm", {"*": "*"}, default=True)

REGISTRY = make_registry([OPENAI, ANTHROPIC, OPENROUTER, FIXED, NOSTAR, VLLM])
NO_DEFAULT = make_registry([OPENAI, ANTHROPIC, OPENROUTER, FIXED, NOSTAR])


def _pairs(targets: tuple[Target, ...]) -> list[tuple[str, str]]:
    return [(t.transformer.name, t.upstream_model) for t in targets]


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        # 1. exact alias
        ("gpt-4o", [("openai", "gpt-4o-2024-08-06")]),
        ("claude-haiku-4-5", [("anthropic", "claude-haiku-4-5-20251001")]),
        # an exact alias wins over the provider prefix it looks like
        ("anthropic/claude-sonnet-4-5", [("openrouter", "anthropic/claude-sonnet-4.5")]),
        # 2. provider/rest: rest looked up in the provider's models, then "*"
        ("openai/gpt-4o", [("openai", "gpt-4o-2024-08-06")]),
        ("openai/gpt-5-pro", [("openai", "gpt-5-pro")]),
        ("anthropic/claude-opus-4-5", [("anthropic", "claude-opus-4-5")]),
        ("openrouter/qwen/qwen3-coder", [("openrouter", "qwen/qwen3-coder")]),
        ("openrouter/qwen2.5:7b", [("openrouter", "qwen2.5:7b")]),
        ("fixed/anything", [("fixed", "always-this")]),
        ("nostar/only", [("nostar", "only-upstream")]),
        # 3. the default provider takes every other name through its "*" entry
        ("llama-3-70b", [("vllm", "llama-3-70b")]),
        ("nostar/other", [("vllm", "nostar/other")]),  # no "*" under nostar/
        ("meta-llama/Llama-3", [("vllm", "meta-llama/Llama-3")]),  # not a provider prefix
        ("openai/", [("vllm", "openai/")]),
    ],
)
def test_route_rules(model: str, expected: list[tuple[str, str]]) -> None:
    targets = route(model, REGISTRY)
    assert _pairs(targets) == expected
    assert all(t.alias == model for t in targets)


@pytest.mark.parametrize(
    "model", ["llama-3-70b", "nostar/other", "unknown/x", "*", "", "openai/*", "always-this"]
)
def test_route_not_found_without_default(model: str) -> None:
    with pytest.raises(ModelNotFound) as info:
        route(model, NO_DEFAULT)
    assert info.value.model == model
    assert info.value.status_hint == 404
    assert info.value.code == "model_not_found"


def test_wildcard_of_non_default_file_applies_only_under_its_prefix() -> None:
    registry = make_registry([OPENAI])
    with pytest.raises(ModelNotFound):
        route("gpt-5-pro", registry)
    assert _pairs(route("openai/gpt-5-pro", registry)) == [("openai", "gpt-5-pro")]


def test_default_with_mapping_wildcard_and_without_one() -> None:
    mapped = make_registry([_t("one", {"*": "the-model"}, default=True)])
    (target,) = route("whatever", mapped)
    assert (target.upstream_model, target.entry) == ("the-model", ModelEntry("the-model"))
    bare = make_registry([_t("bare", {"x": "y"}, default=True)])
    (target,) = route("whatever", bare)
    assert (target.upstream_model, target.entry) == ("whatever", None)


def test_target_carries_its_entry() -> None:
    (target, *_) = route("fast", REGISTRY)
    assert target.entry == ModelEntry("gpt-4o-mini", ("anthropic/claude-haiku-4-5", "slow"), 16384)
    assert target.transformer is OPENAI
    assert target.key == ("openai", "gpt-4o-mini")


def test_fallbacks_follow_in_order_one_level_deep() -> None:
    targets = route("fast", REGISTRY)
    assert _pairs(targets) == [
        ("openai", "gpt-4o-mini"),
        ("anthropic", "claude-haiku-4-5-20251001"),  # anthropic/ prefix, then its alias
        ("openrouter", "meta/llama"),  # "slow"; its own fallback "fast" is not followed
    ]
    assert [t.alias for t in targets] == ["fast", "anthropic/claude-haiku-4-5", "slow"]


def test_fallbacks_are_deduplicated_and_unroutable_ones_skipped() -> None:
    registry = make_registry(
        [
            _t("a", {"m": ModelEntry("up", ("a/up", "b/x", "nowhere", "b/x", "m")), "*": "*"}),
            _t("b", {"*": "*"}),
        ]
    )
    assert _pairs(route("m", registry)) == [("a", "up"), ("b", "x")]


def test_cycle_between_aliases_terminates() -> None:
    registry = make_registry(
        [_t("a", {"x": ModelEntry("ux", ("y",)), "y": ModelEntry("uy", ("x",))})]
    )
    assert _pairs(route("x", registry)) == [("a", "ux"), ("a", "uy")]
    assert _pairs(route("y", registry)) == [("a", "uy"), ("a", "ux")]


# -- several providers for one alias ---------------------------------------------------------


def test_shared_alias_round_robin_by_turn() -> None:
    firsts = [route("shared", REGISTRY, turn=turn)[0].transformer.name for turn in range(4)]
    assert firsts == ["openai", "anthropic", "openai", "anthropic"]
    assert _pairs(route("shared", REGISTRY, turn=1)) == [
        ("anthropic", "claude-shared"),
        ("openai", "gpt-shared"),  # the others still follow, as retries
    ]


def test_round_robin_rotation_of_three() -> None:
    registry = make_registry([_t(n, {"m": f"{n}-m"}) for n in ("a", "b", "c")])
    orders = [[t.transformer.name for t in route("m", registry, turn=i)] for i in range(3)]
    assert orders == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"]]


def test_weighted_share_and_smoothness() -> None:
    registry = make_registry([_t("big", {"m": "x"}, weight=3), _t("small", {"m": "y"}, weight=1.0)])
    firsts = [route("m", registry, turn=i)[0].transformer.name for i in range(8)]
    assert Counter(firsts) == {"big": 6, "small": 2}
    assert firsts[:4] == ["big", "big", "small", "big"]  # spread out, not in a run
    assert all(len(route("m", registry, turn=i)) == 2 for i in range(8))


def test_fractional_weights() -> None:
    registry = make_registry([_t("a", {"m": "x"}, weight=0.25), _t("b", {"m": "y"}, weight=0.5)])
    firsts = Counter(route("m", registry, turn=i)[0].transformer.name for i in range(300))
    assert firsts == {"a": 100, "b": 200}


# -- listing -----------------------------------------------------------------------------


def test_list_models() -> None:
    registry = make_registry([OPENAI, ANTHROPIC], loaded_at=1_700_000_000)
    assert list_models(RegistryCatalog(registry)) == [
        {"id": "gpt-4o", "object": "model", "created": 1_700_000_000, "owned_by": "openai"},
        {"id": "fast", "object": "model", "created": 1_700_000_000, "owned_by": "openai"},
        {"id": "shared", "object": "model", "created": 1_700_000_000, "owned_by": "openai"},
        {
            "id": "claude-haiku-4-5",
            "object": "model",
            "created": 1_700_000_000,
            "owned_by": "anthropic",
        },
    ]


def test_list_models_lists_each_alias_once_and_no_wildcards() -> None:
    ids = [m["id"] for m in list_models(RegistryCatalog(REGISTRY))]
    assert len(ids) == len(set(ids))
    assert "*" not in ids
    assert set(ids) == {
        "gpt-4o",
        "fast",
        "shared",
        "claude-haiku-4-5",
        "anthropic/claude-sonnet-4-5",
        "slow",
        "only",
    }


@pytest.mark.parametrize(
    ("registry", "model_id", "owner"),
    [
        (REGISTRY, "gpt-4o", "openai"),
        (REGISTRY, "shared", "openai"),
        (REGISTRY, "anthropic/claude-sonnet-4-5", "openrouter"),
        (REGISTRY, "openai/gpt-5-pro", "openai"),  # routable through a prefix
        (REGISTRY, "anything-at-all", "vllm"),  # routable through the default
        (NO_DEFAULT, "anything-at-all", None),
        (NO_DEFAULT, "nostar/other", None),
    ],
)
def test_get_model(registry: Registry, model_id: str, owner: str | None) -> None:
    found = get_model(RegistryCatalog(registry), model_id)
    if owner is None:
        assert found is None
    else:
        assert found == {"id": model_id, "object": "model", "created": 0, "owned_by": owner}


def test_empty_registry_routes_nothing() -> None:
    empty = Registry.empty()
    assert list_models(RegistryCatalog(empty)) == []
    with pytest.raises(ModelNotFound):
        route("gpt-4o", empty)
