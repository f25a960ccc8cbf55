"""gateway.formats.anthropic.wire: Anthropic Messages on the wire."""

from __future__ import annotations

import pytest

from gateway.call import Call
from gateway.errors import BadRequest
from gateway.formats import FORMATS, format_for_path
from gateway.formats.anthropic import wire
from gateway.proxy.upstream_request import upstream_headers, upstream_url
from tests.formats.helpers import FakeExchange, FakeRequest, transformer

STOP = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
DELTA = (
    b"event: message_delta\n"
    b'data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{}}\n\n'
)
TEXT = (
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}}\n\n'
)


def test_the_format_is_registered_with_this_wire() -> None:
    assert FORMATS["anthropic"].wire is wire
    assert wire.NAME == "anthropic"


@pytest.mark.parametrize(
    ("op", "path"), [("messages", "/messages"), ("count_tokens", "/messages/count_tokens")]
)
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_url(op: str, path: str, stream: bool) -> None:
    call = Call("anthropic", op, "m", stream and op == "messages", {})
    t = transformer("anthropic", query=(("beta", "true"),))
    assert upstream_url(t, call, "claude") == f"https://up.example/v1{path}?beta=true"


def test_headers_default_the_version_and_forward_the_clients() -> None:
    plain = upstream_headers(FakeExchange(FakeRequest()), transformer("anthropic"), "k")  # type: ignore[arg-type]
    assert ("anthropic-version", wire.ANTHROPIC_VERSION) in plain
    assert not any(name == "anthropic-beta" for name, _ in plain)
    assert plain[-1] == ("x-api-key", "k")
    ex = FakeExchange(
        FakeRequest(
            headers=[
                (b"anthropic-version", b"2024-01-01"),
                (b"anthropic-beta", b"tools-2024"),
                (b"openai-beta", b"nope"),
            ]
        )
    )
    headers = upstream_headers(ex, transformer("anthropic"), None)  # type: ignore[arg-type]
    assert headers[3:] == [("anthropic-version", "2024-01-01"), ("anthropic-beta", "tools-2024")]


def test_a_non_ascii_forwarded_header_is_a_400_naming_it() -> None:
    ex = FakeExchange(FakeRequest(headers=[(b"anthropic-beta", b"caf\xc3\xa9")]))
    with pytest.raises(BadRequest, match="anthropic-beta header"):
        upstream_headers(ex, transformer("anthropic"), None)  # type: ignore[arg-type]


def test_keepalive_is_a_ping_event() -> None:
    assert wire.KEEPALIVE == b'event: ping\ndata: {"type":"ping"}\n\n'


@pytest.mark.parametrize("last", [STOP, DELTA, b'event: error\ndata: {"type":"error"}\n\n'])
def test_terminal_markers_find_the_end_of_a_stream(last: bytes) -> None:
    assert any(marker in last for marker in wire.TERMINAL_MARKERS)
    assert not any(marker in TEXT for marker in wire.TERMINAL_MARKERS)


def test_max_tokens_field() -> None:
    body = {"max_tokens": 9000}
    wire.clamp_max_tokens(body, 100)
    assert body == {"max_tokens": 100}
    body = {}
    wire.clamp_max_tokens(body, 100)
    assert body == {"max_tokens": 100}


def test_answers_usage_and_counts() -> None:
    assert (wire.ANSWER_FIELD, wire.EMPTY_ANSWER_OK) == ("content", True)
    start = wire.read_usage({"input_tokens": 10, "output_tokens": 1}, None)
    delta = wire.read_usage({"output_tokens": 5}, start)  # message_delta updates message_start
    assert (delta.input_tokens, delta.output_tokens) == (10, 5)
    assert wire.count_tokens_body({"model": "x"}, "y") is None  # edited like any body
    assert wire.count_answer(12) == {"input_tokens": 12}


def test_client_paths() -> None:
    assert wire.answers_path("/v1/messages/count_tokens")
    assert format_for_path("/v1/messages/nope").name == "anthropic"
