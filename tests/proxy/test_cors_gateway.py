"""Issue 10 item 7: CORS through the running gateway, with a fake provider behind it.

A browser's preflight is answered by the gateway itself on every client
endpoint (OpenAI, Anthropic, Gemini paths), never reaching a provider; the
answers a page reads carry ``Access-Control-Allow-Origin`` for allowed origins,
errors included; with ``[cors]`` unset nothing changes.
"""

from __future__ import annotations

import httpx
import pytest

from gateway.config import AuthConfig, AuthKey, Config, CorsConfig
from gateway.server.cors import ALLOWED_HEADERS, EXPOSED_HEADERS
from tests.proxy.configured import start_configured, three_formats
from tests.proxy.fakes import Step, openai_reply

APP = "https://app.example.com"
EVIL = "https://evil.example.net"
CORS = Config(cors=CorsConfig(allow_origins=(APP, "https://*.corp.example")))
CHAT = {"model": "m-o", "messages": [{"role": "user", "content": "hi"}]}

PREFLIGHT_PATHS = [
    "/v1/chat/completions",
    "/v1/messages",
    "/v1beta/models/m-g:streamGenerateContent",
    "/v1/models/m-g:generateContent",
]


def _preflight(origin: str) -> dict[str, str]:
    return {
        "origin": origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization,content-type,x-stainless-os",
    }


def _names(value: str) -> list[str]:
    return [name.strip() for name in value.split(",")]


@pytest.mark.parametrize("path", PREFLIGHT_PATHS)
async def test_a_browser_preflight_is_answered_by_the_gateway(nursery, provider, tdir, path):
    three_formats(tdir, provider.url)
    gw = await start_configured(nursery, tdir, CORS)
    async with httpx.AsyncClient(base_url=gw.url) as client:
        reply = await client.options(path, headers=_preflight(APP))
        # a second origin, by the wildcard entry, over the same kept-alive connection
        sub = await client.options(path, headers=_preflight("https://a.b.corp.example"))
    assert reply.status_code == 204
    assert reply.content == b""
    assert "content-length" not in reply.headers  # RFC 9110: never on a 204
    assert reply.headers["access-control-allow-origin"] == APP
    assert reply.headers["vary"] == "origin"
    methods = _names(reply.headers["access-control-allow-methods"])
    # the methods the path serves: a Gemini model path also answers GET (the model's entry)
    assert methods == (["GET", "HEAD", "POST"] if "models/" in path else ["POST"])
    allowed = _names(reply.headers["access-control-allow-headers"])
    for name in ("authorization", "content-type", "x-stainless-os", *ALLOWED_HEADERS):
        assert name in allowed
    assert int(reply.headers["access-control-max-age"]) > 0
    assert reply.headers["x-request-id"]  # the standard headers, as on every response
    assert sub.status_code == 204
    assert sub.headers["access-control-allow-origin"] == "https://a.b.corp.example"
    assert provider.seen == []  # never forwarded


@pytest.mark.parametrize("path", PREFLIGHT_PATHS)
async def test_a_preflight_from_another_origin_gets_no_allow_headers(nursery, provider, tdir, path):
    three_formats(tdir, provider.url)
    gw = await start_configured(nursery, tdir, CORS)
    async with httpx.AsyncClient(base_url=gw.url) as client:
        replies = [
            await client.options(path, headers=_preflight(origin))
            # not listed; a look-alike of the wildcard's domain; the wildcard's bare domain
            for origin in (EVIL, "https://corp.example.evil.net", "https://corp.example")
        ]
    for reply in replies:
        assert reply.status_code == 403
        assert not [h for h in reply.headers if h.startswith("access-control-")]
        assert reply.headers["vary"] == "origin"
        assert "allow_origins" in reply.text
    if "/v1beta/" in path or "/v1/models/" in path:  # worded in the path's format
        assert replies[0].json()["error"]["status"] == "PERMISSION_DENIED"
    assert provider.seen == []


async def test_an_allowed_origin_reads_answers_and_errors(nursery, provider, tdir):
    three_formats(tdir, provider.url)
    provider.then(Step("json", body=openai_reply("hello")))
    gw = await start_configured(nursery, tdir, CORS)
    origin = {"origin": APP}
    async with httpx.AsyncClient(base_url=gw.url) as client:
        ok = await client.post("/v1/chat/completions", json=CHAT, headers=origin)
        missing = await client.post(
            "/v1/chat/completions", json={**CHAT, "model": "nope"}, headers=origin
        )
        other = await client.post("/v1/chat/completions", json=CHAT, headers={"origin": EVIL})
        plain = await client.post("/v1/chat/completions", json=CHAT)
    for reply, status in ((ok, 200), (missing, 404)):
        assert reply.status_code == status
        assert reply.headers["access-control-allow-origin"] == APP
        assert reply.headers["vary"] == "origin"
        assert _names(reply.headers["access-control-expose-headers"]) == list(EXPOSED_HEADERS)
    # Another origin is served (CORS is the browser's check) but told nothing; so is a
    # request with no Origin (curl, a server), whose answer still varies by Origin.
    for reply in (other, plain):
        assert reply.status_code == 200
        assert "access-control-allow-origin" not in reply.headers
        assert reply.headers["vary"] == "origin"


async def test_a_star_without_client_keys_is_a_star(nursery, provider, tdir):
    three_formats(tdir, provider.url)
    gw = await start_configured(nursery, tdir, Config(cors=CorsConfig(allow_origins=("*",))))
    async with httpx.AsyncClient(base_url=gw.url) as client:
        pre = await client.options("/v1/messages", headers=_preflight(EVIL))
        missing = await client.post(
            "/v1/chat/completions", json={**CHAT, "model": "nope"}, headers={"origin": EVIL}
        )
    assert pre.status_code == 204
    assert pre.headers["access-control-allow-origin"] == "*"
    assert missing.status_code == 404
    assert missing.headers["access-control-allow-origin"] == "*"
    assert "vary" not in missing.headers  # the same answer whatever the origin


async def test_a_star_with_client_keys_echoes_the_origin(nursery, provider, tdir):
    three_formats(tdir, provider.url)
    config = Config(
        cors=CorsConfig(allow_origins=("*",)),
        auth=AuthConfig(keys=(AuthKey(name="team", key="client-key-0123456789"),)),
    )
    gw = await start_configured(nursery, tdir, config)
    async with httpx.AsyncClient(base_url=gw.url) as client:
        pre = await client.options("/v1/chat/completions", headers=_preflight(EVIL))
        live = await client.get("/health/live", headers={"origin": EVIL})
        # the page can read why it was refused
        keyless = await client.post("/v1/chat/completions", json=CHAT, headers={"origin": EVIL})
    assert pre.status_code == 204  # a preflight needs no key
    assert keyless.status_code == 401
    for reply in (pre, live, keyless):
        assert reply.headers["access-control-allow-origin"] == EVIL  # never "*" with keys
        assert reply.headers["vary"] == "origin"
    assert provider.seen == []


async def test_preflights_on_paths_nothing_serves_and_other_options(nursery, provider, tdir):
    three_formats(tdir, provider.url)
    gw = await start_configured(nursery, tdir, CORS)
    async with httpx.AsyncClient(base_url=gw.url) as client:
        nowhere = await client.options("/v1/nothing", headers=_preflight(APP))
        not_preflight = await client.options("/v1/chat/completions", headers={"origin": APP})
        get_path = await client.options("/v1/models", headers=_preflight(APP))
    assert nowhere.status_code == 404
    assert nowhere.headers["access-control-allow-origin"] == APP  # a page may read the 404
    assert not_preflight.status_code == 405  # no Access-Control-Request-Method
    assert not_preflight.headers["allow"] == "POST"
    assert get_path.status_code == 204
    assert _names(get_path.headers["access-control-allow-methods"]) == ["GET", "HEAD"]
    assert provider.seen == []


async def test_cors_off_changes_nothing(nursery, provider, tdir):
    three_formats(tdir, provider.url)
    gw = await start_configured(nursery, tdir, Config())
    async with httpx.AsyncClient(base_url=gw.url) as client:
        pre = await client.options("/v1/chat/completions", headers=_preflight(APP))
        ok = await client.post("/v1/chat/completions", json=CHAT, headers={"origin": APP})
    assert pre.status_code == 405
    assert pre.headers["allow"] == "POST"
    assert ok.status_code == 200
    for reply in (pre, ok):
        assert not [h for h in reply.headers if h.startswith("access-control-")]
        assert "vary" not in reply.headers
    assert len(provider.seen) == 1
