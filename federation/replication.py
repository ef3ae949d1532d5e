"""What goes out on a link and what comes in: pure decisions over log records and events.

Outbound rules:
- A local record (no replication blob) goes to peer P with the destinations, among the regions
  whose interest matches it now, whose next hop is P. Local events of one batch are signed
  together (one Merkle root per batch per peer).
- A relayed record is forwarded with its stored, still-unreached destinations whose next hop is
  P, never to a region on its path, with `self` appended to the path and the hop limit reduced.
  Its origin signature travels unchanged.
Inbound rules (each rejection is reported with its reason, for metrics):
- `loop`: we are on the event's path or are its origin; `hop_limit`: no hops left;
  `unsigned` / `unknown_origin` / `bad_proof` / `bad_signature`: origin signature check failed;
`invalid_event`: not a CloudEvent by the spec (eventmodel.attributes.validate_bytes), counted
and dropped like the others: one bad event never ends the link.
Cost rules: an event travels as its canonical bytes (federation/raw_wire.py) and is parsed once
on arrival (the spec check); that parse rides along in `InboundEvent.parsed` for the host's
judges and store. A relayed record is forwarded from its blob without parsing the event.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from eventmodel.attributes import validate_bytes
from eventmodel.errors import InvalidEvent
from federation.codec import decode_replication, encode_routing, replication_hops
from federation.errors import PeerProtocolError, SignatureError
from federation.messages import ReplicatedEvent
from federation.ports import InboundEvent, LogRecord
from federation.routing import RoutingTable
from federation.signing import SignatureVerifier, sign_batch


class _BatchRoutes:
    """The routing table read once per outbound batch (not twice per event): destinations
    through one peer, cached per topic when no interest in that topic has filters."""

    def __init__(self, routing: RoutingTable, peer: str) -> None:
        self.local = routing.local_region
        self.peer = peer
        self.table = routing.routes()
        self._sorted = sorted(self.table.items())
        self._by_topic: dict[str, tuple[str, ...]] = {}

    def local_event(self, topic: str, attributes: dict[str, str]) -> tuple[str, ...]:
        """Regions wanting this local event whose next hop is the peer (sorted)."""
        cached = self._by_topic.get(topic)
        if cached is not None:
            return cached
        filtered = False
        out = []
        for region, route in self._sorted:
            if region == self.local:
                continue
            wanted = False
            for t in route.topics:
                if t.topic == topic:
                    filtered = filtered or bool(t.filters)
                    wanted = wanted or t.wants(topic, attributes)
            if wanted and route.next_hop == self.peer:
                out.append(region)
        dests = tuple(out)
        if not filtered:
            self._by_topic[topic] = dests
        return dests

    def relayed(self, regions: Iterable[str]) -> tuple[str, ...]:
        """Those of `regions` routed through the peer (sorted)."""
        table = self.table
        return tuple(
            sorted(r for r in regions if (route := table.get(r)) and route.next_hop == self.peer)
        )


def outbound_events(
    records: Sequence[LogRecord],
    *,
    peer: str,
    routing: RoutingTable,
    hop_limit: int,
    signing_seed: bytes,
) -> tuple[ReplicatedEvent, ...]:
    """The events of `records` that peer `peer` must receive, ready to send."""
    local = routing.local_region
    routes = _BatchRoutes(routing, peer)
    own: list[ReplicatedEvent] = []
    order: list[ReplicatedEvent | int] = []  # int: index into `own`, signed below
    for rec in records:
        if rec.replication is None:
            dests = routes.local_event(rec.topic, rec.attributes)
            if dests:
                order.append(len(own))
                own.append(
                    ReplicatedEvent(
                        topic=rec.topic,
                        event=rec.event,
                        origin_region=local,
                        origin_offset=rec.seq,
                        path=(local,),
                        destinations=dests,
                        hop_limit=hop_limit,
                        signature=None,
                        attributes=rec.attributes,
                    )
                )
            continue
        path, hop_limit_left = replication_hops(rec.replication)
        if hop_limit_left <= 1 or peer in path:
            continue  # decided without decoding the event (most relayed records end here)
        ev = decode_replication(rec.replication, event=rec.event, with_attributes=False)
        dests = routes.relayed(d for d in ev.destinations if d != local and d not in ev.path)
        if dests:
            order.append(
                dataclasses.replace(
                    ev,
                    path=(*ev.path, local),
                    destinations=dests,
                    hop_limit=ev.hop_limit - 1,
                    attributes=rec.attributes,  # the store's, parsed once when it arrived
                )
            )
    signed = sign_batch(own, signing_seed)
    return tuple(signed[x] if isinstance(x, int) else x for x in order)


@dataclass(frozen=True)
class Rejection:
    event: ReplicatedEvent
    reason: str


def inbound_events(
    events: Sequence[ReplicatedEvent],
    *,
    local_region: str,
    verifier: SignatureVerifier,
    origin_key: Callable[[str], bytes | None],
) -> tuple[list[InboundEvent], list[Rejection]]:
    """Split a received batch into events to store and rejections with their reasons."""
    accepted: list[InboundEvent] = []
    rejected: list[Rejection] = []
    for ev in events:
        if ev.origin_region == local_region or local_region in ev.path:
            rejected.append(Rejection(ev, "loop"))
            continue
        if ev.hop_limit < 1:
            rejected.append(Rejection(ev, "hop_limit"))
            continue
        try:
            parsed = validate_bytes(ev.event)  # the one parse of this event here
        except InvalidEvent:
            rejected.append(Rejection(ev, "invalid_event"))
            continue
        try:
            verifier.verify(ev, origin_key(ev.origin_region))
            blob = encode_routing(ev)  # the event itself is stored as the payload
        except SignatureError as exc:
            rejected.append(Rejection(ev, exc.reason))
            continue
        except PeerProtocolError:
            rejected.append(Rejection(ev, "malformed"))
            continue
        accepted.append(InboundEvent(ev.topic, ev.event, blob, ev.origin_region, parsed))
    return accepted, rejected
