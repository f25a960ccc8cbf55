"""What every front end shares: the client's request, its JSON body, its query.

A front end reads a client request of one wire format into a
:class:`~gateway.call.Call` (``gateway/formats/<fmt>/frontend.py``, listed as
that format's endpoints). Bodies are read leniently (design.md): fields the
gateway does not know pass through untouched; only what it needs and cannot
find is a 400 (a body that is not a JSON object, no ``model``, no ``messages``
/ ``contents``), and the message says what to fix. The route's format decides
the error body's shape.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import parse_qsl

from gateway.errors import BadRequest
from gateway.server.jsonscan import DEFAULT_MAX_JSON_DEPTH, json_depth_over

__all__ = ["ClientRequest", "parse_json_object", "query_params", "require"]

#: Bodies over this size are decoded so that other threads (the event loop) get turns.
#: Smaller ones are decoded on the event loop itself (``app.THREAD_DECODE_BYTES``), where
#: handing the GIL to other threads would only slow it down.
YIELDING_DECODE_BYTES = 256 * 1024


class ClientRequest(Protocol):
    """What a front end reads of a client's request (the server's ``Request``)."""

    @property
    def body(self) -> bytes: ...

    @property
    def path(self) -> str: ...

    @property
    def query(self) -> str:
        """The query string, undecoded (no ``?``)."""
        ...

    @property
    def params(self) -> Mapping[str, Any]:
        """The route's path parameter (``{name:path}``), by name."""
        ...

    @property
    def max_json_depth(self) -> int: ...


def parse_json_object(raw: bytes, max_depth: int = DEFAULT_MAX_JSON_DEPTH) -> dict[str, Any]:
    """The body as a JSON object, or a 400 that says what is wrong with it.

    Beyond syntax, three things valid-looking bodies can carry are refused: nesting
    deeper than ``max_depth`` (checked on the bytes first, at C speed, so a body
    nested 100,000 deep costs a scan, not a RecursionError), integers past Python's
    4,300-digit conversion limit, and ``NaN`` / ``Infinity`` / ``-Infinity``, which
    ``json`` accepts but are not JSON (forwarded, they would break the provider).
    Big bodies are decoded off the event loop by the caller (app.py).

    The text is read as ``json.loads`` reads bytes (UTF-8, or UTF-16/32 told by its
    first bytes; lone surrogates kept), then decoded by one shared decoder: ``loads``
    with a hook builds a decoder per call (~1.5 µs, a third of a small request's decode).
    """
    if not raw:
        raise BadRequest("The request body is empty; send a JSON object.")
    encoding = json.detect_encoding(raw)
    try:
        if encoding.startswith("utf-8"):
            text = None
            scanned = raw
        else:  # UTF-16 or -32: their code units may hold quote or bracket bytes; scan UTF-8
            text = raw.decode(encoding, "surrogatepass")
            scanned = text.encode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        raise BadRequest("The request body is not UTF-8 text; send a JSON object.") from None
    if json_depth_over(scanned, max_depth):
        raise BadRequest(
            f"The request body nests arrays and objects more than {max_depth} levels deep, "
            f"the most this gateway accepts (server.max_json_depth)."
        )
    try:
        if text is None:
            text = raw.decode(encoding, "surrogatepass")
        if len(raw) > YIELDING_DECODE_BYTES:
            decoder = json.JSONDecoder(
                parse_constant=_refuse_constant, object_hook=_let_other_threads_run
            )
        else:
            decoder = _DECODER
        body = decoder.decode(text)
    except UnicodeDecodeError:
        raise BadRequest("The request body is not UTF-8 text; send a JSON object.") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"The request body is not valid JSON: {exc.msg} at line {exc.lineno} "
            f"column {exc.colno}."
        ) from None
    except RecursionError:  # unreachable after the depth scan; kept as a guard
        raise BadRequest(
            f"The request body nests arrays and objects more than {max_depth} levels deep."
        ) from None
    except ValueError as exc:  # an integer over sys.get_int_max_str_digits(), or a constant
        if "integer string conversion" in str(exc):
            raise BadRequest(
                f"The request body has an integer of more than {sys.get_int_max_str_digits()} "
                "digits, the most this gateway accepts; send it as a string."
            ) from None
        raise BadRequest(f"The request body has a value this gateway refuses: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest(f"The request body must be a JSON object, not {type(body).__name__}.")
    return body


def _let_other_threads_run(obj: dict[str, Any]) -> dict[str, Any]:
    """An ``object_hook`` that changes nothing but runs Python code per object.

    ``json.loads`` is one C call that keeps the GIL until it returns, so a big
    body decoded in a worker thread would still freeze the event loop. Python
    code (this function) lets the interpreter hand the GIL over every switch
    interval (5 ms). Measured cost: +5% on a 13 MiB body of small objects.
    """
    return obj


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number; send a number or null.")


#: The decoder of bodies decoded in one go (see :func:`parse_json_object`).
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def require(body: Mapping[str, Any], field: str, kind: type, what: str) -> Any:
    """``body[field]`` if it is a ``kind`` (a non-empty one for strings), else a 400
    naming the field and ``what`` it must be."""
    value = body.get(field)
    if value is None:
        raise BadRequest(f"The request needs {field!r} ({what}).")
    if not isinstance(value, kind) or (kind is str and not value):
        raise BadRequest(f"{field!r} must be {what}.")
    return value


def query_params(request: ClientRequest) -> dict[str, str]:
    """The query parameters (the first of repeated ones), percent-decoded."""
    out: dict[str, str] = {}
    for name, value in parse_qsl(request.query, keep_blank_values=True):
        out.setdefault(name, value)
    return out
