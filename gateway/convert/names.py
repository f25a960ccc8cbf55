"""Tool names and tool-call ids as each wire format allows them (wire-formats §4.5, §4.9).

Contract:

- :func:`wire_tool_name` is deterministic: the same canonical name always maps to
  the same wire name, so tool definitions, history calls and forced
  ``tool_choice`` agree. Names already valid pass unchanged. What a format
  accepts is its :class:`ToolNameRule` (each format's ``wire.TOOL_NAMES``). The reverse map for
  a request comes from :func:`tool_name_map`; response and stream parsers take it
  to restore the client's own names (§5.4 item 25).
- :func:`wire_call_id` makes an id acceptable to Anthropic (``^[a-zA-Z0-9_-]+$``),
  deterministically, so a history replay matches.
- Gemini ``thoughtSignature``\\ s of function calls travel to OpenAI and Anthropic
  clients inside the tool-call id (``<id>__thought__<urlsafe b64>``, litellm's
  scheme, §4.9); :func:`split_signature` takes them back out of the ids the client
  returns. The url-safe alphabet keeps the id valid for Anthropic.
- A Gemini thinking signature shown to an Anthropic client is prefixed with
  :data:`GEMINI_SIG_PREFIX` so it is never sent to a real Anthropic upstream.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable

import attrs

__all__ = [
    "DUMMY_GEMINI_SIGNATURE",
    "GEMINI_SIG_PREFIX",
    "SYNTH_ID_PREFIX",
    "ToolNameRule",
    "embed_signature",
    "split_signature",
    "synth_call_id",
    "tool_name_map",
    "wire_call_id",
    "wire_tool_name",
]

SIG_SEPARATOR = "__thought__"
GEMINI_SIG_PREFIX = "gemini-sig:"
#: Ids this gateway invents for Gemini calls that carry none; never sent back to Gemini.
SYNTH_ID_PREFIX = "call_gm"
#: Google's documented placeholder for calls that did not come from Gemini (§4.13).
DUMMY_GEMINI_SIGNATURE = "skip_thought_signature_validator"

# Conservative limits: 64 characters everywhere (OpenAI's documented limit;
# Anthropic and Gemini limits are reported as 64 or 128, wire-formats §4.5).
_MAX_NAME = 64


@attrs.frozen(eq=False)  # compared and hashed by identity: each format has one
class ToolNameRule:
    """What one wire format accepts as a tool name (its ``wire`` module has one).

    Attributes:
        valid: a whole name the format accepts.
        bad_char: one character it does not accept.
        letter_first: the name must start with a letter or ``_``.
    """

    valid: re.Pattern[str]
    bad_char: re.Pattern[str]
    letter_first: bool = False


_BAD_ID_CHAR = re.compile(r"[^a-zA-Z0-9_-]")


@functools.lru_cache(maxsize=4096)  # the same few dozen names, every request and stream
def wire_tool_name(name: str, rule: ToolNameRule) -> str:
    """``name`` as a format with ``rule`` accepts it (unchanged when already valid)."""
    if rule.valid.fullmatch(name):
        return name
    out = rule.bad_char.sub("_", name) or "tool"
    if rule.letter_first and not (out[0].isalpha() or out[0] == "_"):
        out = "_" + out
    if len(out) > _MAX_NAME or out != name:
        digest = hashlib.sha1(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        out = out[: _MAX_NAME - 9] + "_" + digest
    return out


def tool_name_map(names: Iterable[str], rule: ToolNameRule) -> dict[str, str]:
    """``{wire name: canonical name}`` for every name that a format with ``rule`` renames."""
    out: dict[str, str] = {}
    for name in names:
        wire = wire_tool_name(name, rule)
        if wire != name:
            out[wire] = name
    return out


def wire_call_id(call_id: str) -> str:
    """A tool-call id valid for Anthropic; deterministic, unchanged when valid."""
    if call_id and not _BAD_ID_CHAR.search(call_id):
        return call_id
    return _BAD_ID_CHAR.sub("_", call_id) or "toolu_empty"


def embed_signature(call_id: str, signature: str | None) -> str:
    """Hide a Gemini function-call signature in the id a client will send back."""
    if not signature:
        return call_id
    safe = signature.replace("+", "-").replace("/", "_").rstrip("=")
    return f"{call_id}{SIG_SEPARATOR}{safe}"


def split_signature(call_id: str) -> tuple[str, str | None]:
    """Inverse of :func:`embed_signature`: ``(id, signature or None)``."""
    head, sep, safe = call_id.partition(SIG_SEPARATOR)
    if not sep or not safe:
        return call_id, None
    sig = safe.replace("-", "+").replace("_", "/")
    sig += "=" * (-len(sig) % 4)
    return head, sig


def synth_call_id(response_id: str | None, n: int) -> str:
    """Deterministic id for the ``n``-th Gemini function call of one response."""
    rid = _BAD_ID_CHAR.sub("", response_id or "")[:24]
    return f"{SYNTH_ID_PREFIX}_{rid}_{n}" if rid else f"{SYNTH_ID_PREFIX}_{n}"
