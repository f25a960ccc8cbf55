"""gateway.frontends: what every front end shares (the JSON body, required fields, the query)."""

from __future__ import annotations

import pytest

from gateway.errors import BadRequest
from gateway.frontends import parse_json_object, query_params, require
from tests.formats.helpers import FakeRequest


def test_a_json_object_is_read() -> None:
    assert parse_json_object(b'{"model": "m", "n": [1, 2.5, null]}') == {
        "model": "m",
        "n": [1, 2.5, None],
    }


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"", "empty"),
        (b"{", "not valid JSON: Expecting property name"),
        (b"[1, 2]", "must be a JSON object, not list"),
        (b'"text"', "must be a JSON object, not str"),
        (b'{"a": "\xff"}', "not UTF-8"),
        (b'{"x": NaN}', "NaN is not a JSON number"),
        (b'{"x": -Infinity}', "-Infinity is not a JSON number"),
        (b'{"x": ' + b"9" * 5000 + b"}", "digits"),
        (b"[" * 65 + b"]" * 65, "more than 64 levels deep"),
    ],
)
def test_what_is_not_a_json_object_is_a_400_saying_why(raw: bytes, says: str) -> None:
    with pytest.raises(BadRequest, match=says):
        parse_json_object(raw)


def test_the_depth_limit_is_the_requests() -> None:
    assert parse_json_object(b'{"a": [[[1]]]}', max_depth=4) == {"a": [[[1]]]}
    with pytest.raises(BadRequest, match="more than 3 levels"):
        parse_json_object(b'{"a": [[[1]]]}', max_depth=3)


def test_big_bodies_decode_the_same() -> None:
    raw = b'{"messages": [' + b",".join([b'{"role": "user", "content": "x"}'] * 5000) + b"]}"
    assert len(raw) > 64 * 1024  # the decode that lets other threads run
    assert len(parse_json_object(raw)["messages"]) == 5000


def test_require() -> None:
    body = {"model": "m", "empty": "", "messages": "no"}
    assert require(body, "model", str, "a model name string") == "m"
    with pytest.raises(BadRequest, match=r"The request needs 'contents' \(a list of contents\)"):
        require(body, "contents", list, "a list of contents")
    with pytest.raises(BadRequest, match="'empty' must be a model name string"):
        require(body, "empty", str, "a model name string")
    with pytest.raises(BadRequest, match="'messages' must be a list of messages"):
        require(body, "messages", list, "a list of messages")


def test_query_params_are_decoded_and_the_first_wins() -> None:
    request = FakeRequest(query="alt=sse&pageSize=&alt=json&key=a%2Fb&flag")
    assert query_params(request) == {"alt": "sse", "pageSize": "", "key": "a/b", "flag": ""}
    assert query_params(FakeRequest()) == {}
