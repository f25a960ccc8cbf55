"""Tests for gateway.check: the check command's problems and warnings over a directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.check import check_directory
from gateway.transformers.files import list_transformer_files

SHIPPED = Path(__file__).resolve().parents[1] / "transformers"


def _raw(data: object) -> bytes:
    return json.dumps(data).encode()


def _write(directory: Path, name: str, data: object) -> None:
    (directory / name).write_bytes(data if isinstance(data, bytes) else _raw(data))


def test_shipped_transformers_pass_check() -> None:
    problems, warnings = check_directory(SHIPPED, {})
    assert problems == []
    names = set(list_transformer_files(SHIPPED))
    assert names == {
        f"{n}.json"
        for n in (
            "openai",
            "anthropic",
            "gemini",
            "openrouter",
            "groq",
            "deepseek",
            "ollama",
            "mock",
        )
    }
    # Without keys set, every keyed provider is a warning, never a problem.
    assert "openai.json: keys: OPENAI_API_KEY is not set" in warnings
    assert not any(w.startswith(("ollama.json", "mock.json")) for w in warnings)


def test_shipped_transformers_with_keys_set_have_no_warnings() -> None:
    env = {
        f"{n}_API_KEY": "k"
        for n in ("OPENAI", "ANTHROPIC", "GEMINI", "OPENROUTER", "GROQ", "DEEPSEEK")
    }
    assert check_directory(SHIPPED, env) == ([], [])


def test_check_directory_cross_file_problems(tmp_path: Path) -> None:
    _write(tmp_path, "a.json", {"format": "mock", "name": "same", "default": True})
    _write(tmp_path, "b.json", {"format": "mock", "name": "same"})
    _write(tmp_path, "c.json", {"format": "mock", "default": True})
    _write(tmp_path, "d.json", {"format": "mock", "weight": 0})
    (tmp_path / ".#a.json").write_bytes(b"editor lock file")  # hidden: ignored
    (tmp_path / "notes.txt").write_bytes(b"not a transformer")
    problems, warnings = check_directory(tmp_path, {})
    assert problems == [
        "b.json: name: 'same' is already used by a.json",
        "c.json: default: a.json is already the default provider",
        "d.json: weight: must be a number greater than 0",
    ]
    assert warnings == []


def test_check_directory_warnings(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "openai.json",
        {
            "format": "openai",
            "base_url": "https://x",
            "keys": ["${OPENAI_API_KEY}", "${OPENAI_API_KEY_2}"],
            "models": {"fast": {"model": "m", "fallbacks": ["mock/any", "nowhere", "slow"]}},
        },
    )
    _write(tmp_path, "one.json", {"format": "openai", "base_url": "https://x", "keys": ["${ONE}"]})
    _write(tmp_path, "lit.json", {"format": "openai", "base_url": "https://x", "keys": [""]})
    _write(tmp_path, "tls.json", {"format": "mock", "tls_verify": str(tmp_path / "missing.pem")})
    _write(tmp_path, "mock.json", {"format": "mock", "models": {"slow": "s", "*": "*"}})
    problems, warnings = check_directory(tmp_path, {})
    assert problems == []
    assert warnings == [
        "lit.json: keys: every key is empty",
        "one.json: keys: ONE is not set",
        "openai.json: keys: none of OPENAI_API_KEY, OPENAI_API_KEY_2 is set",
        "openai.json: models.fast.fallbacks[1]: 'nowhere' does not route to any provider",
        "tls.json: tls_verify: the CA bundle file does not exist",
    ]


def test_check_directory_missing_and_empty(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    assert check_directory(missing, {}) == (
        [f"{missing}: cannot read the directory (No such file or directory)"],
        [],
    )
    assert check_directory(tmp_path, {}) == ([], [f"{tmp_path}: no *.json transformer files"])


def test_check_directory_unreadable_file(tmp_path: Path) -> None:
    (tmp_path / "dangling.json").symlink_to(tmp_path / "gone.json")
    problems, _ = check_directory(tmp_path, {})
    assert problems == ["dangling.json: cannot read (No such file or directory)"]


def test_oversized_file_is_not_read_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gateway.transformers.files.MAX_FILE_BYTES", 64)
    _write(tmp_path, "big.json", {"format": "mock", "models": {f"m{i}": "x" for i in range(20)}})
    _write(tmp_path, "small.json", {"format": "mock"})
    problems, _ = check_directory(tmp_path, {})
    assert problems == ["big.json: larger than 64 bytes"]
