"""DataPath: what links read, send and store, over the host's log and cursor ports.

Ordering rules enforced here: inbound batches are verified whole before anything of them is
stored, and stored atomically in ONE append however many the link had queued (one group commit;
the link acks them only after `store_batches` returned: persist before ack); a
peer's cursor only moves forward (a replaced duplicate link may lag behind the live one); a
relayed event stored only to be forwarded is deleted once every next hop acked it, after the
cursor that covers it was saved (federation/transit.py decides which).

Catch-up (federation/catch_up.py decides): a topic whose route to a peer disappears and
comes back is re-sent from where it disappeared. Every read for a peer is planned first: a
plan that says rewind raises ReadRewind before anything is sent (the link drains and
reconnects from the persisted cursor); otherwise only the records the plan wants go out. The
cursor persisted for a peer is its highest ack held at its earliest open gap, so the events
withheld while its interest was unknown are resent after any restart.

Admission (a host log that is also an `EventAdmission`, e.g. a registry gateway's publisher
check): runs after the origin signatures verified, before anything is stored. A refused
event is counted by reason, never stored (so never delivered or forwarded), and the batch
is acked with it dropped: one bad event never wedges a peer's cursor. AdmissionPaused
refuses the batch whole, unacknowledged (the peer resends it once the host can decide).
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Sequence

from eventmodel import event_spans
from federation.catch_up import CatchUp
from federation.codec import decode_replication
from federation.config import PeerConfig
from federation.errors import OriginNotYetKnown, ReadRewind
from federation.messages import EventBatch, ReplicatedEvent
from federation.metrics import FederationMetrics
from federation.ports import (
    CursorStore,
    EventAdmission,
    InboundEvent,
    LogRecord,
    ReplicationLog,
)
from federation.replication import inbound_events, outbound_events
from federation.routing import RoutingTable
from federation.signing import SignatureVerifier
from federation.transit import Transit

log = logging.getLogger(__name__)


class DataPath:
    def __init__(
        self,
        *,
        config: PeerConfig,
        log_port: ReplicationLog,
        cursors: CursorStore,
        routing: RoutingTable,
        metrics: FederationMetrics,
        signing_seed: bytes,
        keys: dict[str, bytes],
    ) -> None:
        self.region = config.region
        self._config = config
        self.log = log_port
        self._cursors = cursors
        self._routing = routing
        self._metrics = metrics
        self._seed = signing_seed
        self.keys = keys  # region -> verify key; the node adds members as it learns them
        self._verifier = SignatureVerifier()
        self._admission = log_port if isinstance(log_port, EventAdmission) else None
        self._saved_cursors: dict[str, int] = {}
        self.transit = Transit(config.region)
        self.catch_up = CatchUp()

    async def store_batch(self, peer: str, batch: EventBatch) -> None:
        await self.store_batches(peer, [batch])

    async def store_batches(self, peer: str, batches: Sequence[EventBatch]) -> None:
        """Verify, then persist atomically in one append (before the protocol acks them).

        Raises OriginNotYetKnown, storing nothing, when an event's origin is not a known member
        yet: the link closes unacknowledged and the peer resends from its cursor.
        """
        started = event_spans.now() if event_spans.ON else 0
        accepted, rejected = inbound_events(
            [ev for batch in batches for ev in batch.events],
            local_region=self.region,
            verifier=self._verifier,
            origin_key=self.keys.get,
        )
        unknown = [r.event.origin_region for r in rejected if r.reason == "unknown_origin"]
        if unknown:
            self._metrics.rejected.labels("unknown_origin").inc(len(unknown))
            unknown = sorted(set(unknown))
            raise OriginNotYetKnown(f"batch from {peer} carries events of unknown {unknown}")
        for r in rejected:
            self._metrics.rejected.labels(r.reason).inc()
            log.warning(
                "rejected event %s/%s from %s: %s",
                r.event.origin_region,
                r.event.origin_offset,
                peer,
                r.reason,
            )
        if accepted and self._admission is not None:
            accepted = await self._admit(peer, accepted)
        if accepted:
            new = await self.log.append_replicated(accepted)
            fresh = sum(1 for n in new if n)
            self._metrics.stored.labels(peer).inc(fresh)
            self._metrics.duplicates.labels(peer).inc(len(new) - fresh)
            if event_spans.ON:  # issue 16: the receiver's half of this hop
                event_spans.replicate_received(peer, accepted, new, started)

    async def _admit(self, peer: str, events: list[InboundEvent]) -> list[InboundEvent]:
        assert self._admission is not None
        reasons = await self._admission.admit(events)
        kept = []
        for ev, reason in zip(events, reasons, strict=True):
            if reason is None:
                kept.append(ev)
                continue
            self._metrics.rejected.labels(reason).inc()
            log.warning(
                "refused event of %s on %r from %s: %s", ev.origin_region, ev.topic, peer, reason
            )
        return kept

    async def read_log(self, seq: int) -> Sequence[LogRecord]:
        return await self.log.read_since(seq, self._config.batch_size)

    async def wait_log(self, seq: int, timeout: float) -> bool:
        return await self.log.wait_beyond(seq, timeout)

    def outbound(
        self, peer: str, records: Sequence[LogRecord], link: Hashable | None = None
    ) -> tuple[ReplicatedEvent, ...]:
        """The events of `records` for `peer`; sends of transit events are noted per `link`.

        Raises ReadRewind (sending nothing) when a topic routed to `peer` again has a gap this
        link already read past: the link must restart from the persisted cursor.
        """
        self._classify(records)
        if not records:
            if self.catch_up.idle(peer, link, routed=self._routed_topics(peer)):
                raise ReadRewind(f"a topic with a gap is routed via {peer} again: resend from it")
            return ()
        here, other = self._routed(peer)
        plan = self.catch_up.read(
            peer, link, first=records[0].seq, last=records[-1].seq, routed=here, elsewhere=other
        )
        if plan.rewind:
            raise ReadRewind(f"routed via {peer} again: {sorted(plan.gaps)}: resend from the gap")
        wanted = [r for r in records if plan.wanted(r.seq, r.topic)]
        events = outbound_events(
            wanted,
            peer=peer,
            routing=self._routing,
            hop_limit=self._config.hop_limit,
            signing_seed=self._seed,
        )
        self._metrics.sent.labels(peer).inc(len(events))
        if event_spans.ON:  # issue 16: the sender's half of this hop
            event_spans.replicate_sent(peer, events)
        if link is not None:
            for ev in events:
                seq = self.transit.tracked((ev.origin_region, ev.origin_offset))
                if seq is not None and ev.origin_region != self.region:
                    self.transit.sent(link, records[-1].seq, seq, ev.destinations)
        return events

    def _routed_topics(self, peer: str) -> set[tuple[str, str]]:
        """(region, topic) pairs whose route goes through `peer` now."""
        return self._routed(peer)[0]

    def _routed(self, peer: str) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
        """(region, topic) pairs routed through `peer` now, and through any other peer."""
        here: set[tuple[str, str]] = set()
        other: set[tuple[str, str]] = set()
        for route in self._routing.routes().values():
            into = here if route.next_hop == peer else other
            into.update((route.region, t.topic) for t in route.topics)
        return here, other

    def _classify(self, records: Sequence[LogRecord]) -> None:
        wanted: set[str] | None = None
        for rec in records:
            if rec.replication is None or not self.transit.is_new(rec.seq):
                continue
            if wanted is None:
                wanted = {t.topic for t in self._routing.local_interest}
            ev = decode_replication(rec.replication, with_attributes=False)
            self.transit.read(
                rec.seq,
                origin=(ev.origin_region, ev.origin_offset),
                topic_wanted_here=rec.topic in wanted,
                destinations=ev.destinations,
                path=ev.path,
                hop_limit=ev.hop_limit,
            )

    async def save_cursor(self, peer: str, seq: int, link: Hashable | None = None) -> None:
        """`link`'s peer acked our log up to `seq`: persist its cursor (never backwards; held
        at its earliest catch-up gap), then delete the transit events no next hop is owed."""
        cursor = self.catch_up.acked(peer, seq)
        if cursor > self._saved_cursors.get(peer, -1):
            self._saved_cursors[peer] = cursor
            await self._cursors.save(peer, cursor)
        if link is None:
            return
        done = self.transit.acked(link, seq)
        if not done:
            return
        try:
            await self.log.discard(done)
        except Exception as exc:  # kept, not lost: the next restart's reads classify them again
            log.warning("could not delete %d transit events: %r", len(done), exc)
            return
        self._metrics.transit_deleted.inc(len(done))

    def link_gone(self, link: Hashable) -> None:
        self.transit.link_gone(link)
        self.catch_up.link_gone(link)
