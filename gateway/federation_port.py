"""Adapts this gateway's store and interest to the federation layer's ports (federation/ports.py).

`GatewayReplicationLog` (ReplicationLog), `GatewayCursors` (CursorStore) and
`GatewayInterest` (InterestSource) are thin: the store already has a global seq, relayed
appends deduplicated by (topic, source, id) in one transaction, a cursor table and append
wake-ups. Mapping rules:

- LogRecord.event = the stored canonical CloudEvent bytes (deterministic serialisation, the
  same bytes federation signs); attributes are the filterable strings of eventmodel/attributes.py,
  parsed once per stored event for every link and subscriber (gateway/store.py
  `attribute_strings`: recent reads come from the store's in-memory tail with them cached).
  A relayed event arrives as its bytes (federation/raw_wire.py) and is parsed once, at the
  federation door's spec check; that parse (`InboundEvent.message()`) gives the judges and the
  dedup key here their fields, and its attributes are kept with it, so neither local delivery
  nor the next hop parses it again.
- The origin region of a relayed event arrives as `InboundEvent.origin_region` and is stored in
  `origin_region`; the replication blob is kept opaque (never parsed here).
- `GatewayReplicationLog.admit` (federation's EventAdmission): with `PublisherRights` (a
  registry gateway) every replicated event must be signed by an allowed publisher of its topic
  in this gateway's view (gateway/publishers.py); an open gateway admits everything.
- Cursors are stored under `peer:<region>`. A store that offers `set_cursor_soon` (SQLite,
  memory) takes the save into its next group commit without the pump waiting for it: a crash
  may lose the last save, and the peer is resent from the one before (it deduplicates). The
  writer's queue order keeps a transit discard that follows a save after it.
- Interest filters are eventmodel filters on both sides, passed as they are; each topic
  interest carries its readers' live proofs (gateway/interest.py). `GatewayInterest.wait_changed`
  wakes on every registry re-evaluation and at a proof's expiry (no polling).
- `peer_view(node.peers)` turns the federation's peer table into what ListPeers answers.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from eventmodel import attributes
from federation import messages as fm
from federation.ports import CursorStore, InboundEvent, InterestSource, LogRecord, ReplicationLog
from gateway.interest import InterestRegistry, Snapshot
from gateway.publishers import PublisherRights
from gateway.service import PeerView
from gateway.store import EventStore, NewEvent, ReplicatedItem, attribute_strings
from proto import gateway_pb2


class GatewayReplicationLog:
    def __init__(self, store: EventStore, publishers: PublisherRights | None = None) -> None:
        self._store = store
        self._publishers = publishers
        self._appended = asyncio.Event()
        self._remove = store.on_append(lambda topics, last: self._appended.set())

    def last_seq(self) -> int:
        return self._store.last_seq

    async def read_since(self, seq: int, limit: int) -> Sequence[LogRecord]:
        rows = await self._store.read_since(seq, limit)
        return [
            LogRecord(
                seq=r.seq,
                topic=r.topic,
                event=r.payload,
                attributes=attribute_strings(r),
                replication=r.replication,
            )
            for r in rows
        ]

    async def append_replicated(self, inbound: Sequence[InboundEvent]) -> Sequence[bool]:
        entries = []
        for ev in inbound:
            pb = ev.message()  # parsed once at the federation door
            new = NewEvent(pb.source, pb.id, pb.type, ev.event, attributes.attribute_strings(pb))
            entries.append((ev.topic, ReplicatedItem(new, ev.origin_region, ev.replication)))
        return await self._store.append_replicated_batch(entries)

    async def admit(self, inbound: Sequence[InboundEvent]) -> Sequence[str | None]:
        if self._publishers is None:
            return [None] * len(inbound)
        return await self._publishers.admit(inbound)

    async def discard(self, seqs: Sequence[int]) -> None:
        await self._store.delete_events(seqs)

    async def wait_beyond(self, seq: int, timeout: float) -> bool:
        """True as soon as the log holds a seq above `seq`; False after `timeout` seconds."""
        try:
            async with asyncio.timeout(timeout):
                while self._store.last_seq <= seq:
                    self._appended.clear()
                    if self._store.last_seq > seq:
                        break
                    await self._appended.wait()
        except TimeoutError:
            return self._store.last_seq > seq
        return True

    def close(self) -> None:
        self._remove()


@runtime_checkable
class CursorsSoon(Protocol):
    """A store that can take a cursor save into its next commit without a wait."""

    def set_cursor_soon(self, name: str, seq: int) -> None: ...


class GatewayCursors:
    def __init__(self, store: EventStore) -> None:
        self._store = store
        self._soon = store if isinstance(store, CursorsSoon) else None
        self._saved: dict[str, int] = {}  # what this process saved (maybe not committed yet)

    async def load(self, peer: str) -> int:
        if peer in self._saved:
            return self._saved[peer]
        return await self._store.get_cursor(f"peer:{peer}") or 0

    async def save(self, peer: str, seq: int) -> None:
        if self._soon is not None:
            self._soon.set_cursor_soon(f"peer:{peer}", seq)
        else:
            await self._store.set_cursor(f"peer:{peer}", seq)
        self._saved[peer] = seq


def topic_interests(proven: Snapshot) -> list[fm.TopicInterest]:
    """Interest as federation advertises it (sorted: equal interest, equal advertisement)."""
    return sorted(
        (
            fm.TopicInterest(
                i.topic, i.filters, tuple(fm.InterestProof(p.message, p.signature) for p in ps)
            )
            for i, ps in proven.items()
        ),
        key=repr,
    )


class GatewayInterest:
    """Local interest with its readers' proofs. `wait_changed` returns on every re-evaluation
    of the registry (a local change or an access-view change: federation re-judges remote
    interest then too) and re-evaluates when a kept proof expires."""

    def __init__(self, interest: InterestRegistry, clock: Callable[[], float] = time.time):
        self._interest = interest
        self._clock = clock

    def local_interest(self) -> Sequence[fm.TopicInterest]:
        return topic_interests(self._interest.proven())

    async def wait_changed(self, seen_version: int) -> int:
        while True:
            expiry = self._interest.next_expiry()
            delay = None if expiry is None else max(0.0, expiry - self._clock()) + 0.01
            pulses = await self._interest.wait_pulse(seen_version, delay)
            if pulses != seen_version:
                return pulses
            self._interest.reevaluate()  # a proof expired: drop it (pulses on)


class PeerRow(Protocol):
    """One row of the federation's peer table (federation.node.PeerInfo, a frozen dataclass)."""

    @property
    def region(self) -> str: ...
    @property
    def address(self) -> str: ...
    @property
    def up(self) -> bool: ...
    @property
    def lag_events(self) -> int: ...
    @property
    def lag_seconds(self) -> float: ...
    @property
    def last_seen(self) -> float:  # unix time, 0 if never
        ...
    @property
    def distance(self) -> int: ...
    @property
    def topics(self) -> Sequence[str]: ...


def peer_view(peers: Callable[[], Sequence[PeerRow]]) -> Callable[[], PeerView]:
    """Adapt a peer-table getter to the Gateway's `peers=` part (ListPeers)."""

    def view() -> PeerView:
        out = []
        for p in peers():
            status = gateway_pb2.PeerStatus(
                region=p.region,
                address=p.address,
                up=p.up,
                lag_events=max(0, p.lag_events),
                lag_seconds=p.lag_seconds,
                distance=p.distance,
                topics=list(p.topics),
            )
            if p.last_seen:
                status.last_seen.FromDatetime(dt.datetime.fromtimestamp(p.last_seen, dt.UTC))
            out.append(status)
        return PeerView(tuple(out))

    return view


def federation_ports(
    store: EventStore, interest: InterestRegistry, publishers: PublisherRights | None = None
) -> tuple[ReplicationLog, CursorStore, InterestSource]:
    """The three ports a FederationNode needs, over this gateway's store and interest."""
    log_port = GatewayReplicationLog(store, publishers)
    return log_port, GatewayCursors(store), GatewayInterest(interest)
