"""Tests for gateway.transformers.assemble: cross-file rules and previous good versions."""

from __future__ import annotations

import json
from typing import Any

from gateway.transformers.assemble import assemble
from gateway.transformers.load import LoadedFile
from gateway.transformers.parse import parse_transformer


def _raw(data: object) -> bytes:
    return json.dumps(data).encode()


def _mock(name: str, source: str, **kw: Any) -> LoadedFile:
    data = {"format": "mock", "name": name, **kw}
    return LoadedFile(source, parse_transformer(_raw(data), source, {}))


def test_assemble_keeps_previous_good_version_of_failed_file() -> None:
    old_a = _mock("a", "a.json").transformer
    assert old_a is not None
    broken = LoadedFile("a.json", None, ("a.json: weight: must be a number greater than 0",))
    result = assemble([broken, _mock("b", "b.json")], {"a.json": old_a})
    assert [t.name for t in result.serving.values()] == ["a", "b"]
    assert result.serving["a.json"] is old_a
    assert dict(result.problems) == {"a.json": broken.problems}


def test_assemble_later_file_loses_a_clash_and_falls_back() -> None:
    previous_b = _mock("bee", "b.json").transformer
    assert previous_b is not None
    result = assemble(
        [_mock("b", "b.json", default=True), _mock("a", "a.json", default=True)],
        {"b.json": previous_b},
    )
    assert result.serving["a.json"].name == "a"
    assert result.serving["b.json"] is previous_b  # the new version clashed; the old one fits
    assert dict(result.problems) == {
        "b.json": ("b.json: default: a.json is already the default provider",)
    }


def test_assemble_drops_a_file_whose_versions_all_clash() -> None:
    previous_b = _mock("a", "b.json").transformer
    assert previous_b is not None
    result = assemble([_mock("a", "a.json"), _mock("a", "b.json")], {"b.json": previous_b})
    assert list(result.serving) == ["a.json"]
    assert dict(result.problems) == {"b.json": ("b.json: name: 'a' is already used by a.json",)}
