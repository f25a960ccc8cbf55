"""Compact JSON for upstream bodies, reusing the encoding of messages encoded before.

Theory of operation: with a :class:`~gateway.convert.memo.Memo`, a conversation's unchanged
messages render to the very same dicts on every request, so their JSON text can be made once
too. A renderer that has those texts returns the message list as an :class:`EncodedList`
(a plain list that also carries ``encodings``, one per element, None where there is none);
:func:`dumps_body` writes every other value with the same encoder and splices the texts in,
so the bytes are exactly those ``json.dumps`` would give. For a coding agent's request most
of the body is history: encoding it is the larger part of the cost of sending it on.

A lone surrogate (``"\\ud800"`` in a client's JSON: Node's ``JSON.stringify`` writes one when
it cuts a string inside an emoji) decodes to a str that UTF-8 cannot encode; it is written
back as the same ``\\ud800`` escape (``backslashreplace`` gives exactly JSON's escape, and
the encoder only leaves such characters inside strings), so it reaches the provider as the
client sent it instead of failing the request. The stream renderers do the same.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["EncodedList", "dumps_body", "encode"]

#: ``json.dumps(value, separators=(",", ":"), ensure_ascii=False)``, built once.
encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


class EncodedList(list[Any]):
    """A list whose elements may come with their JSON text: ``encodings[i]`` or None.

    Made by a renderer and not modified afterwards; if its length no longer matches
    ``encodings``, :func:`dumps_body` encodes it whole.
    """

    __slots__ = ("encodings",)

    def __init__(self, items: list[Any], encodings: list[str | None]) -> None:
        super().__init__(items)
        self.encodings = encodings


def _value(value: Any) -> str:
    if type(value) is EncodedList and len(value.encodings) == len(value):
        texts = value.encodings
        return (
            "["
            + ",".join(
                text if text is not None else encode(v)
                for v, text in zip(value, texts, strict=True)
            )
            + "]"
        )
    return encode(value)


def dumps_body(body: dict[str, Any]) -> bytes:
    """``json.dumps(body)``, compact and UTF-8, with the texts an EncodedList carries.

    Only ``messages`` is looked at (the one field renderers make an EncodedList).
    """
    if type(body.get("messages")) is not EncodedList:  # the one field renderers make so
        return encode(body).encode("utf-8", "backslashreplace")
    inner = ",".join(f"{encode(k)}:{_value(v)}" for k, v in body.items())
    return ("{" + inner + "}").encode("utf-8", "backslashreplace")
