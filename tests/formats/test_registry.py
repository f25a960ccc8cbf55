"""gateway.formats: the registration, the lookups, and the rule that formats stay in their folders."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.errors import ErrorKind, UpstreamError
from gateway.formats import (
    DEFAULT_FORMAT,
    FORMAT_NAMES,
    FORMATS,
    format_for,
    format_for_path,
)

GATEWAY = Path(__file__).resolve().parents[2] / "gateway"
#: Files outside gateway/formats/ that may still spell a format's name, and why.
NOT_DISPATCH: set[str] = set()  # nothing outside gateway/formats/ names a format


def test_every_format_is_registered_under_its_name() -> None:
    assert FORMAT_NAMES == ("openai", "anthropic", "gemini")
    for name, fmt in FORMATS.items():
        assert fmt.name == name == fmt.wire.NAME
    assert DEFAULT_FORMAT is FORMATS["openai"]


def test_format_for_falls_back_to_the_default() -> None:
    assert format_for("gemini") is FORMATS["gemini"]
    assert format_for("") is DEFAULT_FORMAT
    assert format_for("mock") is DEFAULT_FORMAT


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/v1/chat/completions", "openai"),
        ("/v1/messages", "anthropic"),
        ("/v1/messages/batches", "anthropic"),
        ("/v1beta/models/x:generateContent", "gemini"),
        ("/v1/models/a/b:c:streamGenerateContent", "gemini"),
        ("/v1/models/gpt-4o", "openai"),
        ("/v1beta/models", "openai"),
        ("/nothing/here", "openai"),
    ],
)
def test_format_for_path(path: str, name: str) -> None:
    assert format_for_path(path).name == name


def test_overload_status_per_format() -> None:
    overloaded = UpstreamError("busy", kind=ErrorKind.OVERLOADED, status_hint=503)
    assert {n: FORMATS[n].error_response(overloaded)[0] for n in FORMAT_NAMES} == {
        "openai": 503,
        "anthropic": 529,
        "gemini": 503,
    }


def test_memo_goes_only_to_the_converters_that_use_it() -> None:
    assert all(FORMATS[n].parse_remembers for n in FORMAT_NAMES)
    assert FORMATS["openai"].render_remembers
    assert FORMATS["gemini"].render_remembers
    assert not FORMATS["anthropic"].render_remembers


def test_no_format_names_outside_the_format_folders() -> None:
    """Nothing outside gateway/formats/ branches on a format's name (issue 9)."""
    name = re.compile(r"""["'](openai|anthropic|gemini)["']""")
    found = []
    for path in sorted(GATEWAY.rglob("*.py")):
        rel = path.relative_to(GATEWAY).as_posix()
        if rel.startswith("formats/") or rel in NOT_DISPATCH:
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if name.search(line):
                found.append(f"gateway/{rel}:{n}: {line.strip()}")
    assert found == []
