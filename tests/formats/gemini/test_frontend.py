"""gateway.formats.gemini.frontend and models: the Gemini client endpoints."""

from __future__ import annotations

import json

import pytest

from gateway.errors import BadRequest, MethodNotAllowed, ModelNotFound, NotFound
from gateway.formats import FORMATS
from gateway.formats.gemini.frontend import read_call, stream_alt, wants_json_array
from gateway.formats.gemini.models import (
    MAX_PAGE_SIZE,
    PAGE_SIZE,
    answer_model,
    answer_models,
    list_page,
    page_token,
)
from gateway.routing import RegistryCatalog
from gateway.transformers.model import ModelEntry
from gateway.transformers.registry import make_registry
from tests.formats.helpers import FakeRequest, transformer

BODY = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


def _post(rest: str, body: object = BODY, query: str = "") -> FakeRequest:
    return FakeRequest(body=json.dumps(body).encode(), params={"rest": rest}, query=query)


@pytest.mark.parametrize(
    ("rest", "op", "stream"),
    [
        ("gemini-2.5-flash:generateContent", "generate", False),
        ("gemini-2.5-flash:streamGenerateContent", "generate", True),
        ("gemini-2.5-flash:countTokens", "count_tokens", False),
    ],
)
def test_the_method_decides_op_and_stream(rest: str, op: str, stream: bool) -> None:
    call = read_call(_post(rest, query="alt=sse"))
    assert (call.fmt, call.op, call.model, call.stream) == (
        "gemini",
        op,
        "gemini-2.5-flash",
        stream,
    )


def test_a_model_may_hold_slashes_and_colons() -> None:
    assert (
        read_call(_post("openrouter/qwen2.5:7b:generateContent")).model == "openrouter/qwen2.5:7b"
    )


def test_count_tokens_takes_a_generate_content_request() -> None:
    body = {"generateContentRequest": {"model": "models/x", **BODY}}
    assert read_call(_post("x:countTokens", body)).body == body
    with pytest.raises(BadRequest, match="needs 'contents'"):
        read_call(_post("x:countTokens", {"generateContentRequest": {"model": "x"}}))


@pytest.mark.parametrize(
    ("rest", "error", "says"),
    [
        ("x:embedContent", NotFound, "Unknown method 'embedContent'"),
        ("x", NotFound, "expected models/"),
        ("x\x00:generateContent", BadRequest, "control character"),
    ],
)
def test_paths_it_cannot_serve(rest: str, error: type[Exception], says: str) -> None:
    with pytest.raises(error, match=says):
        read_call(_post(rest))


def test_bodies_it_cannot_read() -> None:
    with pytest.raises(BadRequest, match="needs 'contents'"):
        read_call(_post("x:generateContent", {"model": "x"}))
    with pytest.raises(BadRequest, match="not valid JSON"):
        read_call(FakeRequest(body=b"{", params={"rest": "x:generateContent"}))


@pytest.mark.parametrize(
    ("query", "alt"),
    [
        ("", "json"),
        ("alt=json", "json"),
        ("alt=sse", "sse"),
        ("$alt=sse", "sse"),
        ("alt=sse&alt=x", "sse"),
    ],
)
def test_stream_alt(query: str, alt: str) -> None:
    assert stream_alt(FakeRequest(query=query)) == alt
    assert wants_json_array(FakeRequest(query=query)) == (alt == "json")


def test_an_alt_it_cannot_frame_is_a_400_before_the_body_is_read() -> None:
    with pytest.raises(BadRequest, match="Unsupported alt='proto'"):
        read_call(
            FakeRequest(body=b"", params={"rest": "x:streamGenerateContent"}, query="alt=proto")
        )
    assert read_call(_post("x:generateContent", query="alt=proto")).op == "generate"  # not a stream


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", (0, PAGE_SIZE)),
        ("pageSize=0", (0, PAGE_SIZE)),
        ("pageSize=7", (0, 7)),
        ("pageSize=999999", (0, MAX_PAGE_SIZE)),
        (f"pageSize=3&pageToken={page_token(6)}", (6, 3)),
    ],
)
def test_list_page(query: str, expected: tuple[int, int]) -> None:
    assert list_page(FakeRequest(query=query)) == expected


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("pageSize=-1", "pageSize must be a whole number"),
        ("pageSize=x", "pageSize must be a whole number"),
        ("pageToken=abc", "pageToken is not one this gateway issued"),
        ("pageToken=%%%", "pageToken is not one this gateway issued"),
    ],
)
def test_list_page_refuses(query: str, says: str) -> None:
    with pytest.raises(BadRequest, match=says):
        list_page(FakeRequest(query=query))


def _registry(n: int) -> object:
    models = {f"m{i}": ModelEntry(f"up{i}", max_tokens=100 if i == 0 else None) for i in range(n)}
    return make_registry([transformer("gemini", models=models)])


def test_the_list_is_paged() -> None:
    registry = RegistryCatalog(_registry(5))
    first = answer_models(FakeRequest(query="pageSize=2"), registry)
    assert [m["name"] for m in first["models"]] == ["models/m0", "models/m1"]
    assert first["models"][0]["outputTokenLimit"] == 100
    rest = answer_models(
        FakeRequest(query=f"pageSize=10&pageToken={first['nextPageToken']}"),
        registry,
    )
    assert [m["name"] for m in rest["models"]] == ["models/m2", "models/m3", "models/m4"]
    assert "nextPageToken" not in rest


def test_one_model() -> None:
    registry = RegistryCatalog(_registry(1))
    found = answer_model(FakeRequest(params={"model": "m0"}), registry)
    assert found["supportedGenerationMethods"] == [
        "generateContent",
        "streamGenerateContent",
        "countTokens",
    ]
    with pytest.raises(ModelNotFound):
        answer_model(FakeRequest(params={"model": "nope"}), registry)
    with pytest.raises(MethodNotAllowed, match="use POST"):
        answer_model(
            FakeRequest(
                params={"model": "m0:generateContent"}, path="/v1beta/models/m0:generateContent"
            ),
            registry,
        )


def test_endpoints() -> None:
    endpoints = {(e.method, e.path): e for e in FORMATS["gemini"].endpoints}
    for path in ("/v1beta/models/{rest:path}", "/v1/models/{rest:path}"):
        assert endpoints["POST", path].read is read_call
        assert endpoints["POST", path].json_array is wants_json_array
    assert endpoints["GET", "/v1beta/models"].answer is answer_models
    assert endpoints["GET", "/v1beta/models/{model:path}"].answer is answer_model
