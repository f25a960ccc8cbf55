"""The canonical model: one format-neutral shape for requests, responses and stream events.

Theory of operation (design.md, Conversion): every wire format has a parser into
these classes and a renderer out of them, so N formats need 2N pieces instead of
N² converters. The classes are frozen attrs with tuples, built once per request
(or once per stream event) and never mutated.

Conventions that every parser and renderer follows:

- **Messages** are ordered; roles are ``user``, ``assistant`` and ``system``
  (a mid-conversation system message, as Anthropic clients send after the first
  user turn, wire-formats.md §5.5). Leading system text lives in
  :attr:`Request.system`. A tool result is a :class:`ToolResult` part inside a
  ``user`` message (the Anthropic shape); a tool call is a :class:`ToolCall`
  part inside an ``assistant`` message.
- **Tool-call arguments** are kept as the JSON *text* the model produced
  (``ToolCall.arguments``), because OpenAI upstreams may stream or truncate
  arguments into something that is not valid JSON; formats that need an object
  parse it at the edge (wire-formats §5.4 item 26).
- **Signatures**: a :class:`Thinking` part or a :class:`ToolCall` remembers which
  provider's format issued its signature (``origin``: the format's registered name),
  since one provider's signature is garbage to another (§4.13).
- **Usage**: ``input_tokens`` is the *whole* prompt (cached and cache-writing
  tokens included, the OpenAI/Gemini convention); ``output_tokens`` includes
  reasoning tokens. The cached, cache-creation and reasoning counts are subsets.
- **Stream events** arrive in this order: one :class:`MessageStart`; content
  events (text, thinking, tool calls; a tool call is ``ToolCallStart``, zero or
  more ``ToolCallDelta``, ``ToolCallEnd``, keyed by ``index``, an ordinal over the
  stream's tool calls, and parallel calls may interleave); any number of
  :class:`UsageUpdate` (each a cumulative snapshot, the last one wins); then
  exactly one terminal event, :class:`Stop` or :class:`StreamError`. A
  :class:`SignatureDelta` closes the thinking block it belongs to.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Literal

import attrs

from gateway.errors import ErrorKind

__all__ = [
    "Audio",
    "ContentPart",
    "Document",
    "Image",
    "Message",
    "MessageStart",
    "Reasoning",
    "RedactedThinking",
    "RedactedThinkingDelta",
    "Request",
    "Response",
    "ResponseFormat",
    "SignatureDelta",
    "Stop",
    "StopReason",
    "StreamError",
    "StreamEvent",
    "Text",
    "TextDelta",
    "Thinking",
    "ThinkingDelta",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
    "ToolCallEnd",
    "ToolCallStart",
    "ToolChoice",
    "ToolResult",
    "Usage",
    "UsageUpdate",
]

Notes = tuple[str, ...]
Role = Literal["user", "assistant", "system"]
#: The registered name of the wire format whose provider signed a part (gateway.formats).
Origin = str


# -- content parts -------------------------------------------------------------------------


@attrs.frozen
class Text:
    text: str
    #: Anthropic ``cache_control`` object, kept for Anthropic upstreams only.
    cache_control: Mapping[str, Any] | None = None


@attrs.frozen
class Image:
    """An image as base64 ``data`` with its ``media_type``, or as a remote ``url``."""

    media_type: str | None = None
    data: str | None = None
    url: str | None = None


@attrs.frozen
class Document:
    """A file that is not an image or audio (PDF, plain text), base64 or by URL."""

    media_type: str | None = None
    data: str | None = None
    url: str | None = None
    title: str | None = None


@attrs.frozen
class Audio:
    media_type: str
    data: str


@attrs.frozen
class Thinking:
    text: str
    signature: str | None = None
    origin: Origin | None = None


@attrs.frozen
class RedactedThinking:
    """Anthropic's encrypted thinking; only an Anthropic upstream can read it."""

    data: str


@attrs.frozen
class ToolCall:
    id: str
    name: str
    arguments: str = "{}"
    #: Gemini ``thoughtSignature`` carried by this call (§5.3 item 17).
    signature: str | None = None


@attrs.frozen
class ToolResult:
    call_id: str
    content: tuple[Text | Image | Document, ...] = ()
    is_error: bool = False
    #: The called tool's name where the wire says it (Gemini); renderers that
    #: need it find it from the matching call when this is None.
    name: str | None = None
    cache_control: Mapping[str, Any] | None = None


ContentPart = Text | Image | Document | Audio | Thinking | RedactedThinking | ToolCall | ToolResult


@attrs.frozen
class Message:
    role: Role
    content: tuple[ContentPart, ...]


# -- request -------------------------------------------------------------------------------


@attrs.frozen
class Tool:
    name: str
    description: str | None = None
    #: JSON Schema of the arguments object; None means "no arguments".
    parameters: Mapping[str, Any] | None = None
    strict: bool | None = None
    cache_control: Mapping[str, Any] | None = None


@attrs.frozen
class ToolChoice:
    """``auto`` / ``any`` (OpenAI ``required``) / ``none`` / ``tool`` (force ``name``).

    ``allowed`` restricts the usable tools (OpenAI ``allowed_tools``, Gemini
    ``allowedFunctionNames``); empty means all of them.
    """

    mode: Literal["auto", "any", "none", "tool"]
    name: str | None = None
    allowed: tuple[str, ...] = ()


@attrs.frozen
class ResponseFormat:
    type: Literal["text", "json_object", "json_schema"]
    schema: Mapping[str, Any] | None = None
    name: str | None = None
    description: str | None = None
    strict: bool | None = None


@attrs.frozen
class Reasoning:
    """Reasoning settings, as close to what the client said as possible.

    ``mode``: ``enabled`` (think, with ``budget_tokens`` and/or ``effort``),
    ``adaptive`` (the model decides; Anthropic adaptive, Gemini budget -1),
    ``disabled``, or None when the client only set an ``effort``.
    ``effort``: one of none, minimal, low, medium, high, xhigh, max.
    ``include_thoughts``: whether the client wants to see thinking text.
    """

    mode: Literal["enabled", "adaptive", "disabled"] | None = None
    effort: str | None = None
    budget_tokens: int | None = None
    include_thoughts: bool | None = None


@attrs.frozen
class Request:
    model: str
    messages: tuple[Message, ...]
    system: tuple[Text, ...] = ()
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: tuple[str, ...] = ()
    n: int | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    response_format: ResponseFormat | None = None
    reasoning: Reasoning | None = None
    stream: bool = False
    include_usage: bool = False
    user: str | None = None
    metadata: Mapping[str, str] | None = None
    #: The client asked for audio output (OpenAI ``modalities``/``audio``).
    audio_output: bool = False
    #: Top-level fields only ``extra_format`` understands; rendered back only
    #: into that same format, dropped with a note everywhere else.
    extra: Mapping[str, Any] = attrs.field(factory=dict)
    extra_format: str | None = None


# -- response ------------------------------------------------------------------------------


class StopReason(str, enum.Enum):
    END_TURN = "end_turn"
    MAX_TOKENS = "max_tokens"
    STOP_SEQUENCE = "stop_sequence"
    TOOL_USE = "tool_use"
    CONTENT_FILTER = "content_filter"
    PAUSE_TURN = "pause_turn"
    CONTEXT_WINDOW = "context_window_exceeded"
    ERROR = "error"
    OTHER = "other"


@attrs.frozen
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cache_creation_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@attrs.frozen
class Response:
    id: str
    model: str
    content: tuple[ContentPart, ...]
    stop_reason: StopReason = StopReason.END_TURN
    stop_sequence: str | None = None
    usage: Usage = Usage()
    #: Unix time the upstream stamped (OpenAI ``created``), if any.
    created: int | None = None


# -- stream events -------------------------------------------------------------------------


@attrs.frozen
class MessageStart:
    id: str
    model: str
    usage: Usage | None = None
    created: int | None = None


@attrs.frozen
class TextDelta:
    text: str


@attrs.frozen
class ThinkingDelta:
    text: str


@attrs.frozen
class SignatureDelta:
    signature: str
    origin: Origin | None = None


@attrs.frozen
class RedactedThinkingDelta:
    data: str


@attrs.frozen
class ToolCallStart:
    index: int
    id: str
    name: str
    signature: str | None = None


@attrs.frozen
class ToolCallDelta:
    index: int
    arguments: str


@attrs.frozen
class ToolCallEnd:
    index: int


@attrs.frozen
class UsageUpdate:
    usage: Usage


@attrs.frozen
class Stop:
    reason: StopReason
    stop_sequence: str | None = None


@attrs.frozen
class StreamError:
    kind: ErrorKind
    message: str
    #: The HTTP status this error would have had (Gemini puts it in the body).
    status: int | None = None


StreamEvent = (
    MessageStart
    | TextDelta
    | ThinkingDelta
    | SignatureDelta
    | RedactedThinkingDelta
    | ToolCallStart
    | ToolCallDelta
    | ToolCallEnd
    | UsageUpdate
    | Stop
    | StreamError
)
