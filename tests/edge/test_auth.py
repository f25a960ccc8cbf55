"""Issue 10 item 1: client keys, through the official SDKs against a gateway process.

Every SDK sends its key its own way (OpenAI ``Authorization: Bearer``,
Anthropic ``x-api-key``, google-genai ``x-goog-api-key``); each is accepted,
a missing or wrong key is a 401 in that SDK's format, a model outside the
key's patterns a 403, and the model lists show only what the key may use.
"""

from __future__ import annotations

import time
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as gtypes

from tests.process import run_gateway

SHIPPED = Path(__file__).parent.parent.parent / "transformers"
TEAM_KEY = "gw-team-Qz7XvK2pLmN8rT4wYb"
MOCK_ONLY_KEY = "gw-mock-Hj5FdS3aGkU9eRcVnP"
METRICS_KEY = "gw-metrics-Wm2ZxQ8tBy6LuJoIhE"
WRONG_KEY = "gw-wrong-Pc4NvA7sDf1KgXqZyT"

CONFIG = """
[auth]
metrics_key = "${METRICS_KEY}"
keys = [
  { name = "team", key = "${TEAM_KEY}" },
  { name = "mock-only", key_file = "KEY_FILE", models = ["mock-*"] },
]
"""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("auth")
    key_file = tmp / "mock-only.key"
    key_file.write_text(MOCK_ONLY_KEY + "\n")
    config = tmp / "gateway.toml"
    audit = tmp / "audit.jsonl"
    text = CONFIG.replace("KEY_FILE", str(key_file))
    config.write_text(f'[logging]\naudit_log = "{audit}"\nlog_bodies = true\n' + text)
    env = {"TEAM_KEY": TEAM_KEY, "METRICS_KEY": METRICS_KEY}
    with run_gateway(tmp, "--config", str(config), env=env, transformers=SHIPPED) as gw:
        gw.audit_path = audit
        yield gw


def _openai(gw, key):
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)


def _anthropic(gw, key):
    return anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0)


def _genai(gw, key):
    return genai.Client(
        api_key=key, http_options=gtypes.HttpOptions(base_url=gw.url, api_version="v1beta")
    )


HI = [{"role": "user", "content": "hi"}]


def test_each_sdk_is_let_in_with_its_own_header(gateway):
    with _openai(gateway, TEAM_KEY) as client:
        reply = client.chat.completions.create(model="mock-1", messages=HI)
        assert reply.choices[0].message.content == "Echo: hi"
    with _anthropic(gateway, TEAM_KEY) as client:
        msg = client.messages.create(model="mock-1", max_tokens=20, messages=HI)
        assert msg.content[0].text == "Echo: hi"
    client = _genai(gateway, MOCK_ONLY_KEY)
    try:
        assert client.models.generate_content(model="mock-1", contents="hi").text == "Echo: hi"
    finally:
        client.close()
    # ?key= as Gemini's REST examples use it
    reply = httpx.post(
        gateway.url + "/v1beta/models/mock-1:generateContent?key=" + TEAM_KEY,
        json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
    )
    assert reply.status_code == 200


def test_a_wrong_key_is_a_401_in_each_sdks_format(gateway):
    with _openai(gateway, WRONG_KEY) as client, pytest.raises(openai.AuthenticationError) as oai:
        client.chat.completions.create(model="mock-1", messages=HI)
    assert oai.value.status_code == 401
    with (
        _anthropic(gateway, WRONG_KEY) as client,
        pytest.raises(anthropic.AuthenticationError) as ant,
    ):
        client.messages.create(model="mock-1", max_tokens=5, messages=HI)
    assert ant.value.body["error"]["type"] == "authentication_error"
    client = _genai(gateway, WRONG_KEY)
    try:
        with pytest.raises(genai_errors.ClientError) as gem:
            client.models.generate_content(model="mock-1", contents="hi")
    finally:
        client.close()
    assert gem.value.code == 401
    assert gem.value.status == "UNAUTHENTICATED"


GEMINI_BODY = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


@pytest.mark.parametrize(
    ("path", "body", "error"),
    [
        ("/v1/chat/completions", {"model": "mock-1", "messages": HI}, lambda b: b["error"]["type"]),
        (
            "/v1/messages",
            {"model": "mock-1", "max_tokens": 5, "messages": HI},
            lambda b: b["error"]["type"],
        ),
        ("/v1beta/models/mock-1:generateContent", GEMINI_BODY, lambda b: b["error"]["status"]),
        ("/v1beta/models/mock-1:countTokens", GEMINI_BODY, lambda b: b["error"]["status"]),
        (
            "/v1/messages/count_tokens",
            {"model": "mock-1", "messages": HI},
            lambda b: b["error"]["type"],
        ),
    ],
)
@pytest.mark.parametrize("header", [None, ("authorization", "Basic abc"), ("x-api-key", "")])
def test_a_missing_key_is_a_401_that_says_how_to_send_one(gateway, path, body, error, header):
    headers = dict([header]) if header else {}
    reply = httpx.post(gateway.url + path, json=body, headers=headers)
    assert reply.status_code == 401
    assert error(reply.json()) in (
        "authentication_error",
        "UNAUTHENTICATED",
        "invalid_request_error",
    )
    assert "x-api-key" in reply.text


def test_a_model_outside_the_keys_patterns_is_a_403_in_each_format(gateway):
    with (
        _openai(gateway, MOCK_ONLY_KEY) as client,
        pytest.raises(openai.PermissionDeniedError) as oai,
    ):
        client.chat.completions.create(model="gpt-4o", messages=HI)
    assert "mock-*" in oai.value.message
    with (
        _anthropic(gateway, MOCK_ONLY_KEY) as client,
        pytest.raises(anthropic.PermissionDeniedError) as ant,
    ):
        client.messages.create(model="claude-sonnet-4-5", max_tokens=5, messages=HI)
    assert ant.value.body["error"]["type"] == "permission_error"
    client = _genai(gateway, MOCK_ONLY_KEY)
    try:
        with pytest.raises(genai_errors.ClientError) as gem:
            client.models.generate_content(model="gemini-2.5-pro", contents="hi")
    finally:
        client.close()
    assert gem.value.code == 403
    assert gem.value.status == "PERMISSION_DENIED"


def test_model_lists_show_what_the_key_may_use(gateway):
    with _openai(gateway, MOCK_ONLY_KEY) as client:
        ids = [m.id for m in client.models.list()]
        assert ids
        assert all(i.startswith("mock-") for i in ids)
        with pytest.raises(openai.NotFoundError):
            client.models.retrieve("gpt-4o")
    with _openai(gateway, TEAM_KEY) as client:
        assert "gpt-4o" in [m.id for m in client.models.list()]
    client = _genai(gateway, MOCK_ONLY_KEY)
    try:
        names = [m.name for m in client.models.list()]
    finally:
        client.close()
    assert names
    assert all(n.startswith("models/mock-") for n in names)
    assert httpx.get(gateway.url + "/v1/models").status_code == 401


def test_health_needs_no_key_and_metrics_needs_its_own(gateway):
    for path in ("/health/live", "/health/ready", "/health/startup"):
        assert httpx.get(gateway.url + path).status_code == 200
    assert httpx.get(gateway.url + "/metrics").status_code == 401
    wrong = httpx.get(gateway.url + "/metrics", headers={"authorization": "Bearer " + TEAM_KEY})
    assert wrong.status_code == 401
    ok = httpx.get(gateway.url + "/metrics", headers={"authorization": "Bearer " + METRICS_KEY})
    assert ok.status_code == 200
    assert "gateway_requests_total" in ok.text


def _read(path) -> str:
    return path.read_text() if path.exists() else ""


def test_no_key_string_in_logs_metrics_or_errors(gateway):
    """After every test above: the log and the metrics never show a key, whole or in part."""
    with _openai(gateway, WRONG_KEY) as client, pytest.raises(openai.AuthenticationError) as exc:
        client.chat.completions.create(model="mock-1", messages=HI)
    body = str(exc.value.body)
    metrics = httpx.get(
        gateway.url + "/metrics", headers={"authorization": "Bearer " + METRICS_KEY}
    ).text
    # a client that pastes a key into its prompt: the audit log (with bodies) redacts it
    with _openai(gateway, TEAM_KEY) as client:
        client.chat.completions.create(
            model="mock-1", messages=[{"role": "user", "content": f"my key is {TEAM_KEY}"}]
        )
    deadline = time.monotonic() + 10  # the audit log is written by a thread
    while time.monotonic() < deadline and "my key is" not in _read(gateway.audit_path):
        time.sleep(0.05)
    audit = _read(gateway.audit_path)
    assert "my key is" in audit
    assert '"key_name": "team"' in audit or '"key_name":"team"' in audit
    for key in (TEAM_KEY, MOCK_ONLY_KEY, METRICS_KEY, WRONG_KEY):
        for text in (gateway.log(), metrics, body, audit):
            assert key not in text
            assert key[:12] not in text
            assert key[-6:] not in text


def test_the_access_line_names_the_key(gateway):
    with _openai(gateway, MOCK_ONLY_KEY) as client:
        client.with_options(
            default_headers={"x-request-id": "rid-key-name"}
        ).chat.completions.create(model="mock-1", messages=HI)
    deadline = time.monotonic() + 10  # the access log is written by a thread, in batches
    while time.monotonic() < deadline:
        lines = [line for line in gateway.log().splitlines() if "rid-key-name" in line]
        if lines:
            break
        time.sleep(0.05)
    assert lines
    assert "key_name=mock-only" in lines[-1]


def test_an_open_gateway_on_a_public_address_warns_at_start(tmp_path):
    with run_gateway(tmp_path, "--host", "0.0.0.0") as gw:
        deadline = time.monotonic() + 10
        while "no client keys are configured" not in gw.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "no client keys are configured" in gw.log()
    with run_gateway(tmp_path) as gw:  # 127.0.0.1: no warning
        time.sleep(0.3)
        assert "no client keys" not in gw.log()
