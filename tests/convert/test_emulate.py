"""Stream emulation: a whole response as a well-formed stream for every client, and back."""

from __future__ import annotations

import pytest

from gateway.convert.emulate import accumulate, response_to_stream, split_text
from gateway.convert.model import (
    RedactedThinking,
    Response,
    StopReason,
    StreamError,
    Text,
    TextDelta,
    Thinking,
    ToolCall,
    Usage,
)
from gateway.errors import ErrorKind, UpstreamError
from gateway.formats import FORMAT_NAMES, FORMATS
from tests import sdk

RESP = Response(
    id="r9",
    model="up",
    content=(
        Thinking("hmm", "sig", "anthropic"),
        RedactedThinking("ENC"),
        Text("one two three four five"),
        ToolCall("call_1", "f", '{"a":1}'),
    ),
    stop_reason=StopReason.TOOL_USE,
    usage=Usage(10, 20, 3, 1, 4),
)


def test_round_trip_is_exact() -> None:
    events = response_to_stream(RESP, text_pieces=3)
    assert sum(isinstance(e, TextDelta) for e in events) == 3
    assert accumulate(events) == RESP


def test_split_text() -> None:
    assert "".join(split_text("a b c d e", 2)) == "a b c d e"
    assert split_text("", 3) == []
    assert split_text("x", 5) == ["x"]


def test_accumulate_raises_stream_errors() -> None:
    with pytest.raises(UpstreamError) as info:
        accumulate([TextDelta("x"), StreamError(ErrorKind.OVERLOADED, "busy", 503)])
    assert info.value.kind is ErrorKind.OVERLOADED
    assert info.value.status_hint == 503


@pytest.mark.parametrize("fmt", FORMAT_NAMES)
def test_emulated_stream_is_read_by_the_sdk(fmt: str) -> None:
    renderer = FORMATS[fmt].stream_renderer("client", include_usage=True)
    data = (
        b"".join(renderer.render(e) for e in response_to_stream(RESP, text_pieces=2))
        + renderer.finish()
    )
    if fmt == "anthropic":
        msg = sdk.anthropic_stream(data)
        assert [b.type for b in msg.content] == [
            "thinking",
            "redacted_thinking",
            "text",
            "tool_use",
        ]
        assert msg.usage.output_tokens == 20
    elif fmt == "openai":
        final = sdk.openai_final(data)
        assert final.choices[0].message.content == "one two three four five"
        assert final.choices[0].message.tool_calls[0].function.arguments == '{"a":1}'  # type: ignore[index,union-attr]
    else:
        chunks = sdk.gemini_stream(data)
        text = "".join(
            p.text or "" for c in chunks for p in c.candidates[0].content.parts if not p.thought
        )  # type: ignore[index,union-attr]
        assert text == "one two three four five"
