"""gateway.convert.encoded: spliced message texts give exactly json.dumps's bytes."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.convert.encoded import EncodedList, dumps_body, encode


def _plain(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


MESSAGES = [
    {"role": "system", "content": 'Be brief. «ünïcødé» \u2028 and "quotes"\n'},
    {"role": "user", "content": [{"type": "text", "text": "hi"}]},
    {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function"}]},
    {"role": "tool", "tool_call_id": "c1", "content": "1.5e300 \x00 done"},
]


def test_spliced_texts_give_the_same_bytes() -> None:
    texts: list[str | None] = [encode(m) for m in MESSAGES]
    texts[2] = None  # not every element has a text
    body = {"model": "m", "messages": EncodedList(MESSAGES, texts), "temperature": 0.5}
    assert dumps_body(body) == _plain(body)
    assert json.loads(dumps_body(body)) == {**body, "messages": MESSAGES}


def test_the_texts_are_what_is_sent() -> None:
    """The texts are trusted (they are the memo's encodings of these very dicts)."""
    body = {"messages": EncodedList([{"a": 1}], ['{"a":2}'])}
    assert dumps_body(body) == b'{"messages":[{"a":2}]}'


def test_a_list_changed_after_it_was_made_is_encoded_whole() -> None:
    msgs = EncodedList(MESSAGES[:2], [encode(m) for m in MESSAGES[:2]])
    msgs.append({"role": "user", "content": "more"})
    body = {"messages": msgs, "model": "m"}
    assert dumps_body(body) == _plain(body)


def test_bodies_without_an_encoded_list() -> None:
    for body in ({}, {"messages": []}, {"messages": list(MESSAGES)}, {"contents": MESSAGES}):
        assert dumps_body(body) == _plain(body)
    assert dumps_body({"messages": EncodedList([], [])}) == b'{"messages":[]}'


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.dictionaries(st.text(), _JSON, max_size=4), st.booleans()), max_size=6),
    st.dictionaries(st.text().filter(lambda k: k != "messages"), _JSON, max_size=4),
)
def test_any_messages_and_fields(items: list[tuple[dict[str, Any], bool]], rest: Any) -> None:
    msgs = [m for m, _ in items]
    texts = [encode(m) if known else None for m, known in items]
    body = {**rest, "messages": EncodedList(msgs, texts)}
    assert dumps_body(body) == _plain(body)
