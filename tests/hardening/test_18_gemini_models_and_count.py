"""Issue 8 item 18: the Gemini front end lists and gets models and counts tokens.

google-genai's ``client.models.list()`` / ``get()`` / ``count_tokens()`` against the
running gateway: the list in Gemini's format (paged with ``pageSize``/``pageToken``),
one model by name, and ``:countTokens`` forwarded to a Gemini-format provider (which
sees ``:countTokens`` with the model as one path segment), estimated and marked for the
mock and for an OpenAI-format provider. Errors come back in Gemini's format.
"""

from __future__ import annotations

import httpx
import pytest
import trio
from google import genai
from google.genai import errors as gerrors
from google.genai import types as gtypes

from tests.proxy.fakes import Step, start_gateway, write_transformer

ENV = {"UP_KEY": "sk-provider-key-123456"}


def _files(tdir, provider):
    write_transformer(
        tdir,
        "gem",
        {
            "format": "gemini",
            "base_url": provider.url + "/v1beta",
            "keys": ["${UP_KEY}"],
            "models": {"alias-g": "up/model x", "*": "*"},
            "request": {"defaults": {"generationConfig": {"temperature": 0.1}}},
            "retry": {"retries": 0, "backoff_s": 0},
        },
    )
    write_transformer(
        tdir,
        "oai",
        {
            "format": "openai",
            "base_url": provider.url + "/v1",
            "keys": ["${UP_KEY}"],
            "models": {"alias-o": {"model": "up-o", "max_tokens": 512}},
            "retry": {"retries": 0, "backoff_s": 0},
        },
    )
    write_transformer(
        tdir,
        "mock",
        {"format": "mock", "models": {f"mock-{i:02d}": "mock-1" for i in range(7)}},
    )


def _client(gw):
    return genai.Client(
        api_key="client-key",
        http_options=gtypes.HttpOptions(base_url=gw.url, api_version="v1beta"),
    )


async def test_genai_lists_every_model_across_pages(nursery, provider, tdir):
    _files(tdir, provider)
    gw = await start_gateway(nursery, tdir, ENV)

    def call():
        with _client(gw) as client:
            everything = list(client.models.list())
            pager = client.models.list(config={"page_size": 3})
            first_page = list(pager.page)
            all_paged = [m.name for m in pager]  # iterating fetches every further page
            return everything, first_page, all_paged

    everything, first_page, all_paged = await trio.to_thread.run_sync(call)
    names = [m.name for m in everything]
    expected = ["models/alias-g", "models/alias-o"] + [f"models/mock-{i:02d}" for i in range(7)]
    assert sorted(names) == sorted(expected)
    assert len(first_page) == 3
    assert all_paged == names  # the same models in the same order, each once
    by_name = {m.name: m for m in everything}
    assert set(by_name["models/alias-g"].supported_actions) >= {
        "generateContent",
        "streamGenerateContent",
        "countTokens",
    }
    assert by_name["models/alias-o"].display_name == "alias-o"
    assert by_name["models/alias-o"].output_token_limit == 512
    assert provider.seen == []  # listing never asks a provider


async def test_list_paging_over_raw_http(nursery, provider, tdir):
    _files(tdir, provider)
    gw = await start_gateway(nursery, tdir, ENV)
    async with httpx.AsyncClient(base_url=gw.url) as client:
        seen, token, pages = [], None, 0
        while True:
            params = {"pageSize": "4", **({"pageToken": token} if token else {})}
            reply = await client.get("/v1beta/models", params=params)
            assert reply.status_code == 200
            body = reply.json()
            assert len(body["models"]) <= 4
            seen += [m["name"] for m in body["models"]]
            pages += 1
            token = body.get("nextPageToken")
            if not token:
                break
            assert pages < 10
        assert pages == 3
        assert len(seen) == len(set(seen)) == 9
        # no pageSize: the default page holds all nine; a huge one is lowered, not refused
        assert len((await client.get("/v1beta/models")).json()["models"]) == 9
        huge = await client.get("/v1beta/models", params={"pageSize": "99999"})
        assert huge.status_code == 200
        assert "nextPageToken" not in huge.json()
        for params in ({"pageSize": "-1"}, {"pageSize": "x"}, {"pageToken": "forged"}):
            bad = await client.get("/v1beta/models", params=params)
            assert bad.status_code == 400, params
            error = bad.json()["error"]
            assert error["status"] == "INVALID_ARGUMENT"
            assert error["code"] == 400


async def test_genai_gets_one_model_and_404_is_gemini_shaped(nursery, provider, tdir):
    _files(tdir, provider)
    gw = await start_gateway(nursery, tdir, ENV)

    def call():
        with _client(gw) as client:
            alias = client.models.get(model="alias-g")
            prefixed = client.models.get(model="gem/some-upstream")
            try:
                client.models.get(model="no-such-model")
            except gerrors.ClientError as exc:
                return alias, prefixed, exc
            raise AssertionError("a missing model must be an error")

    alias, prefixed, missing = await trio.to_thread.run_sync(call)
    assert alias.name == "models/alias-g"
    assert "countTokens" in alias.supported_actions
    assert prefixed.name == "models/gem/some-upstream"
    assert missing.code == 404
    assert missing.status == "NOT_FOUND"
    async with httpx.AsyncClient(base_url=gw.url) as client:
        wrong_method = await client.get("/v1beta/models/alias-g:generateContent")
    assert wrong_method.status_code == 405  # a generation path is not a model to get
    assert wrong_method.headers["allow"] == "POST"


async def test_genai_count_tokens_forwarded_to_a_gemini_provider(nursery, provider, tdir):
    _files(tdir, provider)
    provider.then(Step("json", body={"totalTokens": 31, "cachedContentTokenCount": 0}))
    gw = await start_gateway(nursery, tdir, ENV)

    def call():
        with _client(gw) as client:
            return client.models.count_tokens(model="alias-g", contents="how many tokens?")

    counted = await trio.to_thread.run_sync(call)
    assert counted.total_tokens == 31
    seen = provider.seen[-1]
    # the upstream model is exactly one path segment, whatever it holds
    assert seen.path == "/v1beta/models/up%2Fmodel%20x:countTokens"
    assert seen.headers["x-goog-api-key"] == ENV["UP_KEY"]
    # countTokens accepts only contents: the file's generation defaults stay out
    assert seen.body == {"contents": [{"parts": [{"text": "how many tokens?"}], "role": "user"}]}
    async with httpx.AsyncClient(base_url=gw.url) as client:
        reply = await client.post(
            "/v1beta/models/alias-g:countTokens", json={"contents": [{"parts": [{"text": "x"}]}]}
        )
    assert "x-gateway-token-count" not in reply.headers  # the provider counted


async def test_count_tokens_generate_content_request_names_the_upstream_model(
    nursery, provider, tdir
):
    _files(tdir, provider)
    provider.then(Step("json", body={"totalTokens": 5}))
    gw = await start_gateway(nursery, tdir, ENV)
    body = {
        "generateContentRequest": {
            "model": "models/alias-g",
            "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        }
    }
    async with httpx.AsyncClient(base_url=gw.url) as client:
        reply = await client.post("/v1/models/alias-g:countTokens", json=body)
    assert reply.status_code == 200
    assert reply.json() == {"totalTokens": 5}
    assert provider.seen[-1].body["generateContentRequest"]["model"] == "models/up/model x"


@pytest.mark.parametrize("model", ["alias-o", "mock-03"])
async def test_genai_count_tokens_estimated_elsewhere(nursery, provider, tdir, model):
    _files(tdir, provider)
    gw = await start_gateway(nursery, tdir, ENV)
    text = "word " * 200  # 1000 characters: about 250 tokens

    def call():
        with _client(gw) as client:
            return client.models.count_tokens(model=model, contents=text)

    counted = await trio.to_thread.run_sync(call)
    assert 200 <= counted.total_tokens <= 300
    assert provider.seen == []  # estimated: no provider asked
    async with httpx.AsyncClient(base_url=gw.url) as client:
        reply = await client.post(
            f"/v1beta/models/{model}:countTokens", json={"contents": [{"parts": [{"text": text}]}]}
        )
    assert reply.headers["x-gateway-token-count"] == "estimated"
    assert reply.json() == {"totalTokens": counted.total_tokens}


async def test_count_tokens_errors_are_gemini_shaped(nursery, provider, tdir):
    _files(tdir, provider)
    gw = await start_gateway(nursery, tdir, ENV)
    async with httpx.AsyncClient(base_url=gw.url) as client:
        no_contents = await client.post("/v1beta/models/alias-g:countTokens", json={"x": 1})
        unknown = await client.post(
            "/v1beta/models/nope:countTokens", json={"contents": [{"parts": [{"text": "x"}]}]}
        )
        bad_method = await client.post("/v1beta/models/alias-g:embedStuff", json={})
    assert no_contents.status_code == 400
    assert no_contents.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert "contents" in no_contents.json()["error"]["message"]
    assert unknown.status_code == 404
    assert unknown.json()["error"]["status"] == "NOT_FOUND"
    assert bad_method.status_code == 404
    assert "countTokens" in bad_method.json()["error"]["message"]
    assert provider.seen == []
