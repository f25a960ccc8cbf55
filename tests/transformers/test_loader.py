"""Tests for gateway.transformers.loader: parsing, problem lines, cross-file checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cattrs
import pytest

from gateway.transformers.loader import (
    LoadedFile,
    TransformerError,
    TransformerFile,
    assemble,
    check_directory,
    format_path,
    list_transformer_files,
    make_converter,
    parse_transformer,
)
from gateway.transformers.model import ModelEntry, RequestEdits, Retry, Timeouts

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
            ["p.json: format: expected one of 'openai', 'anthropic', 'gemini', 'mock'"],
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
                "p.json: stream: expected one of 'native', 'emulate'",
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


def test_converter_is_strict_and_fresh() -> None:
    first, second = make_converter(), make_converter()
    assert first is not second  # a factory, not a shared global
    with pytest.raises(cattrs.ClassValidationError):
        first.structure({"format": "mock", "weight": "1"}, TransformerFile)


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


# -- directories ---------------------------------------------------------------------------


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


def test_shipped_files_each_have_a_wildcard_and_aliases() -> None:
    for name in list_transformer_files(SHIPPED):
        t = parse_transformer((SHIPPED / name).read_bytes(), name, {})
        assert t.models["*"] == ModelEntry("*"), name
        assert len(t.models) > 1, name


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


def test_deeply_nested_json_is_a_problem_not_a_crash() -> None:
    raw = (
        b'{"format": "mock", "request": {"defaults": {"x": '
        + b"[" * 100_000
        + b"]" * 100_000
        + b"}}}"
    )
    assert _problems(raw) == ["p.json: invalid JSON: nested too deeply"]


def test_oversized_file_is_not_read_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gateway.transformers.loader.MAX_FILE_BYTES", 64)
    _write(tmp_path, "big.json", {"format": "mock", "models": {f"m{i}": "x" for i in range(20)}})
    _write(tmp_path, "small.json", {"format": "mock"})
    problems, _ = check_directory(tmp_path, {})
    assert problems == ["big.json: larger than 64 bytes"]
