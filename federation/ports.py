"""What the federation needs from its host gateway: three small Protocols a gateway adapts to.

Contract (the same contract tests run against every implementation):
- ReplicationLog has one global, gap-tolerant, strictly increasing `seq` over every stored event,
  local or replicated. `read_since(seq, limit)` returns records with seq > `seq`, ascending.
  `append_replicated` stores a batch atomically and durably (all or none) before returning, and
  deduplicates by (topic, CloudEvent source, id): it reports per event whether it was new.
- `discard(seqs)` deletes records (transit events every next hop acknowledged).
- CursorStore persists, per peer region, a seq of our log up to which the peer holds durably
  everything it is owed: the highest it acked, held at the earliest catch-up gap
  (federation/catch_up.py) while a topic it wanted is withheld. A new link reads from there.
- EventAdmission: a ReplicationLog that also has `admit` judges verified inbound events before
  they are stored: a reason per refused event (counted in
  meshgate_federation_rejected_events_total{reason}, never stored, acked with the batch so
  the link moves on), or AdmissionPaused for the whole batch.
- InterestSource says what this region's local (authorized) subscribers want, and wakes the
  node when that changes (`wait_changed`), so interest is re-advertised without polling.
- KeySetSource (issue 12, optional): the verified key sets the host holds, a wake-up when it
  holds a new one (PutKeySet or the flood), and `accept_key_set` for a set a peer sent:
  checked against the host's view of the chain and stored durably before it returns None.
  Federation floods only what the host holds (federation/key_set_flood.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from eventmodel.attributes import PbEvent, parse
from federation.messages import TopicInterest, TopicKeySet


@dataclass(frozen=True)
class LogRecord:
    """One stored event. `event` holds canonical CloudEvent protobuf bytes; `replication` is the
    opaque blob stored with a replicated event (None for events published in this region)."""

    seq: int
    topic: str
    event: bytes
    attributes: dict[str, str]
    replication: bytes | None


@dataclass(frozen=True)
class InboundEvent:
    """A verified event to store. `origin_region` travels as a field: the host never needs to
    parse `replication`, which is federation's private blob. `parsed` is `event` parsed once
    by the federation door (its spec check), shared read-only by every judge and the store:
    `message()` returns it (parsing only if absent), so one inbound event is decoded once."""

    topic: str
    event: bytes
    replication: bytes
    origin_region: str
    parsed: PbEvent | None = field(default=None, compare=False, repr=False)

    def message(self) -> PbEvent:
        """The event as a protobuf message (read-only). Raises UndecodableEvent."""
        return self.parsed if self.parsed is not None else parse(self.event)


class ReplicationLog(Protocol):
    async def read_since(self, seq: int, limit: int) -> Sequence[LogRecord]: ...

    async def append_replicated(self, events: Sequence[InboundEvent]) -> Sequence[bool]: ...

    def last_seq(self) -> int: ...

    async def discard(self, seqs: Sequence[int]) -> None:
        """Delete these records (relayed events only forwarded; federation/transit.py), with
        their dedup keys: the same event appended again is stored anew. Unknown seqs: ignored."""
        ...

    async def wait_beyond(self, seq: int, timeout: float) -> bool:
        """Return True as soon as `last_seq() > seq`, False after `timeout` seconds."""
        ...


@runtime_checkable
class EventAdmission(Protocol):
    async def admit(self, events: Sequence[InboundEvent]) -> Sequence[str | None]:
        """Per event, None to store it or the reason it is refused (e.g. `not_publisher`).
        Raises AdmissionPaused (a FederationError) to refuse the whole batch unacknowledged."""
        ...


class CursorStore(Protocol):
    async def load(self, peer: str) -> int: ...

    async def save(self, peer: str, seq: int) -> None: ...


class InterestSource(Protocol):
    def local_interest(self) -> Sequence[TopicInterest]: ...

    async def wait_changed(self, seen_version: int) -> int:
        """Return the interest's version as soon as it differs from `seen_version`.

        Versions are >= 0, so `wait_changed(-1)` returns the current version at once.
        """
        ...


class KeySetSource(Protocol):
    def key_sets(self) -> Sequence[TopicKeySet]:
        """Every key set the host holds (verified), in any order."""
        ...

    async def wait_key_sets(self, seen_version: int) -> int:
        """Return the held sets' version as soon as it differs from `seen_version` (-1: now)."""
        ...

    async def accept_key_set(self, key_set: TopicKeySet) -> str | None:
        """None once `key_set` is verified and held (new or not), else why it is refused
        (a short reason, a metric label). Never raises for what the set contains."""
        ...
