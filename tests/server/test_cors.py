"""The CORS policy (gateway/server/cors.py) and its settings, without a network."""

from __future__ import annotations

import pytest

from gateway.config import ConfigError, load_config
from gateway.server.cors import CorsPolicy, origin_problem, preflight_headers


def _policy(*origins: str, keys: bool = False) -> CorsPolicy:
    policy = CorsPolicy.from_settings(origins, keys_in_use=keys)
    assert policy is not None
    return policy


def test_no_origins_is_no_policy():
    assert CorsPolicy.from_settings((), keys_in_use=False) is None
    assert CorsPolicy.from_settings((), keys_in_use=True) is None


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://app.example.com", True),
        ("HTTPS://APP.EXAMPLE.COM", True),  # scheme and host are case-insensitive
        ("http://app.example.com", False),  # another scheme
        ("https://app.example.com:8443", False),  # another port
        ("https://app.example.com.evil.net", False),
        ("https://xapp.example.com", False),
        ("http://localhost:5173", True),
        ("https://a.dev.example", True),  # the wildcard: one label ...
        ("https://a.b.dev.example", True),  # ... or more
        ("https://dev.example", False),  # never the bare domain
        ("https://.dev.example", False),
        ("https://a..dev.example", False),
        ("https://evil.net/.dev.example", False),
        ("https://evil.net:1.dev.example", False),
        ("https://user@x.dev.example", False),
        ("http://a.dev.example", False),
        ("https://a.dev.example:444", False),
        ("https://a.dev.example.evil.net", False),
        ("null", False),
        ("", False),
    ],
)
def test_origins_match_exactly_or_by_the_leading_labels(origin, allowed):
    policy = _policy("https://app.example.com", "http://localhost:5173", "https://*.dev.example")
    assert policy.allows(origin) is allowed


def test_response_headers_echo_an_allowed_origin_with_vary():
    policy = _policy("https://app.example.com")
    headers = dict(policy.response_headers(b"https://app.example.com"))
    assert headers[b"access-control-allow-origin"] == b"https://app.example.com"
    assert headers[b"vary"] == b"origin"
    assert b"x-request-id" in headers[b"access-control-expose-headers"]
    assert policy.response_headers(b"https://other.example") == [(b"vary", b"origin")]
    assert policy.response_headers(None) == [(b"vary", b"origin")]


def test_star_is_a_star_without_keys_and_an_echo_with_them():
    open_gateway = dict(_policy("*").response_headers(b"https://x.example"))
    assert open_gateway[b"access-control-allow-origin"] == b"*"
    assert b"vary" not in open_gateway
    with_keys = _policy("*", keys=True)
    headers = dict(with_keys.response_headers(b"https://x.example"))
    assert headers[b"access-control-allow-origin"] == b"https://x.example"
    assert headers[b"vary"] == b"origin"
    assert with_keys.response_headers(None) == [(b"vary", b"origin")]


def test_preflight_headers_list_the_sdk_headers_and_echo_stainless_ones():
    headers = dict(
        preflight_headers(
            b"Authorization, X-Stainless-OS,x-stainless-retry-count, x-custom, x-stainless-a b",
            ("POST",),
        )
    )
    allowed = headers[b"access-control-allow-headers"].decode().split(", ")
    assert "authorization" in allowed
    assert "anthropic-dangerous-direct-browser-access" in allowed
    assert "x-goog-api-key" in allowed
    assert "x-stainless-os" in allowed
    assert "x-stainless-retry-count" in allowed
    assert "x-custom" not in allowed  # not a header any SDK sends
    assert "x-stainless-a b" not in allowed  # not a header name at all
    assert allowed.count("authorization") == 1
    assert headers[b"access-control-allow-methods"] == b"POST"
    assert int(headers[b"access-control-max-age"]) > 0


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ("https://app.example.com/", "no path"),
        ("https://app.example.com/app", "write 'https://app.example.com'"),
        ("null", "'null' origin"),
        ("app.example.com", "scheme://host"),
        ("https://*.com", "two labels"),
        ("https://app.*.example.com", "leading labels"),
        ("https://*example.com", "leading labels"),
        ("*.example.com", "leading labels"),
        ("https://user@app.example.com", "scheme://host"),
    ],
)
def test_bad_entries_are_refused_with_the_fix(entry, says):
    problem = origin_problem(entry)
    assert problem is not None
    assert says in problem


@pytest.mark.parametrize(
    "entry",
    [
        "*",
        "https://app.example.com",
        "http://localhost:5173",
        "https://*.example.com",
        "http://[::1]:8080",
        "chrome-extension://abcdefgh",
    ],
)
def test_good_entries(entry):
    assert origin_problem(entry) is None


def test_the_settings_name_the_bad_entry(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[cors]\nallow_origins = ["https://ok.example", "https://bad.example/"]\n')
    with pytest.raises(ConfigError) as info:
        load_config(str(path), env={})
    (problem,) = info.value.problems
    assert problem.startswith(f"{path}: cors.allow_origins[1]: 'https://bad.example/': ")
    env = {"GATEWAY_CORS__ALLOW_ORIGINS": '["https://ok.example", "https://*.dev.example"]'}
    config = load_config(env=env)
    assert config.cors.allow_origins == ("https://ok.example", "https://*.dev.example")
