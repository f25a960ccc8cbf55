"""The client-facing endpoints: read a request of one wire format into a :class:`Call`.

Bodies are read leniently (design.md): fields the gateway does not know pass
through untouched; only what it needs and cannot find is a 400 (a body that
is not a JSON object, no ``model``, no ``messages`` / ``contents``), and the
message says what to fix. The route's format decides the error body's shape.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from gateway.call import Call
from gateway.errors import BadRequest, NotFound, echo
from gateway.routing import check_model_name, split_gemini_target
from gateway.server.jsonscan import DEFAULT_MAX_JSON_DEPTH, json_depth_over

if TYPE_CHECKING:
    from gateway.server.connection import Exchange

__all__ = [
    "anthropic_call",
    "gemini_call",
    "gemini_generate_request",
    "gemini_list_page",
    "gemini_page_token",
    "gemini_stream_alt",
    "openai_call",
    "parse_json_object",
]

#: Gemini method -> whether it streams.
GEMINI_METHODS = {"generateContent": False, "streamGenerateContent": True, "countTokens": False}
#: ``pageSize`` of ``GET /v1beta/models`` when the client gives none (Gemini's default).
GEMINI_PAGE_SIZE = 50
#: The largest ``pageSize`` honoured; larger ones are lowered to it (Gemini does the same).
GEMINI_MAX_PAGE_SIZE = 1000
_TOKEN_PREFIX = "gw1:"
#: Bodies over this size are decoded so that other threads (the event loop) get turns.
#: Smaller ones are decoded on the event loop itself (``app.THREAD_DECODE_BYTES``), where
#: handing the GIL to other threads would only slow it down.
YIELDING_DECODE_BYTES = 256 * 1024


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


def _require(body: dict[str, Any], field: str, kind: type, what: str) -> Any:
    value = body.get(field)
    if value is None:
        raise BadRequest(f"The request needs {field!r} ({what}).")
    if not isinstance(value, kind) or (kind is str and not value):
        raise BadRequest(f"{field!r} must be {what}.")
    return value


def openai_call(ex: Exchange) -> Call:
    """POST /v1/chat/completions."""
    body = parse_json_object(ex.request.body, ex.request.max_json_depth)
    model = check_model_name(_require(body, "model", str, "a model name string"))
    _require(body, "messages", list, "a list of messages")
    return Call("openai", "chat", model, bool(body.get("stream")), body, len(ex.request.body))


def anthropic_call(ex: Exchange, *, count_tokens: bool = False) -> Call:
    """POST /v1/messages and /v1/messages/count_tokens."""
    body = parse_json_object(ex.request.body, ex.request.max_json_depth)
    model = check_model_name(_require(body, "model", str, "a model name string"))
    _require(body, "messages", list, "a list of messages")
    if count_tokens:
        return Call("anthropic", "count_tokens", model, False, body, len(ex.request.body))
    size = len(ex.request.body)
    return Call("anthropic", "messages", model, bool(body.get("stream")), body, size)


def _query(ex: Exchange) -> dict[str, str]:
    """The query parameters (the first of repeated ones), percent-decoded."""
    out: dict[str, str] = {}
    for name, value in parse_qsl(ex.request.query, keep_blank_values=True):
        out.setdefault(name, value)
    return out


def gemini_stream_alt(ex: Exchange) -> str:
    """How a ``streamGenerateContent`` answer is framed: ``"sse"`` or ``"json"``.

    ``alt=sse`` asks for server-sent events (what google-genai sends); ``alt=json``,
    or no ``alt`` at all (Gemini's default), for one JSON array written element by
    element. Anything else is a 400 naming both.
    """
    query = _query(ex)
    alt = query.get("alt", query.get("$alt", "json"))
    if alt not in ("sse", "json"):
        raise BadRequest(
            f"Unsupported alt={alt[:40]!r}: use alt=sse (server-sent events) or alt=json "
            "(a JSON array, the default)."
        )
    return alt


def gemini_generate_request(body: dict[str, Any]) -> dict[str, Any]:
    """The generateContent-shaped request inside a countTokens body.

    ``countTokens`` takes either ``contents`` or a whole ``generateContentRequest``.
    """
    inner = body.get("generateContentRequest")
    if "contents" not in body and isinstance(inner, dict):
        return inner
    return body


def gemini_call(ex: Exchange) -> Call:
    """POST /v1beta/models/{model}:{method} (and the same under /v1/models/)."""
    model, method = split_gemini_target(ex.request.params["rest"])
    if method not in GEMINI_METHODS:
        names = sorted(GEMINI_METHODS)
        raise NotFound(
            f"Unknown method {echo(method)}; this gateway serves "
            + ", ".join(names[:-1])
            + f" and {names[-1]}."
        )
    check_model_name(model)
    stream = GEMINI_METHODS[method]
    if stream:
        gemini_stream_alt(ex)  # a 400 for an alt it cannot frame
    body = parse_json_object(ex.request.body, ex.request.max_json_depth)
    if method == "countTokens":
        if "contents" not in body and isinstance(body.get("generateContentRequest"), dict):
            _require(body["generateContentRequest"], "contents", list, "a list of contents")
        else:
            _require(body, "contents", list, "a list of contents")
        return Call("gemini", "count_tokens", model, False, body, len(ex.request.body))
    _require(body, "contents", list, "a list of contents")
    return Call("gemini", "generate", model, stream, body, len(ex.request.body))


def gemini_page_token(offset: int) -> str:
    """The opaque ``nextPageToken`` for the page that starts at ``offset``."""
    return base64.urlsafe_b64encode(f"{_TOKEN_PREFIX}{offset}".encode()).decode().rstrip("=")


def gemini_list_page(ex: Exchange) -> tuple[int, int]:
    """``(offset, page_size)`` of a ``GET /v1beta/models`` request (``pageSize``, ``pageToken``).

    No ``pageSize`` (or 0) means :data:`GEMINI_PAGE_SIZE`; larger than
    :data:`GEMINI_MAX_PAGE_SIZE` is lowered to it; negative or not a number is a 400.
    A ``pageToken`` must be one this gateway issued (:func:`gemini_page_token`).
    """
    query = _query(ex)
    raw_size = query.get("pageSize", "").strip()
    if not raw_size:
        size = 0
    elif raw_size.isascii() and raw_size.isdigit() and len(raw_size) <= 9:
        size = int(raw_size)
    else:
        raise BadRequest(
            f"pageSize must be a whole number from 0 to {GEMINI_MAX_PAGE_SIZE}, "
            f"not {raw_size[:40]!r}."
        )
    size = min(size or GEMINI_PAGE_SIZE, GEMINI_MAX_PAGE_SIZE)
    token = query.get("pageToken", "")
    if not token:
        return 0, size
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        text = ""
    digits = text[len(_TOKEN_PREFIX) :]
    if not (text.startswith(_TOKEN_PREFIX) and digits.isdigit() and len(digits) <= 9):
        raise BadRequest(
            "pageToken is not one this gateway issued; send the nextPageToken of the "
            "previous page, or none for the first page."
        )
    return int(digits), size
