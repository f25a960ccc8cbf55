"""The LLM facts of one proxied request, as the front end and the proxy learn them.

The server's record of a request (gateway.server.exchange.HttpRecord) holds
what HTTP knows: method, path, status, bytes, durations, whether the client
left. What only the gateway knows goes in a :class:`CallRecord`, which the
client endpoints put in the exchange's opaque ``facts`` slot before anything
else (app.py) and the proxy fills as it goes (:func:`call_record`). A request
with a CallRecord is a *proxied* one: only those count in
``gateway_requests_total`` and its sibling metrics (gateway.metrics), and
every field that is set goes on the access line after the HTTP fields, in
this order and under these names (gateway.logs). None means "not known": the
field is left off the line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from gateway.server.exchange import Exchange

__all__ = ["CallRecord", "call_record"]


@attrs.define
class CallRecord:
    """What one proxied request was and what became of it.

    Attributes:
        client_format: the wire format the client spoke.
        key_name: the name of the client key it came with (None: the gateway is open).
        model: the model the client asked for (an alias), once its body was read.
        provider: the provider of the target being tried (the last one tried).
        upstream_model: that target's model name at the provider.
        target: that target's index in the routed list (0: the first tried, the
            alias's provider whose round-robin turn it was; later ones are the
            alias's other providers, then its fallbacks').
        fallback: the fallback model name that target was routed from (None:
            the client's own model).
        retries: tries of that target that failed (0: its first try answered).
        tokens_in: prompt tokens the provider reported (the last usage seen),
            cached ones included.
        tokens_out: completion tokens the provider reported, reasoning included.
        tokens_cached: of ``tokens_in``, those read from the provider's prompt
            cache (None: none reported).
        tokens_reasoning: of ``tokens_out``, those spent on reasoning
            (None: none reported).
    """

    client_format: str | None = None
    key_name: str | None = attrs.field(default=None, kw_only=True)
    model: str | None = None
    provider: str | None = None
    upstream_model: str | None = None
    target: int | None = attrs.field(default=None, kw_only=True)
    fallback: str | None = attrs.field(default=None, kw_only=True)
    retries: int | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    tokens_cached: int | None = attrs.field(default=None, kw_only=True)
    tokens_reasoning: int | None = attrs.field(default=None, kw_only=True)


def call_record(ex: Exchange) -> CallRecord:
    """The exchange's CallRecord, put there now if it has none yet."""
    facts = ex.facts
    if isinstance(facts, CallRecord):
        return facts
    record = ex.facts = CallRecord()
    return record
