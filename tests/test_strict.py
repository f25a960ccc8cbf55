"""Tests for gateway.strict: the converter and problem wording shared by settings and transformers."""

from __future__ import annotations

from typing import Literal

import attrs
import cattrs
import pytest

from gateway.strict import (
    Invalid,
    Problem,
    format_path,
    make_converter,
    problem_line,
    shape_problems,
    unknown_key,
)


@attrs.frozen
class Inner:
    count: int = 0
    ratio: float = 1.0


@attrs.frozen
class Entry:
    model: str
    limit: int | None = None


@attrs.frozen
class Doc:
    name: str = ""
    on: bool = False
    mode: Literal["fast", "slow"] = "fast"
    tags: tuple[str, ...] = ()
    table: dict[str, int] = attrs.field(factory=dict)
    inner: Inner = Inner()
    path_or_flag: bool | str = True
    entries: dict[str, Entry] = attrs.field(factory=dict)


def _problems(data: object) -> list[tuple[str, str, str | None]]:
    conv = make_converter(shorthands={Entry: "model"})
    with pytest.raises((cattrs.BaseValidationError, Invalid)) as info:
        conv.structure(data, Doc)
    return [(format_path(p.path), p.message, p.value_repr) for p in shape_problems(info.value)]


def test_plain_values_structure() -> None:
    conv = make_converter(shorthands={Entry: "model"})
    doc = conv.structure(
        {
            "name": "n",
            "on": True,
            "mode": "slow",
            "tags": ["a", "b"],
            "table": {"x": 1},
            "inner": {"count": 2, "ratio": 3},  # an integer is a fine number
            "path_or_flag": "/etc/ca.pem",
            "entries": {"a": "m-a", "b": {"model": "m-b", "limit": 5}},
        },
        Doc,
    )
    assert doc.inner == Inner(2, 3.0)
    assert isinstance(doc.inner.ratio, float)
    assert doc.tags == ("a", "b")
    assert doc.entries == {"a": Entry("m-a"), "b": Entry("m-b", 5)}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"name": 5}, ("name", "expected a string, got number", "5")),
        ({"on": 1}, ("on", "expected true or false, got number", "1")),
        ({"on": "true"}, ("on", "expected true or false, got string", "'true'")),
        ({"inner": {"count": "5"}}, ("inner.count", "expected an integer, got string", "'5'")),
        ({"inner": {"count": 1.5}}, ("inner.count", "expected an integer, got number", "1.5")),
        ({"inner": {"count": True}}, ("inner.count", "expected an integer, got boolean", "True")),
        ({"inner": {"ratio": False}}, ("inner.ratio", "expected a number, got boolean", "False")),
        (
            {"mode": "medium"},
            ("mode", "expected one of 'fast', 'slow', got string", "'medium'"),
        ),
        ({"tags": "abc"}, ("tags", "expected an array, got string", "'abc'")),
        ({"tags": ["a", 2]}, ("tags[1]", "expected a string, got number", "2")),
        ({"table": [1]}, ("table", "expected an object, got array", "[1]")),
        ({"table": {"x": "1"}}, ("table.x", "expected an integer, got string", "'1'")),
        ({"inner": 5}, ("inner", "expected an object, got number", "5")),
        (
            {"path_or_flag": 1},
            ("path_or_flag", "expected true, false or a file path, got number", "1"),
        ),
        (
            {"entries": {"a": 5}},
            ("entries.a", 'expected a string or an object {"model": ...}, got number', "5"),
        ),
        ({"entries": {"a": {}}}, ("entries.a.model", "required key missing", None)),
        ([1], ("", "expected an object, got array", "[1]")),
    ],
)
def test_nothing_is_coerced(data: object, expected: tuple[str, str, str | None]) -> None:
    assert _problems(data) == [expected]


def test_unknown_keys_get_did_you_mean_or_the_known_keys() -> None:
    assert _problems({"nmae": "x", "inner": {"cuont": 1, "zzz": 2}}) == [
        ("inner.cuont", "unknown key (did you mean 'count'?)", None),
        ("inner.zzz", "unknown key (known: count, ratio)", None),
        ("nmae", "unknown key (did you mean 'name'?)", None),
    ]


def test_every_problem_at_once_in_field_order() -> None:
    paths = [p for p, _, _ in _problems({"name": 1, "on": 2, "inner": {"count": "x"}})]
    assert paths == ["name", "on", "inner.count"]


def test_converters_are_fresh() -> None:
    assert make_converter() is not make_converter()


def test_unknown_key_helper() -> None:
    assert unknown_key(("server",), "prot", ["host", "port"]) == Problem(
        ("server", "prot"), "unknown key (did you mean 'port'?)"
    )
    assert unknown_key((), "x", ["server", "logging"]).message == (
        "unknown key (known: server, logging)"
    )


def test_problem_text_shows_the_value_only_when_asked() -> None:
    problem = Problem(("k",), "expected an integer, got string", "'sekrit'")
    assert problem.text() == "expected an integer, got string"
    assert problem.text(show_value=True) == "expected an integer, got string 'sekrit'"
    assert "sekrit" not in repr(problem)
    assert Problem((), "no value").text(show_value=True) == "no value"


def test_problem_line() -> None:
    assert problem_line("c.toml", ("server", "port"), "m") == "c.toml: server.port: m"
    assert problem_line("p.json", (), "m") == "p.json: m"


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ((), ""),
        (("weight",), "weight"),
        (("models", "fast", "fallbacks", 0), "models.fast.fallbacks[0]"),
        (("models", "anthropic/claude-x", "model"), "models.anthropic/claude-x.model"),
        (("models", "qwen2.5:7b"), 'models["qwen2.5:7b"]'),
        (("headers", "a b"), 'headers["a b"]'),
    ],
)
def test_format_path(path: tuple[str | int, ...], text: str) -> None:
    assert format_path(path) == text
