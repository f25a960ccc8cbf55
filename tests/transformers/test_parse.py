"""Tests for gateway.transformers.parse: one file's bytes to a Transformer, and its problem lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateway.transformers.files import list_transformer_files
from gateway.transformers.model import ModelEntry, RequestEdits, Retry, Timeouts
from gateway.transformers.parse import TransformerError, parse_transformer

SHIPPED = Path(__file__).resolve().parents[2] / "transformers"

# design.md's example file, without the comments JSON does not allow.
DESIGN_EXAMPLE: dict[str, Any] = {
    "name": "openai",
    "format": "openai",
    "base_url": "https://api.openai.com/v1",
    "keys": ["${OPENAI_API_KEY}", "${OPENAI_API_KEY_2}"],
    "headers": {"OpenAI-Organization": "${OPENAI_ORG:-}"},
    "key_header": "Authorization: Bearer",
    "query": {},
    "tls_verify": True,
    "models": {
        "gpt-4o": "gpt-4o-2024-08-06",
        "fast": {
            "model": "gpt-4o-mini",
            "fallbacks": ["anthropic/claude-haiku-4-5"],
            "max_tokens": 16384,
        },
        "*": "*",
    },
    "request": {"defaults": {}, "override": {}, "drop": []},
    "timeouts": {"connect": 5, "first_byte": 120, "idle": 60},
    "retry": {"retries": 2, "backoff_s": 0.5},
    "stream": "native",
    "realtime_url": "wss://api.openai.com/v1/realtime",
    "default": False,
    "weight": 1,
    "forward_client_key": False,
}


def _raw(data: object) -> bytes:
    return json.dumps(data).encode()


def _problems(data: object, env: dict[str, str] | None = None, source: str = "p.json") -> list[str]:
    raw = data if isinstance(data, bytes) else _raw(data)
    with pytest.raises(TransformerError) as info:
        parse_transformer(raw, source, env or {})
    assert str(info.value) == "\n".join(info.value.problems)
    return list(info.value.problems)


def test_design_example_parses() -> None:
    t = parse_transformer(_raw(DESIGN_EXAMPLE), "openai.json", {"OPENAI_API_KEY": "sk-1"})
    assert t.name == "openai"
    assert t.format == "openai"
    assert t.base_url == "https://api.openai.com/v1"
    assert t.keys == ("sk-1",)  # OPENAI_API_KEY_2 is unset: skipped
    assert t.key_vars == ("OPENAI_API_KEY", "OPENAI_API_KEY_2")
    assert t.keys_listed
    assert t.headers == ()  # OPENAI_ORG expands to "": dropped
    assert t.key_header_parts() == ("authorization", "Bearer ")
    assert dict(t.models) == {
        "gpt-4o": ModelEntry("gpt-4o-2024-08-06"),
        "fast": ModelEntry("gpt-4o-mini", ("anthropic/claude-haiku-4-5",), 16384),
        "*": ModelEntry("*"),
    }
    assert t.timeouts == Timeouts(5.0, 120.0, 60.0)
    assert isinstance(t.timeouts.connect, float)
    assert t.retry == Retry(2, 0.5)
    assert t.realtime_url == "wss://api.openai.com/v1/realtime"
    assert (t.default, t.weight, t.forward_client_key, t.tls_verify) == (False, 1.0, False, True)
    assert t.source == "openai.json"


def test_minimal_file_gets_defaults() -> None:
    t = parse_transformer(b'{"format": "mock"}', "mock.json", {})
    assert t.name == "mock"  # the file stem
    assert t.base_url == ""
    assert (t.keys, t.key_vars, t.keys_listed) == ((), (), False)
    assert t.timeouts == Timeouts(connect=5.0, first_byte=120.0, idle=60.0)
    assert t.retry == Retry(retries=2, backoff_s=0.5)
    assert t.request == RequestEdits()
    assert (t.stream, t.default, t.weight, t.realtime_url) == ("native", False, 1.0, None)


def test_expansion_in_every_expanding_field() -> None:
    env = {"HOST": "vllm.internal", "K": "  sk-k\n", "ORG": "org-1", "VER": "2024-10-21"}
    t = parse_transformer(
        _raw(
            {
                "name": "azure",
                "format": "openai",
                "base_url": "https://${HOST}/v1/",
                "keys": ["${K}", "", "${NOPE}", "literal-key"],
                "headers": {"X-Org": "${ORG}", "X-Gone": "${NOPE:-}", "X-Fixed": "1"},
                "query": {"api-version": "${VER}", "flag": "${NOPE}"},
                "key_header": "api-key",
                "realtime_url": "wss://${HOST}/realtime",
                "tls_verify": "/etc/ssl/internal.pem",
            }
        ),
        "azure.json",
        env,
    )
    assert t.base_url == "https://vllm.internal/v1"
    assert t.keys == ("sk-k", "literal-key")  # stripped; empty ones skipped
    assert t.key_vars == ("K", "NOPE")
    assert t.headers == (("X-Org", "org-1"), ("X-Fixed", "1"))
    assert t.query == (("api-version", "2024-10-21"), ("flag", ""))
    assert t.realtime_url == "wss://vllm.internal/realtime"
    assert t.tls_verify == "/etc/ssl/internal.pem"
    assert t.key_header_parts() == ("api-key", "")


def test_name_from_file_overrides_stem() -> None:
    t = parse_transformer(b'{"format": "mock", "name": "demo"}', "mock.json", {})
    assert t.name == "demo"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param({}, ["p.json: format: required key missing"], id="no-format"),
        pytest.param(
            {"format": "cohere"},
            ["p.json: format: expected one of 'openai', 'anthropic', 'gemini', 'mock', got string"],
            id="bad-format",
        ),
        pytest.param(
            {"format": "openai"},
            ["p.json: base_url: required for format 'openai' (empty or missing)"],
            id="no-base-url",
        ),
        pytest.param(
            {"format": "openai", "base_url": "${UNSET}"},
            ["p.json: base_url: required for format 'openai' (empty or missing)"],
            id="base-url-expands-empty",
        ),
        pytest.param(
            {"format": "gemini", "base_url": "ftp://x"},
            ["p.json: base_url: must start with http:// or https://"],
            id="base-url-scheme",
        ),
        pytest.param(
            {"format": "mock", "modles": {}},
            ["p.json: modles: unknown key (did you mean 'models'?)"],
            id="unknown-top-key",
        ),
        pytest.param(
            {"format": "mock", "models": {"fast": {"model": "m", "maxtokens": 5}}},
            ["p.json: models.fast.maxtokens: unknown key (did you mean 'max_tokens'?)"],
            id="unknown-nested-key",
        ),
        pytest.param(
            {"format": "mock", "timeouts": {"conect": 1, "zzz": 2}},
            [
                "p.json: timeouts.conect: unknown key (did you mean 'connect'?)",
                "p.json: timeouts.zzz: unknown key (known: connect, first_byte, idle)",
            ],
            id="unknown-keys-sorted",
        ),
        pytest.param(
            {"format": "mock", "models": {"fast": {"model": "m", "max_tokens": "5"}}},
            ["p.json: models.fast.max_tokens: expected an integer, got string"],
            id="max-tokens-type",
        ),
        pytest.param(
            {"format": "mock", "models": {"gpt-4.1": {"model": 4}}},
            ['p.json: models["gpt-4.1"].model: expected a string, got number'],
            id="dotted-alias-quoted",
        ),
        pytest.param(
            {"format": "mock", "models": {"a": 5, "b": {"fallbacks": []}}},
            [
                'p.json: models.a: expected a string or an object {"model": ...}, got number',
                "p.json: models.b.model: required key missing",
            ],
            id="model-entry-shapes",
        ),
        pytest.param(
            {"format": "mock", "keys": "sk-abc"},
            ["p.json: keys: expected an array, got string"],
            id="keys-not-a-list",
        ),
        pytest.param(
            {"format": "mock", "keys": ["ok", 5]},
            ["p.json: keys[1]: expected a string, got number"],
            id="key-not-a-string",
        ),
        pytest.param(
            {"format": "mock", "default": 1, "weight": True, "stream": "yes"},
            [
                "p.json: stream: expected one of 'native', 'emulate', got string",
                "p.json: default: expected true or false, got number",
                "p.json: weight: expected a number, got boolean",
            ],
            id="scalars",
        ),
        pytest.param(
            {"format": "mock", "timeouts": 5, "headers": [], "tls_verify": 1},
            [
                "p.json: headers: expected an object, got array",
                "p.json: tls_verify: expected true, false or a file path, got number",
                "p.json: timeouts: expected an object, got number",
            ],
            id="containers",
        ),
        pytest.param(
            {"format": "mock", "weight": 0},
            ["p.json: weight: must be a number greater than 0"],
            id="weight-zero",
        ),
        pytest.param(
            {"format": "mock", "weight": -2.5},
            ["p.json: weight: must be a number greater than 0"],
            id="weight-negative",
        ),
        pytest.param(
            {"format": "mock", "timeouts": {"idle": 0}, "retry": {"retries": -1, "backoff_s": -1}},
            [
                "p.json: timeouts.idle: must be greater than 0 seconds",
                "p.json: retry.retries: must be 0 or more",
                "p.json: retry.backoff_s: must be 0 or more seconds",
            ],
            id="numbers",
        ),
        pytest.param(
            {
                "format": "mock",
                "models": {
                    "a": "*",
                    "b": {"model": "x", "max_tokens": 0, "fallbacks": ["", "*"]},
                    "": "x",
                },
            },
            [
                'p.json: models.a.model: "*" is only allowed as the upstream of the "*" entry',
                "p.json: models.b.max_tokens: must be greater than 0",
                "p.json: models.b.fallbacks[0]: must be a model name",
                "p.json: models.b.fallbacks[1]: must be a model name",
                'p.json: models[""]: a model name must not be empty',
            ],
            id="model-entries",
        ),
        pytest.param(
            {"format": "mock", "models": {"a": ""}, "tls_verify": "", "query": {"": "x"}},
            [
                "p.json: tls_verify: expected true, false or a CA bundle path",
                "p.json: models.a.model: the upstream model name must not be empty",
                'p.json: query[""]: the name must not be empty',
            ],
            id="empty-strings",
        ),
        pytest.param(
            {"format": "mock", "name": "open/ai"},
            ["p.json: name: must be a non-empty name without '/' or spaces"],
            id="name-with-slash",
        ),
        pytest.param(
            {"format": "mock", "key_header": "bad header"},
            ['p.json: key_header: expected "Header-Name" or "Header-Name: Prefix"'],
            id="key-header",
        ),
        pytest.param(
            {"format": "mock", "realtime_url": "https://x"},
            ["p.json: realtime_url: must start with ws:// or wss://"],
            id="realtime-scheme",
        ),
        pytest.param(
            {"format": "mock", "headers": {"Bad Name": "v"}, "keys": ["${K"]},
            [
                "p.json: keys[0]: malformed ${...} reference (use ${NAME} or ${NAME:-default})",
                'p.json: headers["Bad Name"]: not a valid header name',
            ],
            id="header-name-and-bad-ref",
        ),
        pytest.param([1, 2], ["p.json: expected an object, got array"], id="not-an-object"),
        pytest.param(
            b'{\n  "format": "mock", // the mock\n}',
            ["p.json: line 2 column 21: invalid JSON: comments are not allowed (plain JSON only)"],
            id="comment",
        ),
        pytest.param(
            b'{"format": "mock",}',
            [
                "p.json: line 1 column 19: invalid JSON: "
                "Expecting property name enclosed in double quotes"
            ],
            id="trailing-comma",
        ),
        pytest.param(
            b'{"format": "mock", "models": {"a": "x", "a": "y"}}',
            ["p.json: duplicate key 'a' in an object"],
            id="duplicate-key",
        ),
        pytest.param(
            b'{"format": "mock", "weight": NaN}',
            ["p.json: invalid JSON: NaN is not JSON"],
            id="nan",
        ),
        pytest.param(b"\xff{}", ["p.json: not UTF-8 text (bad byte at offset 0)"], id="not-utf8"),
    ],
)
def test_problem_lines(data: object, expected: list[str]) -> None:
    assert _problems(data) == expected


def test_problems_never_echo_secrets() -> None:
    secret = "sk-ant-SECRET-0123456789"
    env = {"K": secret, "H": f"Bearer {secret}\r\nX-Evil: 1"}
    problems = _problems(
        {
            "format": "anthropic",
            "base_url": "https://x",
            "keys": [f"{secret}${{K"],
            "headers": {"Authorization": "${H}"},
            "query": {"key": f"${{{secret}"},
        },
        env,
    )
    assert problems == [
        "p.json: keys[0]: malformed ${...} reference (use ${NAME} or ${NAME:-default})",
        "p.json: headers.Authorization: the value contains a line break",
        "p.json: query.key: malformed ${...} reference (use ${NAME} or ${NAME:-default})",
    ]
    assert not any(secret in p for p in problems)


def test_key_with_inner_line_break_is_refused() -> None:
    problems = _problems(
        {"format": "openai", "base_url": "https://x", "keys": ["${K}"]}, {"K": "a\nb"}
    )
    assert problems == ["p.json: keys[0]: the key contains a line break"]


def test_shipped_files_each_have_a_wildcard_and_aliases() -> None:
    for name in list_transformer_files(SHIPPED):
        t = parse_transformer((SHIPPED / name).read_bytes(), name, {})
        assert t.models["*"] == ModelEntry("*"), name
        assert len(t.models) > 1, name


def test_deeply_nested_json_is_a_problem_not_a_crash() -> None:
    raw = (
        b'{"format": "mock", "request": {"defaults": {"x": '
        + b"[" * 100_000
        + b"]" * 100_000
        + b"}}}"
    )
    assert _problems(raw) == ["p.json: invalid JSON: nested too deeply"]
