"""Tests for gateway.transformers.load: one outcome per file, never an exception for a bad one."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.transformers.load import LoadedFile, load_directory, load_file


def test_one_outcome_per_file_by_name(tmp_path: Path) -> None:
    (tmp_path / "b.json").write_bytes(b'{"format": "mock", "weight": 0}')
    (tmp_path / "a.json").write_bytes(b'{"format": "mock"}')
    a, b = load_directory(tmp_path, {})
    assert a.file == "a.json"
    assert a.transformer is not None
    assert a.transformer.name == "a"
    assert a.problems == ()
    assert b == LoadedFile("b.json", None, ("b.json: weight: must be a number greater than 0",))


def test_an_unreadable_file_is_an_outcome(tmp_path: Path) -> None:
    (tmp_path / "gone.json").symlink_to(tmp_path / "nowhere.json")
    assert load_file(tmp_path / "gone.json", {}) == LoadedFile(
        "gone.json", None, ("gone.json: cannot read (No such file or directory)",)
    )


def test_a_file_over_the_cap_is_not_parsed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gateway.transformers.files.MAX_FILE_BYTES", 8)
    (tmp_path / "big.json").write_bytes(b'{"format": "mock"}')
    assert load_file(tmp_path / "big.json", {}).problems == ("big.json: larger than 8 bytes",)


def test_an_unlistable_directory_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_directory(tmp_path / "nope", {})
