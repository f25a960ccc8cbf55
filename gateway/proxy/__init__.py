"""The proxy: a client's call, routed to providers, answered in the client's format.

The modules, from the top down:

* :mod:`~gateway.proxy.service`: :class:`Proxy`, the request: route -> targets x
  tries x fallbacks, key choice, delays between tries, emulated streams.
* :mod:`~gateway.proxy.attempt`: one try: the upstream request sent, the
  first-byte and idle bounds, the answer or the stream handed to the client, or
  a :class:`~gateway.failures.Failure`.
* :mod:`~gateway.proxy.upstream_request`: the URL, headers and forwarded client
  credential of a try (asking the formats' wire modules).
* :mod:`~gateway.proxy.adapters`: how one call crosses to one target: its body,
  its whole answer (read, converted), its relay; work off the event loop.
* :mod:`~gateway.proxy.relay`: a started stream: the event framer, the
  same-format and converting relays, the relay loop.
* :mod:`~gateway.proxy.keepalive`: keep-alives while a started response waits.
* :mod:`~gateway.proxy.mock`: the built-in ``mock`` provider.
* :mod:`~gateway.proxy.replies`: what the proxy writes itself: stream headers,
  estimated token counts, the usage on the request's record.

The pure decision tables it asks live beside it: :mod:`gateway.failures`
(what a failure means), :mod:`gateway.keys` (key rests), :mod:`gateway.routing`
(targets), :mod:`gateway.usage` (usage in relayed bytes).
"""

from __future__ import annotations

from gateway.proxy.service import Proxy

__all__ = ["Proxy"]
