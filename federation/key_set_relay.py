"""`KeySetRelay`: the asyncio shell of the key set flood (federation/key_set_flood.py).

It carries out what `KeySetFlood` decides over the node's links and the host's
`KeySetSource` port (federation/ports.py):

- `run()` (a task of the node's TaskGroup) watches the port: every set the host holds (loaded
  at start, put by PutKeySet, accepted from a peer) is offered to the flood, which sends it
  where it is missing; and it checks what peers sent, one set at a time, through
  `accept_key_set` (the host verifies against its view of the chain and stores durably).
- `link_up` / `link_down` / `received` are called by the node from its LinkHost methods.

Bounds: at most INBOX sets wait to be checked; past that a peer's message is dropped with a
warning (its sender offers everything again on its next link up), so a flooding peer costs
memory of INBOX sets at most.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from federation.key_set_flood import KeySetFlood, SendKeySets
from federation.link import PeerLink
from federation.messages import TopicKeySet
from federation.metrics import FederationMetrics
from federation.ports import KeySetSource

log = logging.getLogger(__name__)

INBOX = 1024


class KeySetRelay:
    def __init__(self, source: KeySetSource | None, metrics: FederationMetrics) -> None:
        """`source` None: the host keeps no key sets (an open gateway); peers' sets are
        ignored and none are sent."""
        self.flood = KeySetFlood()
        self._source = source
        self._metrics = metrics
        self._links: dict[str, PeerLink] = {}
        self._inbox: asyncio.Queue[tuple[str, TopicKeySet]] = asyncio.Queue(INBOX)

    async def run(self) -> None:
        if self._source is None:
            return
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._watch())
            tg.create_task(self._check())

    def link_up(self, region: str, link: PeerLink) -> None:
        if self._source is None:
            return
        self._links[region] = link
        self._send(self.flood.link_up(region))

    def link_down(self, region: str) -> None:
        self._links.pop(region, None)
        self.flood.link_down(region)

    def received(self, region: str, sets: Sequence[TopicKeySet]) -> None:
        todo = self.flood.received(region, sets)
        if len(todo) > INBOX - self._inbox.qsize():
            log.warning("key sets from %s dropped: %d wait to be checked", region, INBOX)
            self._metrics.key_sets.labels("dropped").inc(len(todo))
            return
        for key_set in todo:
            self._inbox.put_nowait((region, key_set))

    async def _watch(self) -> None:
        assert self._source is not None
        seen = -1
        while True:
            seen = await self._source.wait_key_sets(seen)
            for key_set in self._source.key_sets():
                self._send(self.flood.accepted(key_set))

    async def _check(self) -> None:
        assert self._source is not None
        while True:
            region, key_set = await self._inbox.get()
            reason = await self._source.accept_key_set(key_set)
            self._metrics.key_sets.labels(reason or "accepted").inc()
            if reason is None:
                self._send(self.flood.accepted(key_set))
            else:
                log.warning("key set of %r from %s refused: %s", key_set.topic, region, reason)

    def _send(self, sends: list[SendKeySets]) -> None:
        for send in sends:
            link = self._links.get(send.peer)
            if link is not None:
                link.send(link.protocol.send_key_sets(send.sets))
