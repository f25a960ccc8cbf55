"""The canonical model: frozen, tuple-based, with the documented defaults."""

from __future__ import annotations

import attrs
import pytest

from gateway.convert.model import (
    Message,
    Request,
    Response,
    StopReason,
    Text,
    ToolCall,
    Usage,
)


def test_request_is_frozen_and_evolvable() -> None:
    req = Request(model="m", messages=(Message("user", (Text("hi"),)),))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        req.model = "x"  # type: ignore[misc]
    assert attrs.evolve(req, stream=True).stream is True
    assert req.extra == {}
    assert req.stop == ()


def test_defaults() -> None:
    resp = Response(id="r", model="m", content=(ToolCall("c1", "f"),))
    assert resp.stop_reason is StopReason.END_TURN
    assert resp.usage == Usage()
    assert resp.content[0].arguments == "{}"  # type: ignore[union-attr]
    assert Usage(input_tokens=3, output_tokens=4).total_tokens == 7


def test_stop_reason_values_are_strings() -> None:
    assert StopReason("tool_use") is StopReason.TOOL_USE
    assert StopReason.CONTEXT_WINDOW.value == "context_window_exceeded"
