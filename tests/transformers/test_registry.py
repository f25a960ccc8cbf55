"""Tests for gateway.transformers.registry: snapshots, stamps, and hot reload for real."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from gateway.routing import route
from gateway.transformers.model import ModelEntry, Transformer
from gateway.transformers.registry import (
    MAX_SCHEDULE,
    Registry,
    RegistryHolder,
    build_registry,
    make_registry,
    scan_directory,
    weighted_schedule,
)

POLL_S = 0.02


def _json(name: str | None = None, **fields: Any) -> bytes:
    data = {"format": "mock", **fields}
    if name is not None:
        data["name"] = name
    return json.dumps(data).encode()


def _write(path: Path, raw: bytes) -> None:
    """Atomic, like an editor or a ConfigMap: the poller never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(raw)
    os.replace(tmp, path)


async def _wait_until(predicate: Callable[[], bool]) -> None:
    """Poll the holder's state: the change comes from the file system, not from an event."""
    with trio.fail_after(5):
        while not predicate():  # noqa: ASYNC110
            await trio.sleep(POLL_S / 2)


# -- pure parts ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        ([], ()),
        ([1], (0,)),
        ([1, 1, 1], (0, 1, 2)),
        ([5, 1, 1], (0, 0, 1, 0, 2, 0, 0)),  # nginx's documented example
        ([0.5, 1.5], (1, 0, 1, 1)),
        ([2, 4], (1, 0, 1)),  # reduced to 1:2
    ],
)
def test_weighted_schedule(weights: list[float], expected: tuple[int, ...]) -> None:
    assert weighted_schedule(weights) == expected


def test_weighted_schedule_is_capped() -> None:
    schedule = weighted_schedule([1, 1e9, 0.001])
    assert len(schedule) <= MAX_SCHEDULE + 2
    assert set(schedule) == {0, 1, 2}  # every provider keeps a turn


def _t(name: str, models: dict[str, str], **kw: Any) -> Transformer:
    return Transformer(
        name=name,
        format="mock",
        models={k: ModelEntry(v) for k, v in models.items()},
        source=f"{name}.json",
        **kw,
    )


def test_make_registry_indexes() -> None:
    a = _t("a", {"m": "x", "only-a": "y", "*": "*"}, weight=2)
    b = _t("b", {"m": "z"}, default=True)
    registry = make_registry([a, b], errors={"c.json": "boom"}, loaded_at=7)
    assert registry.loaded == ("a", "b")
    assert dict(registry.aliases) == {"m": ("a", "b"), "only-a": ("a",)}
    assert dict(registry.schedules) == {"m": ("a", "b", "a")}
    assert registry.default == "b"
    assert dict(registry.by_file) == {"a.json": a, "b.json": b}
    assert (dict(registry.errors), registry.degraded, registry.loaded_at) == (
        {"c.json": "boom"},
        True,
        7,
    )
    with pytest.raises(TypeError):
        registry.transformers["x"] = a  # type: ignore[index]


@pytest.mark.parametrize(
    "pair",
    [
        (_t("a", {}), _t("a", {})),
        (_t("a", {}, default=True), _t("b", {}, default=True)),
    ],
)
def test_make_registry_refuses_clashes(pair: tuple[Transformer, Transformer]) -> None:
    with pytest.raises(ValueError, match=r"named|default"):
        make_registry(pair)


def test_empty_registry() -> None:
    empty = Registry.empty()
    assert (empty.loaded, dict(empty.errors), empty.default, empty.degraded) == (
        (),
        {},
        None,
        False,
    )


def test_scan_directory(tmp_path: Path) -> None:
    assert scan_directory(tmp_path / "missing") == {}
    (tmp_path / "a.json").write_bytes(b"{}")
    (tmp_path / ".hidden.json").write_bytes(b"{}")
    (tmp_path / "readme.md").write_bytes(b"")
    (tmp_path / "dangling.json").symlink_to(tmp_path / "gone")
    stamps = scan_directory(tmp_path)
    assert set(stamps) == {"a.json", "dangling.json"}
    st = os.stat(tmp_path / "a.json")
    assert stamps["a.json"] == (st.st_mtime_ns, 2, st.st_ino)
    assert stamps["dangling.json"] == (-1, -1, -1)
    _write(tmp_path / "a.json", b"{}")  # same size, new inode
    assert scan_directory(tmp_path)["a.json"] != stamps["a.json"]


def _configmap(root: Path, version: str, files: dict[str, bytes]) -> None:
    """Lay out a ConfigMap volume: ..<version>/, ..data -> it, x.json -> ..data/x.json."""
    target = root / f"..{version}"
    target.mkdir()
    for name, raw in files.items():
        (target / name).write_bytes(raw)
        link = root / name
        if not link.is_symlink():
            link.symlink_to(Path("..data") / name)
    tmp_link = root / "..data_tmp"
    tmp_link.symlink_to(target.name)
    os.replace(tmp_link, root / "..data")  # the atomic swap kubelet does


def test_scan_directory_sees_a_configmap_swap(tmp_path: Path) -> None:
    _configmap(tmp_path, "2026_01", {"p.json": _json(weight=1)})
    before = scan_directory(tmp_path)
    assert list(before) == ["p.json"]
    _configmap(tmp_path, "2026_02", {"p.json": _json(weight=2)})  # same size, same link
    assert scan_directory(tmp_path) != before


# -- build_registry ------------------------------------------------------------------------


def test_build_registry_per_file_fallback_and_deletion(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_bytes(_json(models={"m": "one"}))
    (tmp_path / "b.json").write_bytes(_json(models={"n": "one"}))
    first = build_registry(tmp_path, None, {})
    assert (first.loaded, dict(first.errors)) == (("a", "b"), {})
    assert first.loaded_at > 0

    (tmp_path / "a.json").write_bytes(b'{"format": "mock", "weight": 0}')
    (tmp_path / "b.json").write_bytes(_json(models={"n": "two"}))
    (tmp_path / "c.json").write_bytes(_json())
    second = build_registry(tmp_path, first, {})
    assert second.loaded == ("a", "b", "c")
    assert second.transformers["a"] is first.transformers["a"]  # last good version serves
    assert second.transformers["b"].models["n"].model == "two"  # other files still change
    assert dict(second.errors) == {"a.json": "weight: must be a number greater than 0"}

    (tmp_path / "a.json").unlink()
    third = build_registry(tmp_path, second, {})
    assert (third.loaded, dict(third.errors)) == (("b", "c"), {})
    # Snapshots are immutable: the earlier ones are unchanged.
    assert first.transformers["b"].models["n"].model == "one"


def test_build_registry_bad_file_without_previous_version(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_bytes(b"{")
    registry = build_registry(tmp_path, None, {})
    assert registry.loaded == ()
    assert dict(registry.errors) == {
        "bad.json": "line 1 column 2: invalid JSON: "
        "Expecting property name enclosed in double quotes"
    }


def test_build_registry_clash_later_file_fails(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_bytes(_json("x", default=True))
    (tmp_path / "b.json").write_bytes(_json("x"))
    (tmp_path / "c.json").write_bytes(_json(default=True))
    registry = build_registry(tmp_path, None, {})
    assert registry.loaded == ("x",)
    assert dict(registry.errors) == {
        "b.json": "name: 'x' is already used by a.json",
        "c.json": "default: a.json is already the default provider",
    }


def test_build_registry_directory_gone_keeps_serving(tmp_path: Path) -> None:
    directory = tmp_path / "t"
    directory.mkdir()
    (directory / "a.json").write_bytes(_json())
    first = build_registry(directory, None, {})
    (directory / "a.json").unlink()
    directory.rmdir()
    second = build_registry(directory, first, {})
    assert second.loaded == ("a",)
    assert dict(second.errors) == {
        str(directory): "cannot read the directory (No such file or directory)"
    }


def test_build_registry_expands_from_env(tmp_path: Path) -> None:
    (tmp_path / "p.json").write_bytes(
        _json(format="openai", base_url="https://${HOST}", keys=["${KEY}"])
    )
    registry = build_registry(tmp_path, None, {"HOST": "h.example", "KEY": "sk-1"})
    t = registry.transformers["p"]
    assert (t.base_url, t.keys) == ("https://h.example", ("sk-1",))


# -- RegistryHolder: hot reload for real ----------------------------------------------------


async def test_hot_reload_add_change_break_fix_delete(
    tmp_path: Path, nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.transformers")
    _write(tmp_path / "a.json", _json(models={"m": "v1"}))
    holder = RegistryHolder(tmp_path, env={})
    assert not holder.initial_load_done.is_set()
    await nursery.start(
        lambda task_status: holder.run_poller(poll_interval_s=POLL_S, task_status=task_status)
    )
    assert holder.initial_load_done.is_set()  # the first load happened before started()
    assert holder.current.loaded == ("a",)
    assert holder.reload_counts == {"ok": 1, "error": 0}

    # add
    _write(tmp_path / "b.json", _json(models={"n": "b1"}))
    await _wait_until(lambda: "b" in holder.current.loaded)
    # change
    before = holder.current
    _write(tmp_path / "a.json", _json(models={"m": "version-2"}))
    await _wait_until(lambda: holder.current.transformers["a"].models["m"].model == "version-2")
    assert before.transformers["a"].models["m"].model == "v1"  # old snapshot untouched
    assert route("m", holder.current)[0].upstream_model == "version-2"
    # break: the last good version keeps serving, the error is listed and logged
    _write(tmp_path / "a.json", b'{"format": "mock", "models": {"m": 5}}')
    await _wait_until(lambda: bool(holder.current.errors))
    assert dict(holder.current.errors) == {
        "a.json": 'models.m: expected a string or an object {"model": ...}, got number'
    }
    assert holder.current.transformers["a"].models["m"].model == "version-2"
    assert holder.reload_counts["error"] == 1
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.name for r in failures] == ["gateway.transformers"]
    assert "a.json failed to load" in failures[0].getMessage()
    assert "last good version keeps serving" in failures[0].getMessage()
    # fix
    _write(tmp_path / "a.json", _json(models={"m": "version-3"}))
    await _wait_until(lambda: not holder.current.errors)
    assert holder.current.transformers["a"].models["m"].model == "version-3"
    # delete
    (tmp_path / "b.json").unlink()
    await _wait_until(lambda: holder.current.loaded == ("a",))
    assert holder.reload_counts == {"ok": 5, "error": 1}


async def test_hot_reload_configmap_symlink_swap(tmp_path: Path, nursery: trio.Nursery) -> None:
    _configmap(tmp_path, "2026_11_01", {"p.json": _json(models={"m": "first"})})
    holder = RegistryHolder(tmp_path, env={})
    await nursery.start(
        lambda task_status: holder.run_poller(poll_interval_s=POLL_S, task_status=task_status)
    )
    assert holder.current.transformers["p"].models["m"].model == "first"
    # Same length, so only the inode behind the ..data swap tells them apart.
    _configmap(tmp_path, "2026_11_02", {"p.json": _json(models={"m": "after"})})
    await _wait_until(lambda: holder.current.transformers["p"].models["m"].model == "after")
    assert holder.current.loaded == ("p",)
    assert not holder.current.errors


async def test_request_reload_reloads_without_a_file_change(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    _write(tmp_path / "p.json", _json(format="openai", base_url="https://h", keys=["${K}"]))
    env: dict[str, str] = {}
    holder = RegistryHolder(tmp_path, env=env)
    # A poll interval far beyond the test's bound: only request_reload can wake it.
    await nursery.start(
        lambda task_status: holder.run_poller(poll_interval_s=3600, task_status=task_status)
    )
    assert holder.current.transformers["p"].keys_missing
    env["K"] = "sk-new"
    holder.request_reload()
    await _wait_until(lambda: holder.current.transformers["p"].keys == ("sk-new",))
    assert holder.reload_counts == {"ok": 2, "error": 0}


async def test_reload_direct_and_missing_directory(tmp_path: Path) -> None:
    holder = RegistryHolder(tmp_path / "none", env={})
    registry = await holder.reload()
    assert registry is holder.current
    assert list(registry.errors) == [str(tmp_path / "none")]
    assert holder.reload_counts == {"ok": 0, "error": 1}


def test_holder_uses_os_environ_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_TEST_KEY", "from-environ")
    (tmp_path / "p.json").write_bytes(
        _json(format="openai", base_url="https://h", keys=["${GATEWAY_TEST_KEY}"])
    )

    async def main() -> Registry:
        return await RegistryHolder(tmp_path).reload()

    assert trio.run(main).transformers["p"].keys == ("from-environ",)
