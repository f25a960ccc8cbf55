"""Issue 8 item 1: a model name never reaches another upstream path or changes the query.

A recording provider sees every request target exactly as the gateway sent it;
the attacks of the review (and encoded, backslash and unicode variants) go in
through every way a client names a model, and the provider key must only ever
travel to the intended path.
"""

from __future__ import annotations

import json
from urllib.parse import unquote

import httpx
import pytest

from gateway.catalog import MAX_MODEL_CHARS
from gateway.errors import BadRequest
from gateway.urls import path_segment
from tests.hardening.recording import RecordingProvider, raw_request, status_of
from tests.proxy.fakes import Step, gemini_events, gemini_reply, start_gateway, write_transformer

KEY = "AIzaGeminiTestKey-0123456789abcdef"

ATTACKS = [
    "../../../steal/x#",
    "ok?key=INJECTED&alt=json#",
    "../../../admin/x",
    "%2e%2e/%2e%2e/%2e%2e/steal/x",
    "%2E%2E%2F%2E%2E%2Fsteal",
    "..%2F..%2Fsteal",
    "..\\..\\steal\\x",
    "ok#frag",
    "ok;param=1",
    "ok:streamGenerateContent",
    "ünïcødé/../../x",
    "\u2024\u2024/\u2024\u2024/steal",
    "ok/./../x",
    "a b%20c",
]


@pytest.fixture
async def rec(nursery) -> RecordingProvider:
    fake = RecordingProvider()
    await nursery.start(fake.serve)
    fake.then(Step("json", body=gemini_reply("ok")))
    return fake


@pytest.fixture
async def gw(nursery, tmp_path, rec):
    tdir = tmp_path / "t"
    tdir.mkdir()
    write_transformer(
        tdir,
        "gp",
        {
            "format": "gemini",
            "base_url": rec.url + "/v1beta",
            "keys": [KEY],
            "query": {"fixed": "1"},
            "models": {"*": "*"},
            "retry": {"retries": 0},
        },
    )
    return await start_gateway(nursery, tdir)


def _check_targets(rec: RecordingProvider, expected_models: list[str], method: str) -> None:
    """Every target is /v1beta/models/<one segment>:<method>?<the file's query>."""
    assert len(rec.seen) == len(expected_models)
    for seen, model in zip(rec.seen, expected_models, strict=True):
        path, _, query = seen.path.partition("?")
        assert path.startswith("/v1beta/models/"), seen.path
        segment = path[len("/v1beta/models/") :]
        assert segment.endswith(":" + method), seen.path
        segment = segment[: -len(method) - 1]
        for bad in ("/", "?", "#", "\\", ":"):
            assert bad not in segment, seen.path
        assert unquote(segment) == model, seen.path
        expected_query = "fixed=1&alt=sse" if method == "streamGenerateContent" else "fixed=1"
        assert query == expected_query, seen.path
        assert seen.headers.get("x-goog-api-key") == KEY


@pytest.mark.parametrize("stream", [False, True])
async def test_openai_client_model_is_one_segment(gw, rec, stream):
    if stream:
        rec.script[:] = [Step("sse", events=gemini_events(["ok"]))]
    async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
        for attack in ATTACKS:
            r = await client.post(
                "/v1/chat/completions",
                json={"model": f"gp/{attack}", "messages": [{"role": "user", "content": "hi"}]}
                | ({"stream": True} if stream else {}),
            )
            assert r.status_code == 200, (attack, r.text)
    method = "streamGenerateContent" if stream else "generateContent"
    _check_targets(rec, ATTACKS, method)


async def test_anthropic_client_model_is_one_segment(gw, rec):
    async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
        for attack in ATTACKS:
            r = await client.post(
                "/v1/messages",
                json={
                    "model": f"gp/{attack}",
                    "max_tokens": 10,
                    "messages": [{"role": "user", "content": "hi"}],
                },
            )
            assert r.status_code == 200, (attack, r.text)
    _check_targets(rec, ATTACKS, "generateContent")


@pytest.mark.parametrize("method", ["generateContent", "streamGenerateContent"])
async def test_gemini_raw_path_is_one_segment(gw, rec, method):
    """The Gemini path as sent on the wire (no client-side normalisation of dots)."""
    if method == "streamGenerateContent":
        rec.script[:] = [Step("sse", events=gemini_events(["ok"]))]
    body = json.dumps({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}).encode()
    sent = []
    for attack in ATTACKS:
        if any(c in attack for c in "# ") or not attack.isascii():
            continue  # not expressible in a raw request target
        target = f"/v1beta/models/gp/{attack}:{method}"
        raw = await raw_request(gw.port, "POST", target, body, content_type="application/json")
        assert status_of(raw) == 200, (attack, raw[:300])
        # the gateway splits the model off at the last colon; the rest is the model
        sent.append(f"{attack}:{method}".rpartition(":")[0].split("?")[0])
    assert len(rec.seen) == len(sent)
    for seen in rec.seen:
        assert seen.path.startswith("/v1beta/models/"), seen.path
        assert seen.path.count("/") == 3, seen.path  # /v1beta/models/<segment>
        assert seen.headers.get("x-goog-api-key") == KEY


@pytest.mark.parametrize("model", ["gp/..", "gp/."])
async def test_dot_segments_are_refused(gw, rec, model):
    async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
        r = await client.post(
            "/v1/chat/completions",
            json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        )
    assert r.status_code == 400, r.text
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert rec.seen == []


# -- model-name validation on every endpoint ---------------------------------------------------

_CHAT = {"messages": [{"role": "user", "content": "hi"}]}
_MSG = {"max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
ENDPOINTS = [
    ("/v1/chat/completions", _CHAT, "openai"),
    ("/v1/messages", _MSG, "anthropic"),
    ("/v1/messages/count_tokens", _MSG, "anthropic"),
]


def _is_400_in(fmt: str, r: httpx.Response) -> None:
    assert r.status_code == 400, r.text
    body = r.json()
    if fmt == "anthropic":
        assert body["type"] == "error"
        assert body["error"]["type"] == "invalid_request_error"
    elif fmt == "gemini":
        assert body["error"]["status"] == "INVALID_ARGUMENT"
    else:
        assert body["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(("path", "body", "fmt"), ENDPOINTS)
@pytest.mark.parametrize(
    "model",
    ["gp/a\nb", "gp/a\rb", "gp/a\x00b", "gp/a\x7fb", "gp/a\x85b", "gp/a\x1bb", "x" * 257],
)
async def test_bad_model_names_are_400(gw, rec, path, body, fmt, model):
    async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
        r = await client.post(path, json={"model": model, **body})
    _is_400_in(fmt, r)
    assert model not in r.text  # named by its problem, not echoed
    assert rec.seen == []


@pytest.mark.parametrize("method", ["generateContent", "streamGenerateContent"])
async def test_long_gemini_model_is_400(gw, rec, method):
    async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
        r = await client.post(
            f"/v1beta/models/gp/{'x' * MAX_MODEL_CHARS}:{method}",
            json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
        )
    _is_400_in("gemini", r)
    assert "259 characters" in r.json()["error"]["message"]
    assert rec.seen == []


async def test_model_lookup_validates_the_name(gw):
    async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
        r = await client.get("/v1/models/" + "y" * 300)
        _is_400_in("openai", r)
        assert "y" * 100 not in r.text
        r = await client.get("/v1/models/gp/ok%0Ax")  # percent-encoded: a plain name
        assert r.status_code == 200


async def test_at_most_256_characters_are_fine(gw, rec):
    model = "gp/" + "m" * (MAX_MODEL_CHARS - 3)
    async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
        r = await client.post("/v1/chat/completions", json={"model": model, **_CHAT})
    assert r.status_code == 200, r.text
    assert len(rec.seen) == 1


# -- the pure function -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("gemini-2.5-flash", "gemini-2.5-flash"),
        ("a/b", "a%2Fb"),
        ("a?b#c", "a%3Fb%23c"),
        ("%2e%2e", "%252e%252e"),
        ("a\\b", "a%5Cb"),
        ("a:b", "a%3Ab"),
        ("é", "%C3%A9"),
        ("...", "..."),
    ],
)
def test_path_segment_encodes(value, encoded):
    assert path_segment(value) == encoded


@pytest.mark.parametrize("value", ["", ".", ".."])
def test_path_segment_refuses_dot_segments(value):
    with pytest.raises(BadRequest):
        path_segment(value)


def test_path_segment_never_leaves_its_segment():
    """Bounded sweep: every 1-3 character string over the dangerous alphabet."""
    alphabet = "./?#%\\:;@&=+ aé\u2024"
    count = 0
    for a in alphabet:
        for b in alphabet:
            for c in ("", *alphabet):
                value = a + b + c
                try:
                    out = path_segment(value)
                except BadRequest:
                    assert value in (".", "..")
                    continue
                count += 1
                assert not set(out) & set("/?#\\: ;@&=+")
                assert out not in (".", "..")
                assert unquote(out) == value
    assert count > 1000


async def test_key_goes_only_to_the_intended_path(gw, rec):
    """The last word: across everything above, no other path ever saw the key."""
    async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
        for attack in ATTACKS:
            await client.post("/v1/chat/completions", json={"model": f"gp/{attack}", **_CHAT})
    for seen in rec.seen:
        assert seen.path.split("?")[0].count("/") == 3
