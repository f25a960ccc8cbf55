"""Tests for gateway.transformers.files: which entries count, and reading only regular files.

The hostile-directory cases through a real process are in tests/hardening/test_09_transformer_dir.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.transformers.files import NotRegularFile, list_transformer_files, read_regular_file


def test_only_visible_json_entries_sorted(tmp_path: Path) -> None:
    for name in ("b.json", "a.json", ".#a.json", "..data", "notes.txt", "c.json.bak"):
        (tmp_path / name).write_bytes(b"{}")
    assert list_transformer_files(tmp_path) == ["a.json", "b.json"]


def test_a_missing_directory_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        list_transformer_files(tmp_path / "nope")


@pytest.mark.parametrize(("limit", "expected"), [(100, b"0123456789"), (4, b"0123"), (0, b"")])
def test_reads_at_most_the_limit(tmp_path: Path, limit: int, expected: bytes) -> None:
    path = tmp_path / "x.json"
    path.write_bytes(b"0123456789")
    assert read_regular_file(path, limit) == expected


def test_links_are_followed(tmp_path: Path) -> None:
    (tmp_path / "real.json").write_bytes(b"{}")
    os.symlink("real.json", tmp_path / "link.json")
    assert read_regular_file(tmp_path / "link.json", 10) == b"{}"


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.json")
    with pytest.raises(NotRegularFile, match="is a FIFO, not a regular file"):
        read_regular_file(tmp_path / "fifo.json", 10)


def test_a_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "d.json").mkdir()
    with pytest.raises(NotRegularFile, match="is a directory"):
        read_regular_file(tmp_path / "d.json", 10)
