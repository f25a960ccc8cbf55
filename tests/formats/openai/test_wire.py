"""gateway.formats.openai.wire: OpenAI Chat Completions on the wire."""

from __future__ import annotations

import pytest

from gateway.call import Call
from gateway.formats import FORMATS, format_for_path
from gateway.formats.openai import wire
from gateway.proxy.upstream_request import upstream_headers, upstream_url
from tests.formats.helpers import FakeExchange, FakeRequest, transformer

FINISH = b'data: {"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
DELTA = (
    b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}\n\n'
)


def _call(stream: bool = False) -> Call:
    return Call("openai", "chat", "m", stream, {"model": "m", "messages": []})


def test_the_format_is_registered_with_this_wire() -> None:
    assert FORMATS["openai"].wire is wire
    assert wire.NAME == "openai"


@pytest.mark.parametrize("stream", [False, True])
def test_upstream_url_is_chat_completions_with_the_files_query(stream: bool) -> None:
    t = transformer("openai", query=(("api-version", "2024-10-21"),))
    assert (
        upstream_url(t, _call(stream), "gpt/4o")
        == "https://up.example/v1/chat/completions?api-version=2024-10-21"
    )
    assert wire.upstream_target("m", stream=stream, count_tokens=False) == ("/chat/completions", ())


def test_headers_forward_openai_beta_only() -> None:
    ex = FakeExchange(
        FakeRequest(headers=[(b"openai-beta", b"assistants=v2"), (b"anthropic-beta", b"x")])
    )
    headers = upstream_headers(ex, transformer("openai"), "sk-key")  # type: ignore[arg-type]
    assert headers == [
        ("content-type", "application/json"),
        ("accept-encoding", "identity"),
        ("x-request-id", "req-1"),
        ("openai-beta", "assistants=v2"),
        ("authorization", "Bearer sk-key"),
    ]


def test_keepalive_is_an_sse_comment() -> None:
    assert wire.KEEPALIVE == b": keep-alive\n\n"
    assert wire.KEEPALIVE.startswith(b":")


@pytest.mark.parametrize(
    "last",
    [FINISH, b"data: [DONE]\n\n", b'data: {"error":{"message":"x"}}\n\n'],
)
def test_terminal_markers_find_the_end_of_a_stream(last: bytes) -> None:
    assert any(marker in last for marker in wire.TERMINAL_MARKERS)
    assert not any(marker in DELTA for marker in wire.TERMINAL_MARKERS)


def test_max_tokens_field() -> None:
    body = {"max_completion_tokens": 9000}
    wire.clamp_max_tokens(body, 100)
    assert body == {"max_completion_tokens": 100}
    body = {"max_tokens": 50}
    wire.clamp_max_tokens(body, 100)
    assert body == {"max_tokens": 50}
    body = {}
    wire.clamp_max_tokens(body, 100)
    assert body == {"max_tokens": 100}


def test_answers_and_usage() -> None:
    assert (wire.ANSWER_FIELD, wire.EMPTY_ANSWER_OK, wire.BLOCKED_FIELD) == ("choices", False, None)
    usage = wire.read_usage({"prompt_tokens": 3, "completion_tokens": 4}, None)
    assert (usage.input_tokens, usage.output_tokens) == (3, 4)
    assert wire.MODEL_IN_BODY


def test_client_paths() -> None:
    assert wire.answers_path("/v1/chat/completions")
    assert not wire.answers_path("/v1/messages")
    assert format_for_path("/v1/chat/completion").name == "openai"
    assert format_for_path("/health/nope").name == "openai"  # the default
