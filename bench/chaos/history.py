"""What a chaos run saw, as plain records: the checker judges them, the report prints them.

Times are `time.monotonic()` seconds of the runner process (one clock for every record).
A publish is *acknowledged* only when the gateway answered the Publish call; a failed or
timed-out call is retried with the same (source, id), so the gateway's dedup may answer
`duplicate` for a retry of an event it had in fact stored: that still counts as acknowledged.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

EventKey = tuple[str, str]  # (source, id): CloudEvents' identity, the gateway's dedup key


@dataclass(frozen=True, slots=True)
class Acked:
    key: EventKey
    at: float


@dataclass(frozen=True, slots=True)
class Delivered:
    key: EventKey
    consumer: str  # "<region>/<group>": one durable group in one region
    offset: int  # the consumer region's store position of this copy
    attempt: int
    at: float


@dataclass
class History:
    """Everything one run recorded; mutated only by the workload and the fault steps."""

    acked: list[Acked] = field(default_factory=list)
    delivered: list[Delivered] = field(default_factory=list)
    heals: list[float] = field(default_factory=list)  # each moment a fault was undone
    revoke_applied: dict[str, float] = field(default_factory=dict)  # consumer -> moment
    publish_errors: collections.Counter[str] = field(default_factory=collections.Counter)
    stream_ends: collections.Counter[str] = field(default_factory=collections.Counter)
    unacked: int = 0  # events whose publish never got an answer within the retry bound
    notes: list[str] = field(default_factory=list)
    witnesses: list[str] = field(default_factory=list)  # consumers that must get every event
    failures: list[str] = field(default_factory=list)  # a promise broken other than LOST/DUP
    seen: dict[str, set[EventKey]] = field(default_factory=dict)  # consumer -> keys delivered

    def ack(self, key: EventKey, at: float) -> None:
        self.acked.append(Acked(key, at))

    def deliver(self, key: EventKey, consumer: str, offset: int, attempt: int, at: float) -> None:
        self.delivered.append(Delivered(key, consumer, offset, attempt, at))
        self.seen.setdefault(consumer, set()).add(key)

    def caught_up(self) -> bool:
        """Every witness has every acknowledged event (cheap enough to poll)."""
        acked = self.acked_keys()
        return all(acked <= self.seen.get(w, set()) for w in self.witnesses)

    def acked_keys(self) -> set[EventKey]:
        return {a.key for a in self.acked}
