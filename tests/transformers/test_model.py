"""Tests for gateway.transformers.model: expansion, key headers, request edits, secrets."""

from __future__ import annotations

import pytest

from gateway.formats import FORMAT_NAMES, FORMATS
from gateway.transformers.model import (
    MOCK,
    PROVIDER_FORMATS,
    ModelEntry,
    RequestEdits,
    Transformer,
    expand_env,
    parse_key_header,
    referenced_vars,
)

ENV = {"A": "alpha", "EMPTY": "", "URL": "https://h/v1"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ("${A}", "alpha"),
        ("x-${A}-y", "x-alpha-y"),
        ("${UNSET}", ""),
        ("${UNSET:-dflt}", "dflt"),
        ("${EMPTY:-dflt}", "dflt"),  # :- also covers set-but-empty, as in the shell
        ("${A:-dflt}", "alpha"),
        ("${UNSET:-}", ""),
        ("${A}${A}", "alphaalpha"),
        ("$A and $ alone", "$A and $ alone"),  # only ${...} expands
        ("${URL}/chat", "https://h/v1/chat"),
    ],
)
def test_expand_env(text: str, expected: str) -> None:
    assert expand_env(text, ENV) == expected


def test_expand_env_is_a_single_pass() -> None:
    assert expand_env("${V}", {"V": "${A}", "A": "no"}) == "${A}"


@pytest.mark.parametrize("text", ["${", "${A", "${1A}", "${A:-${B}}", "pre ${ post", "${A B}"])
def test_expand_env_rejects_malformed_references_without_echoing(text: str) -> None:
    with pytest.raises(ValueError, match=r"malformed \$\{\.\.\.\} reference") as info:
        expand_env(text + "sk-secret", ENV)
    assert "sk-secret" not in str(info.value)


def test_referenced_vars() -> None:
    assert referenced_vars("${A}-${B:-x}-$C-${A}") == ("A", "B", "A")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("Authorization: Bearer", ("authorization", "Bearer ")),
        ("authorization:Bearer", ("authorization", "Bearer ")),
        ("api-key", ("api-key", "")),
        ("X-Api-Key", ("x-api-key", "")),
        ("Authorization: Token", ("authorization", "Token ")),
    ],
)
def test_parse_key_header(spec: str, expected: tuple[str, str]) -> None:
    assert parse_key_header(spec) == expected


@pytest.mark.parametrize("spec", ["", "bad header", ": Bearer", "a\nb"])
def test_parse_key_header_rejects(spec: str) -> None:
    with pytest.raises(ValueError, match="Header-Name"):
        parse_key_header(spec)


def test_parse_key_header_rejects_line_break_in_prefix() -> None:
    with pytest.raises(ValueError, match="line breaks"):
        parse_key_header("Authorization: Bearer\r\nX-Evil: 1")


@pytest.mark.parametrize(
    ("fmt", "key_header", "expected"),
    [
        ("openai", None, ("authorization", "Bearer ")),
        ("anthropic", None, ("x-api-key", "")),
        ("gemini", None, ("x-goog-api-key", "")),
        ("mock", None, ("authorization", "Bearer ")),
        ("openai", "api-key", ("api-key", "")),
        ("anthropic", "Authorization: Bearer", ("authorization", "Bearer ")),
    ],
)
def test_key_header_parts(fmt: str, key_header: str | None, expected: tuple[str, str]) -> None:
    t = Transformer(name="p", format=fmt, base_url="https://h", key_header=key_header)  # type: ignore[arg-type]
    assert t.key_header_parts() == expected


def test_a_file_names_a_registered_format_or_the_mock() -> None:
    assert PROVIDER_FORMATS == (*FORMAT_NAMES, MOCK) == ("openai", "anthropic", "gemini", "mock")
    for name in FORMAT_NAMES:  # the default key header is the format's wire's
        t = Transformer(name="p", format=name, base_url="https://h")  # type: ignore[arg-type]
        assert t.key_header_parts() == FORMATS[name].wire.KEY_HEADER


def test_repr_hides_keys_and_header_and_query_values() -> None:
    t = Transformer(
        name="p",
        format="openai",
        base_url="https://h",
        keys=("sk-live-123",),
        headers=(("Authorization", "Bearer sk-hdr-456"),),
        query=(("key", "sk-q-789"),),
    )
    text = repr(t)
    assert "sk-live-123" not in text
    assert "sk-hdr-456" not in text
    assert "sk-q-789" not in text
    assert "Authorization" in text  # names stay visible for debugging


def test_models_mapping_is_read_only_and_transformer_hashable() -> None:
    t = Transformer(name="p", format="mock", models={"a": ModelEntry("b")})
    with pytest.raises(TypeError):
        t.models["x"] = ModelEntry("y")  # type: ignore[index]
    assert hash(t) == hash(Transformer(name="p", format="mock", models={"a": ModelEntry("b")}))


@pytest.mark.parametrize(
    ("keys_listed", "keys", "forward", "missing"),
    [
        (False, (), False, False),  # no keys at all: the provider needs none
        (True, (), False, True),  # listed but all empty: a configuration gap
        (True, ("k",), False, False),
        (True, (), True, False),  # the client's own credential is forwarded
    ],
)
def test_keys_missing(
    keys_listed: bool, keys: tuple[str, ...], forward: bool, missing: bool
) -> None:
    t = Transformer(
        name="p",
        format="openai",
        base_url="https://h",
        keys=keys,
        keys_listed=keys_listed,
        forward_client_key=forward,
    )
    assert t.keys_missing is missing


def test_missing_keys_message_names_variables() -> None:
    t = Transformer(name="openai", format="openai", key_vars=("OPENAI_API_KEY", "OPENAI_API_KEY_2"))
    assert t.missing_keys_message() == (
        "Provider 'openai' has no API key configured: set OPENAI_API_KEY or OPENAI_API_KEY_2."
    )
    bare = Transformer(name="x", format="openai")
    assert "every entry of 'keys' is empty" in bare.missing_keys_message()


def test_request_edits_apply() -> None:
    edits = RequestEdits(
        defaults={"temperature": 0.2, "stream_options": {"include_usage": True}, "top_p": 1},
        override={"max_tokens": 100, "metadata": {"team": "a"}},
        drop=("user", "top_p"),
    )
    body = {
        "model": "m",
        "temperature": 0.9,
        "stream_options": {"foo": 1},
        "metadata": {"team": "z", "keep": True},
        "user": "u",
    }
    out = edits.apply(body)
    assert out == {
        "model": "m",
        "temperature": 0.9,  # the client's value wins over a default
        "stream_options": {"foo": 1, "include_usage": True},  # filled at depth
        "metadata": {"team": "a", "keep": True},  # override merges objects
        "max_tokens": 100,
    }
    assert body["stream_options"] == {"foo": 1}  # the input is untouched
    assert body["metadata"] == {"team": "z", "keep": True}
    out["stream_options"]["include_usage"] = False
    assert edits.defaults["stream_options"] == {"include_usage": True}  # edits were copied


def test_request_edits_empty_is_a_copy() -> None:
    body = {"a": 1}
    edits = RequestEdits()
    assert edits.is_empty()
    out = edits.apply(body)
    assert out == body
    assert out is not body
