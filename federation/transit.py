"""Transit: relayed events this region stores only to forward, until every next hop acked them.

Sans-I/O: the data path reports what it read, sent and had acknowledged; `acked` returns the
seqs of our log that may now be deleted. Rules:
- An event is transit when, the first time any link reads it from our log, it was relayed to us
  (not published here), this region is not among its destinations and no local interest names
  its topic. Anything else is kept as before.
- It owes its remaining destinations (minus its path and us; none once its hop limit is spent).
  A send of it to peer P for destinations D, in the batch that ends at seq B, pays D once P acks
  B on that same link. Sends of a link that ended unacknowledged are forgotten: the next link
  reads the log from the saved cursor and sends (and records) them again.
- A destination with no route is never paid, so such an event stays (conservative: kept, never
  lost). At most MAX_TRACKED events are tracked at once; beyond that new ones are simply kept
  (a destination unreachable for long must not grow memory without bound).
- Tracking lives in memory: after a restart, events read again past a peer's cursor are
  classified again; events every peer had already acknowledged before the restart stay.
Deleting also drops the event's dedup key. If its origin resends it later (a lost ack), the
relay stores and forwards it again and the next hop deduplicates it by (topic, source, id): no
loss, no duplicate delivery, one extra copy in transit.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

MAX_TRACKED = 100_000
OriginKey = tuple[str, int]  # (origin region, origin offset): one event, whatever its copies


@dataclass
class _Owed:
    origin: OriginKey
    destinations: set[str]


@dataclass
class _Send:
    batch_seq: int
    seq: int
    destinations: frozenset[str]


@dataclass
class Transit:
    local_region: str
    classified_upto: int = 0  # records up to here were classified (or predate this process)
    _owed: dict[int, _Owed] = field(default_factory=dict)  # log seq -> what it still owes
    _by_origin: dict[OriginKey, int] = field(default_factory=dict)
    _sends: dict[Hashable, list[_Send]] = field(default_factory=dict)  # per link, in order
    _done: list[int] = field(default_factory=list)

    def is_new(self, seq: int) -> bool:
        return seq > self.classified_upto

    def read(
        self,
        seq: int,
        *,
        origin: OriginKey,
        topic_wanted_here: bool,
        destinations: Iterable[str],
        path: Iterable[str],
        hop_limit: int,
    ) -> None:
        """Classify relayed record `seq`, read for the first time (see `is_new`)."""
        self.classified_upto = max(self.classified_upto, seq)
        dests = set(destinations)
        if topic_wanted_here or self.local_region in dests:
            return
        owed = dests - set(path) - {self.local_region} if hop_limit > 1 else set()
        if not owed:
            self._done.append(seq)
            return
        if len(self._owed) >= MAX_TRACKED:
            return
        self._owed[seq] = _Owed(origin, owed)
        self._by_origin[origin] = seq

    def tracked(self, origin: OriginKey) -> int | None:
        """The log seq of a transit event still owed somewhere, by its origin key."""
        return self._by_origin.get(origin)

    def sent(self, link: Hashable, batch_seq: int, seq: int, destinations: Iterable[str]) -> None:
        self._sends.setdefault(link, []).append(_Send(batch_seq, seq, frozenset(destinations)))

    def acked(self, link: Hashable, batch_seq: int) -> list[int]:
        """`link`'s peer holds our log up to `batch_seq`: the seqs now owed nowhere."""
        sends = self._sends.get(link, [])
        paid = 0
        for send in sends:
            if send.batch_seq > batch_seq:
                break
            paid += 1
            owed = self._owed.get(send.seq)
            if owed is None:
                continue
            owed.destinations -= send.destinations
            if not owed.destinations:
                del self._owed[send.seq]
                self._by_origin.pop(owed.origin, None)
                self._done.append(send.seq)
        del sends[:paid]
        done, self._done = self._done, []
        return done

    def link_gone(self, link: Hashable) -> None:
        self._sends.pop(link, None)

    def owed(self) -> dict[int, frozenset[str]]:
        """What each tracked event still owes (for tests and statistics)."""
        return {seq: frozenset(o.destinations) for seq, o in self._owed.items()}
