"""One Subscribe stream: credits, acks, access checks and wake-ups around a Dispatcher.

Loop rules (enforced in `SubscriptionSession.deliveries`):

- Never send more events than the client granted credit for (`credits` only shrinks by what
  was sent; it grows by Credit messages).
- `check_delivery` runs before EVERY batch, and again once the batch is read (the view can
  change while the store is read): Deny ends the stream (AccessDenied); Pause sends nothing
  until a later check allows (fail closed). A batch read under a decision that no longer
  holds is handed back unsent.
- The loop sleeps on one wake event, set by: new credit, acks, store appends on the topic, a
  group member leaving, access view changes, shutdown; and times out only when a lease is due
  for redelivery. There is no polling.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence

from eventmodel import event_spans, filters
from gateway.access import AccessControl, Allow, Deny, Identity
from gateway.dispatch import Dispatcher, Outgoing
from gateway.hub import SubscriptionHub
from policy.errors import AccessDenied

log = logging.getLogger(__name__)

MAX_BATCH = 500  # events per DeliveryBatch message


class SubscriptionSession:
    def __init__(
        self,
        hub: SubscriptionHub,
        access: AccessControl,
        identity: Identity,
        dispatcher: Dispatcher,
        flts: Sequence[filters.Filter],
        credits: int,
        on_sent: Callable[[str, int], None] = lambda topic, n: None,
    ) -> None:
        self.hub = hub
        self.access = access
        self.identity = identity
        self.dispatcher = dispatcher
        self.filters = tuple(flts)
        self.credits = credits
        self._wake = asyncio.Event()
        self._member = dispatcher.join(self._wake.set)
        self._unsubscribe_view = access.view.subscribe(self._wake.set)
        self._on_sent = on_sent
        self.ended = False

    def grant(self, credits: int) -> None:
        self.credits += credits
        self._wake.set()

    async def ack(self, offsets: Sequence[int]) -> None:
        await self.dispatcher.ack(offsets)
        self._wake.set()

    def end(self) -> None:
        """The client half-closed or went away: finish the loop."""
        self.ended = True
        self._wake.set()

    async def close(self) -> None:
        self._unsubscribe_view()
        self.hub.close(self.dispatcher, self.filters)
        await self.dispatcher.leave(self._member)

    async def deliveries(self) -> AsyncIterator[list[Outgoing]]:
        """Batches to send, until the client leaves or the gateway shuts down."""
        topic = self.dispatcher.topic
        while not self.ended and not self.hub.closing.is_set():
            self._wake.clear()
            decision = self.access.check_delivery(self.identity, topic)
            if isinstance(decision, Deny):
                raise AccessDenied(decision.reason, f"access to topic {topic!r} ended")
            batch: list[Outgoing] = []
            if isinstance(decision, Allow) and self.credits > 0:
                batch = await self.dispatcher.fetch(self._member, min(self.credits, MAX_BATCH))
            if batch and not isinstance(self.access.check_delivery(self.identity, topic), Allow):
                self.dispatcher.hand_back(self._member)
                continue
            if batch:
                if event_spans.ON:  # issue 16
                    event_spans.delivered(topic, self.dispatcher.group, batch)
                self.credits -= len(batch)
                self._on_sent(topic, len(batch))
                yield batch
                continue
            timeout = self.dispatcher.seconds_until_deadline()
            try:
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            except TimeoutError:
                self.dispatcher.expire()  # a lease is due: hand it to whoever has credit
