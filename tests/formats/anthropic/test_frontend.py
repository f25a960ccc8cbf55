"""gateway.formats.anthropic.frontend: the Anthropic client endpoints."""

from __future__ import annotations

import json

import pytest

from gateway.errors import BadRequest
from gateway.formats import FORMATS
from gateway.formats.anthropic.frontend import read_count_tokens, read_messages
from tests.formats.helpers import FakeRequest

BODY = {"model": "claude", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


def _request(body: object) -> FakeRequest:
    return FakeRequest(body=json.dumps(body).encode())


def test_messages_reads_a_call() -> None:
    call = read_messages(_request({**BODY, "stream": True}))
    assert (call.fmt, call.op, call.model, call.stream) == ("anthropic", "messages", "claude", True)
    assert call.size == len(json.dumps({**BODY, "stream": True}).encode())


def test_count_tokens_never_streams() -> None:
    call = read_count_tokens(_request({**BODY, "stream": True}))
    assert (call.op, call.stream) == ("count_tokens", False)


@pytest.mark.parametrize("read", [read_messages, read_count_tokens])
@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"messages": []}, "needs 'model'"),
        ({"model": "m"}, "needs 'messages'"),
        ({"model": "m", "messages": "hi"}, "'messages' must be a list of messages"),
    ],
)
def test_refuses_what_it_needs_and_cannot_find(read: object, body: object, says: str) -> None:
    with pytest.raises(BadRequest, match=says):
        read(_request(body))  # type: ignore[operator]


def test_endpoints() -> None:
    endpoints = {(e.method, e.path): e for e in FORMATS["anthropic"].endpoints}
    assert endpoints["POST", "/v1/messages"].read is read_messages
    assert endpoints["POST", "/v1/messages/count_tokens"].read is read_count_tokens
