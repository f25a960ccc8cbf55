"""Provider-key rests shared through the state: what one process learnt, every process knows.

A key one worker saw refused or rate-limited rests in every worker and
replica that shares the state (``[state] redis_url``), so the others do not
spend a request each finding out. :func:`share_key_rests` runs beside the
server: every :data:`SYNC_INTERVAL_S` it publishes the rests in the pool's
outbox and applies the rests others published. Rests are hints: when the state
cannot be reached, each process goes on with its own.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import trio

from gateway.state.protocol import StateUnavailable

if TYPE_CHECKING:
    from gateway.keys import KeyPool
    from gateway.state.protocol import State
    from gateway.transformers.registry import RegistryHolder

__all__ = ["SYNC_INTERVAL_S", "share_key_rests", "sync_once"]

LOG = logging.getLogger("gateway.proxy")

#: How often rests are exchanged with the state.
SYNC_INTERVAL_S = 0.5
#: How long one exchange may take.
SYNC_TIMEOUT_S = 2.0


async def sync_once(pool: KeyPool, state: State, registry: RegistryHolder) -> None:
    """Publish the pool's new rests, then apply everyone's."""
    with trio.move_on_after(SYNC_TIMEOUT_S):
        try:
            while pool.outbox:
                await state.rest_key(pool.outbox[0])
                pool.outbox.popleft()
            rests = await state.key_rests()
        except StateUnavailable:
            return
        pool.apply_rests(rests, registry.current.transformers.values())


async def share_key_rests(
    pool: KeyPool, state: State, registry: RegistryHolder, interval_s: float = SYNC_INTERVAL_S
) -> None:
    """Run :func:`sync_once` every ``interval_s`` until cancelled."""
    while True:
        await sync_once(pool, state, registry)
        await trio.sleep(interval_s)
