"""A rough, deterministic token estimate for a canonical request.

Contract: pure; about four characters a token over every text the model reads
(system, messages, tool results, tool-call arguments, tool definitions). Used
where the wire needs a number before the provider gives one: the input tokens
in an Anthropic ``message_start`` relayed from a provider that reports usage
only at the end (an input count of 0 breaks clients' context accounting,
wire-formats §5.2 item 8), the mock provider, and an estimated ``count_tokens``.
It is an estimate and must be marked as one wherever a client can see it as a count.
"""

from __future__ import annotations

from gateway.convert._util import dumps
from gateway.convert.model import Request, Text, ToolCall, ToolResult

__all__ = ["estimate_input_tokens"]

_CHARS_PER_TOKEN = 4


def estimate_input_tokens(req: Request) -> int:
    """About how many tokens the prompt of ``req`` is (at least 1)."""
    total = sum(len(t.text) for t in req.system)
    for m in req.messages:
        for p in m.content:
            if isinstance(p, Text):
                total += len(p.text)
            elif isinstance(p, ToolResult):
                total += sum(len(c.text) for c in p.content if isinstance(c, Text))
            elif isinstance(p, ToolCall):
                total += len(p.name) + len(p.arguments)
    for tool in req.tools:
        total += len(tool.name) + len(tool.description or "")
        if tool.parameters is not None:
            total += len(dumps(tool.parameters))
    return max(1, total // _CHARS_PER_TOKEN)
