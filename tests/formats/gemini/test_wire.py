"""gateway.formats.gemini.wire: Gemini generateContent on the wire."""

from __future__ import annotations

import pytest

from gateway.call import Call
from gateway.errors import NotFound
from gateway.formats import FORMATS, format_for_path
from gateway.formats.gemini import wire
from gateway.proxy.upstream_request import upstream_headers, upstream_url
from tests.formats.helpers import FakeExchange, FakeRequest, transformer

LAST = b'data: {"candidates":[{"content":{"parts":[]},"finishReason":"STOP"}]}\r\n\r\n'
MIDDLE = b'data: {"candidates":[{"content":{"parts":[{"text":"x"}]}}]}\r\n\r\n'


def test_the_format_is_registered_with_this_wire() -> None:
    assert FORMATS["gemini"].wire is wire
    assert wire.NAME == "gemini"


@pytest.mark.parametrize(
    ("op", "stream", "tail"),
    [
        ("generate", False, ":generateContent?key2=v"),
        ("generate", True, ":streamGenerateContent?key2=v&alt=sse"),
        ("count_tokens", False, ":countTokens?key2=v"),
    ],
)
def test_upstream_url_names_the_model_and_method(op: str, stream: bool, tail: str) -> None:
    call = Call("gemini", op, "m", stream, {})
    t = transformer("gemini", query=(("key2", "v"),))
    url = upstream_url(t, call, "qwen2.5:7b/x?y")
    assert url == "https://up.example/v1/models/qwen2.5%3A7b%2Fx%3Fy" + tail


@pytest.mark.parametrize("model", [".", ".."])
def test_a_model_that_would_change_the_path_is_refused(model: str) -> None:
    with pytest.raises(Exception, match="model"):
        wire.upstream_target(model, stream=False, count_tokens=False)


def test_headers_forward_nothing_of_the_clients() -> None:
    ex = FakeExchange(FakeRequest(headers=[(b"anthropic-version", b"1"), (b"openai-beta", b"2")]))
    headers = upstream_headers(ex, transformer("gemini"), "AIza-key")  # type: ignore[arg-type]
    assert headers == [
        ("content-type", "application/json"),
        ("accept-encoding", "identity"),
        ("x-request-id", "req-1"),
        ("x-goog-api-key", "AIza-key"),
    ]


def test_keepalive_is_a_bare_line_end() -> None:
    assert wire.KEEPALIVE == b"\r\n"


@pytest.mark.parametrize(
    "last",
    [LAST, b'data: {"promptFeedback":{"blockReason":"SAFETY"}}\r\n\r\n', b'data: {"error":{}}\n\n'],
)
def test_terminal_markers_find_the_end_of_a_stream(last: bytes) -> None:
    assert any(marker in last for marker in wire.TERMINAL_MARKERS)
    assert not any(marker in MIDDLE for marker in wire.TERMINAL_MARKERS)


def test_max_tokens_field() -> None:
    body = {"generationConfig": {"maxOutputTokens": 9000, "temperature": 1}}
    wire.clamp_max_tokens(body, 100)
    assert body == {"generationConfig": {"maxOutputTokens": 100, "temperature": 1}}
    body = {}
    wire.clamp_max_tokens(body, 100)
    assert body == {"generationConfig": {"maxOutputTokens": 100}}


def test_count_tokens_bodies() -> None:
    inner = {"model": "models/alias", "contents": []}
    assert wire.count_tokens_body({"generateContentRequest": inner}, "up") == {
        "generateContentRequest": {"model": "models/up", "contents": []}
    }
    assert wire.count_tokens_body({"contents": []}, "up") == {"contents": []}
    assert wire.count_request({"generateContentRequest": inner}) is inner
    assert wire.count_request({"contents": [1]}) == {"contents": [1]}
    assert wire.count_answer(3) == {"totalTokens": 3}


def test_answers_and_usage() -> None:
    assert (wire.ANSWER_FIELD, wire.BLOCKED_FIELD) == ("candidates", "promptFeedback")
    assert not wire.MODEL_IN_BODY
    usage = wire.read_usage({"promptTokenCount": 2, "candidatesTokenCount": 5}, None)
    assert (usage.input_tokens, usage.output_tokens) == (2, 5)


def test_client_paths() -> None:
    assert wire.answers_path("/v1beta/models/x:generateContent")
    assert wire.answers_path("/v1/models/x:streamGenerateContent")
    assert not wire.answers_path("/v1/models/x")  # the OpenAI model lookup
    assert format_for_path("/v1beta/models/a/b:nope").name == "gemini"
    assert format_for_path("/v1/models/x").name == "openai"


@pytest.mark.parametrize(
    ("rest", "expected"),
    [
        ("gemini-2.5-flash:generateContent", ("gemini-2.5-flash", "generateContent")),
        ("gemini-2.5-flash:streamGenerateContent", ("gemini-2.5-flash", "streamGenerateContent")),
        ("openrouter/qwen2.5:7b:generateContent", ("openrouter/qwen2.5:7b", "generateContent")),
        ("a:b:c:countTokens", ("a:b:c", "countTokens")),
    ],
)
def test_split_target(rest: str, expected: tuple[str, str]) -> None:
    assert wire.split_target(rest) == expected


@pytest.mark.parametrize("rest", ["gemini-2.5-flash", ":generateContent", "gemini-2.5-flash:", ""])
def test_split_target_rejects(rest: str) -> None:
    with pytest.raises(NotFound, match="expected models/"):
        wire.split_target(rest)
