"""Tests for gateway.transformers.schema: the file as written, read by the strict converter."""

from __future__ import annotations

import cattrs
import pytest

from gateway.transformers.model import ModelEntry
from gateway.transformers.schema import TransformerFile, make_converter


def test_converter_is_strict_and_fresh() -> None:
    first, second = make_converter(), make_converter()
    assert first is not second  # a factory, not a shared global
    with pytest.raises(cattrs.ClassValidationError):
        first.structure({"format": "mock", "weight": "1"}, TransformerFile)


def test_a_model_entry_is_a_string_or_an_object() -> None:
    spec = make_converter().structure(
        {"format": "mock", "models": {"a": "up-a", "b": {"model": "up-b", "max_tokens": 5}}},
        TransformerFile,
    )
    assert spec.models == {"a": ModelEntry("up-a"), "b": ModelEntry("up-b", max_tokens=5)}


def test_the_file_is_kept_as_written() -> None:
    spec = make_converter().structure(
        {"format": "openai", "keys": ["${K}"], "headers": {"X": "${H}"}}, TransformerFile
    )
    assert spec.keys == ("${K}",)  # expansion is stage 3, not the converter's
    assert spec.headers == {"X": "${H}"}
    assert spec.name is None
