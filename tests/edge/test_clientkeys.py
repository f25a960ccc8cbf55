"""Client keys: where credentials are read, how they are matched, and the settings' checks."""

from __future__ import annotations

import pytest

from gateway.config import AuthConfig, AuthKey, ConfigError, load_config
from gateway.edge.clientkeys import ClientKeys, KeyFileError, presented_credentials
from gateway.server.exchange import Request


def _request(headers=(), query=""):
    target = "/v1/chat/completions" + (f"?{query}" if query else "")
    return Request(
        method="POST",
        target=target,
        headers=[(k.encode(), v.encode()) for k, v in headers],
        body=b"",
        request_id="r",
        client="c",
        started=0.0,
    )


@pytest.mark.parametrize(
    ("headers", "query", "expected"),
    [
        ([("authorization", "Bearer sk-1")], "", ["sk-1"]),
        ([("authorization", "bearer   sk-1 ")], "", ["sk-1"]),
        ([("authorization", "Basic abc")], "", []),
        ([("x-api-key", "sk-2")], "", ["sk-2"]),
        ([("x-goog-api-key", "sk-3")], "", ["sk-3"]),
        ([], "alt=sse&key=sk%2D4", ["sk-4"]),
        ([("x-api-key", "a"), ("authorization", "Bearer b")], "", ["b", "a"]),
        ([("x-api-key", "")], "", []),
    ],
)
def test_credentials_are_read_where_each_sdk_puts_them(headers, query, expected):
    assert presented_credentials(_request(headers, query)) == expected


def test_keys_match_by_digest_and_the_text_is_not_kept():
    keys = ClientKeys(AuthConfig(keys=(AuthKey("a", "secret-a"), AuthKey("b", "secret-b"))))
    assert keys.identify(["nope", "secret-b"]).name == "b"
    assert keys.identify(["secret-a"]).name == "a"
    assert keys.identify(["secret-"]) is None
    assert keys.identify([]) is None
    assert "secret" not in repr(vars(keys))


def test_a_key_file_is_read_and_its_errors_never_show_its_text(tmp_path):
    good = tmp_path / "k"
    good.write_text("  from-file-key\n")
    keys = ClientKeys(AuthConfig(keys=(AuthKey("f", key_file=str(good)),)))
    assert keys.identify(["from-file-key"]).name == "f"
    with pytest.raises(KeyFileError, match="cannot read key_file"):
        ClientKeys(AuthConfig(keys=(AuthKey("f", key_file=str(tmp_path / "missing")),)))
    big = tmp_path / "big"
    big.write_text("x" * 5000)
    with pytest.raises(KeyFileError, match="larger than") as exc:
        ClientKeys(AuthConfig(keys=(AuthKey("f", key_file=str(big)),)))
    assert "xxxx" not in str(exc.value)


def test_model_patterns_are_globs_over_the_whole_name():
    keys = ClientKeys(AuthConfig(keys=(AuthKey("a", "k", models=("gpt-*", "claude-?-x")),)))
    key = keys.identify(["k"])
    assert key.allows("gpt-4o")
    assert key.allows("claude-3-x")
    assert not key.allows("xgpt-4o")
    assert not key.allows("claude-3-xy")
    assert not key.allows("GPT-4o")


@pytest.mark.parametrize(
    ("keys", "fragment"),
    [
        ('[{"name": "a"}]', "set key"),
        ('[{"name": "a", "key": "k", "key_file": "/f"}]', "exactly one"),
        ('[{"name": "a b", "key": "k"}]', "not a key name"),
        ('[{"name": "a", "key": "k"}, {"name": "a", "key": "j"}]', "names another key"),
        ('[{"name": "a", "key": "k", "rpm": 0}]', "rpm: must be greater than 0"),
        ('[{"name": "a", "key": "k", "models": []}]', "lists no model"),
    ],
)
def test_key_settings_are_checked_and_never_echo_a_key(keys, fragment):
    with pytest.raises(ConfigError) as exc:
        load_config(env={"GATEWAY_AUTH__KEYS": keys})
    text = "\n".join(exc.value.problems)
    assert fragment in text
    assert "GATEWAY_AUTH__KEYS: auth.keys[" in text
    assert '"k"' not in text
    assert "'k'" not in text


def test_an_unset_variable_leaves_the_key_empty_and_that_is_refused(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[[auth.keys]]\nname = "a"\nkey = "${UNSET_TEAM_KEY}"\n')
    with pytest.raises(ConfigError, match="environment variable is unset"):
        load_config(str(path), env={})
