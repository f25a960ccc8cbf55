"""Small shared helpers for the format converters: typed field access, JSON, data URLs.

Contract: client bodies are read leniently (unknown fields are kept aside, never a
400 on their own, design.md "Client bodies"), but a known field of the wrong type
is a :class:`~gateway.errors.BadRequest` naming the field by its JSON path, never a
KeyError or TypeError escaping from a converter.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from gateway.errors import BadRequest

#: Compact JSON as it goes on the wire (no spaces; UTF-8 kept as is). One encoder
#: built once: ``json.dumps`` with arguments builds a new encoder on every call.
dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
#: A str as a JSON string literal (the C fast path); the stream renderers' hot path.
jstr = json.encoder.encode_basestring

_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    list: "an array",
    dict: "an object",
}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def bad_type(path: str, expected: str, value: Any) -> BadRequest:
    return BadRequest(f"`{path}` must be {expected}, not {_json_type(value)}.")


def expect_dict(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad_type(path, "an object", value)
    return value


def expect_list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise bad_type(path, "an array", value)
    return value


def expect_str(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise bad_type(path, "a string", value)
    return value


def field_path(path: str, key: str) -> str:
    """``path.key`` (just ``key`` at the top level): built only when an error names it."""
    return f"{path}.{key}" if path else key


# The opt_* readers are on every request's hot path: the common case (absent or of the
# right type) returns at once, and the JSON path of the field is only built for an error.


def opt_str(d: Mapping[str, Any], key: str, path: str) -> str | None:
    value = d.get(key)
    if value is None or isinstance(value, str):
        return value
    raise bad_type(field_path(path, key), "a string", value)


def opt_bool(d: Mapping[str, Any], key: str, path: str) -> bool | None:
    value = d.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise bad_type(field_path(path, key), "a boolean", value)


def opt_int(d: Mapping[str, Any], key: str, path: str) -> int | None:
    value = d.get(key)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_type(field_path(path, key), "an integer", value)
    return value


def opt_num(d: Mapping[str, Any], key: str, path: str) -> float | None:
    value = d.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad_type(field_path(path, key), "a number", value)
    return value


def opt_dict(d: Mapping[str, Any], key: str, path: str) -> dict[str, Any] | None:
    value = d.get(key)
    if value is None or isinstance(value, dict):
        return value
    raise bad_type(field_path(path, key), "an object", value)


def opt_list(d: Mapping[str, Any], key: str, path: str) -> list[Any] | None:
    value = d.get(key)
    if value is None or isinstance(value, list):
        return value
    raise bad_type(field_path(path, key), "an array", value)


def str_or_list(d: Mapping[str, Any], key: str, path: str) -> tuple[str, ...]:
    """A field that is a string or an array of strings (OpenAI ``stop``)."""
    value = d.get(key)
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    where = field_path(path, key)
    items = expect_list(value, where)
    return tuple(expect_str(v, f"{where}[{i}]") for i, v in enumerate(items))


def items(value: Any) -> list[Any]:
    """An upstream array field, or ``[]`` when it is missing or not an array."""
    return value if isinstance(value, list) else []


def int_field(d: Mapping[str, Any] | None, key: str) -> int:
    """A token count from an upstream body: missing, null or junk counts as 0."""
    if not d:
        return 0
    value = d.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    return int(value)


# -- JSON arguments ------------------------------------------------------------------------


def args_object(text: str) -> tuple[dict[str, Any], bool]:
    """Parse tool-call arguments into an object.

    Returns ``(object, ok)``: empty text is ``{}`` (a call without arguments);
    text that is not a JSON object becomes ``{"raw_input": text}`` with ok False
    (wire-formats §5.4 item 26: never crash on a truncated argument string).
    """
    if not text or text.isspace():
        return {}, True
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than Python recurses
        return {"raw_input": text}, False
    if isinstance(value, dict):
        return value, True
    return {"raw_input": text}, False


# -- data URLs and base64 ------------------------------------------------------------------


def parse_data_url(url: str) -> tuple[str, str] | None:
    """``data:<mime>;base64,<data>`` -> ``(mime, data)``; None for anything else."""
    if not url.startswith("data:"):
        return None
    head, sep, data = url.partition(",")
    if not sep or not head.endswith(";base64"):
        return None
    mime = head[5 : -len(";base64")].split(";")[0] or "application/octet-stream"
    return mime, data


def make_data_url(media_type: str, data: str) -> str:
    if data.startswith("data:"):
        return data
    if data.startswith("base64,"):
        data = data[len("base64,") :]
    return f"data:{media_type};base64,{data}"


def b64_to_text(data: str) -> str | None:
    try:
        return base64.b64decode(data, validate=False).decode("utf-8", "surrogatepass")
    except (binascii.Error, ValueError):
        return None


def text_to_b64(text: str) -> str:
    # surrogatepass: a lone surrogate (valid in JSON) survives the trip (b64_to_text).
    return base64.b64encode(text.encode("utf-8", "surrogatepass")).decode("ascii")


def check_portable_url(url: str) -> None:
    """Refuse a Gemini Files API / Cloud Storage URI on the way to another provider."""
    if url.startswith("gs://") or ("generativelanguage.googleapis.com" in url and "/files/" in url):
        raise BadRequest(
            f"{url!r} is a Gemini file reference that other providers cannot read; "
            "send the file inline as base64 instead."
        )


_EXT_MIME = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "heic": "image/heic",
    "heif": "image/heif",
    "pdf": "application/pdf",
    "txt": "text/plain",
    "wav": "audio/wav",
    "mp3": "audio/mp3",
}


def guess_mime(url: str, default: str) -> str:
    path = url.split("?", 1)[0].split("#", 1)[0]
    ext = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    return _EXT_MIME.get(ext, default)
