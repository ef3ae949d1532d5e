"""`GrantFeed`: feeds the ledger follower's items into the policy grant view.

Theory of operation: the follower yields registry changes in chain order, each range closed
by a `Synced` checkpoint. Changes are applied as they come; at each checkpoint the view's
freshness moves forward and, if any topic changed or the view just turned fresh again after
being stale, every open stream is told to re-check (`RegistryAccess.changed`). Staleness
itself needs no item: the adapter's timer wakes streams when the view goes stale.

A `Rewound` (the chain no longer holds what came after its block: a reorg, a node restarted
without its database, the registry gone) rewinds the view to that block and leaves it stale,
so access pauses (fails closed) until the follower has re-read the new chain and the next
checkpoint makes the view fresh again; every open stream re-checks at once.

Resource handling: `run()` consumes the follower until cancelled; the follower's own retry
and reconnect logic lives in ledger. `wait_synced()` lets start-up hold the readiness line
until the view covers the chain head it saw at start.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable

from gateway.registry_access import RegistryAccess
from ledger import changes as ledger
from policy import grant_view as view

log = logging.getLogger(__name__)


def to_policy(
    item: ledger.Change | ledger.Synced, now: float = 0.0
) -> view.RegistryChange | view.Checkpoint:
    """The policy layer's value for one follower item (expiry 0 = never -> None); `now` is
    when the feed saw it (a key set's grace starts then)."""
    if isinstance(item, ledger.Synced):
        return view.Checkpoint(
            block=item.block_number,
            block_timestamp=item.block_timestamp,
            observed_at=item.observed_at,
        )
    block = item.position.block
    if isinstance(item, ledger.TopicRegistered):
        return view.TopicRegistered(
            topic=item.topic, owner=item.owner, block=block, encrypted=item.encrypted
        )
    if isinstance(item, ledger.OwnershipTransferred):
        return view.OwnerChanged(topic=item.topic, owner=item.owner, block=block)
    if isinstance(item, ledger.AccessGranted):
        return view.GrantSet(
            topic=item.topic,
            grantee=item.reader,
            expires_at=item.expires_at or None,
            block=block,
        )
    if isinstance(item, ledger.AccessRevoked):
        return view.GrantRevoked(topic=item.topic, grantee=item.reader, block=block)
    if isinstance(item, ledger.PublisherAllowed):
        return view.PublisherAdded(topic=item.topic, publisher=item.publisher, block=block)
    if isinstance(item, ledger.PublisherDenied):
        return view.PublisherRemoved(topic=item.topic, publisher=item.publisher, block=block)
    if isinstance(item, ledger.KeySetPublished):
        return view.KeySetRecorded(
            topic=item.topic,
            epoch=item.epoch,
            key_set_hash=item.key_set_hash,
            block=block,
            seen_at=now,
        )
    if isinstance(item, ledger.SchemaAdded):
        return view.SchemaVersionAdded(
            topic=item.topic,
            event_type=item.event_type,
            version=item.schema_version,
            format=item.format,
            document=item.document,
            block=block,
        )
    if isinstance(item, ledger.SchemaCompatibilitySet):
        return view.CompatibilitySet(topic=item.topic, mode=item.mode, block=block)
    raise TypeError(f"unknown follower item {type(item).__name__}")


class GrantFeed:
    def __init__(
        self,
        access: RegistryAccess,
        items: AsyncIterator[ledger.FollowItem],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.access = access
        self._items = items
        self._clock = clock
        self._synced = asyncio.Condition()
        self.synced_block = -1

    async def run(self) -> None:
        grants = self.access.policy.view
        bound = self.access.policy.config.decision.staleness_bound
        dirty = False
        async for item in self._items:
            if isinstance(item, ledger.Rewound):
                grants.rewind(item.block_number)
                log.warning(
                    "chain rewound (%s): grant view back at block %d, access paused until "
                    "it re-syncs",
                    item.reason,
                    item.block_number,
                )
                self.access.changed()
                dirty = False
                async with self._synced:
                    self.synced_block = min(self.synced_block, item.block_number)
                continue
            value = to_policy(item, self._clock())
            if not isinstance(value, view.Checkpoint):
                dirty = grants.apply(value) is not None or dirty
                continue
            was_stale = grants.is_stale(self._clock(), bound)
            grants.checkpoint(value)
            if was_stale and not grants.is_stale(self._clock(), bound):
                log.info("grant view fresh at block %d", value.block)
                dirty = True
            if dirty:
                self.access.changed()
                dirty = False
            async with self._synced:
                self.synced_block = max(self.synced_block, value.block)
                self._synced.notify_all()

    async def wait_synced(self, block: int) -> None:
        """Return once every change up to `block` is in the view."""
        async with self._synced:
            await self._synced.wait_for(lambda: self.synced_block >= block)
