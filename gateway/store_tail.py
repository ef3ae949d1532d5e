"""CommittedTail: the most recent committed events of a store, in memory, for its readers.

Why: delivery and replication mostly read what was just written. Serving those reads from the
rows the writer committed (the very bytes stored, with their parsed attributes cached once,
gateway/store.py `ParsedOnce`) saves a database query, a thread hop and a parse per event and
per reader. Bytes stored = bytes sent: a row here is the row the database holds.

Invariants (loop thread only: the writer hands each commit over after its COMMIT returned):

- Holds only committed rows, added in commit (seq) order.
- Coverage: every committed, undeleted event with seq > `low` is held; per topic, every one
  with offset >= `first[topic]`. A read answered here is what the database would answer; a
  read starting below the coverage answers None (the caller reads the database).
- `next[topic]` is the committed next offset of every topic: a read at or past it is empty
  without a query (the common "caught up" case of every subscriber and peer link).
- Deleted rows (retention, transit discards) leave in the same hand-off as their commit.
- Bounded: beyond `max_bytes` of payload or `max_events` seqs the oldest rows are evicted
  and coverage moves up. A slow reader is never blocked and never misses anything: it reads
  the database until it has caught up with the tail.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence

from gateway.store import StoredEvent

# Payload bytes held: a few hundred milliseconds of a busy gateway's 1 KiB events, what readers
# that keep up lag by. Each row's parsed attributes (once a reader asked) and its objects cost
# about as much again, so the tail stays near 10 MB of the 120 MB RSS budget (a bench
# run measured the gateway at 128 MB peak with 8 MiB); a reader further behind reads the database.
DEFAULT_TAIL_BYTES = 4 * 1024 * 1024
DEFAULT_TAIL_EVENTS = 10_000


class CommittedTail:
    def __init__(
        self,
        last_seq: int,
        next_offsets: Mapping[str, int],
        *,
        max_bytes: int = DEFAULT_TAIL_BYTES,
        max_events: int = DEFAULT_TAIL_EVENTS,
    ) -> None:
        self.low = last_seq  # every event with seq > low is held (or deleted)
        self.last = last_seq  # the highest committed seq handed over
        self.next: dict[str, int] = dict(next_offsets)
        self._first: dict[str, int] = dict(next_offsets)  # topics absent: 0 (new since start)
        self._by_seq: dict[int, StoredEvent] = {}
        self._by_topic: dict[str, dict[int, StoredEvent]] = {}
        self._order: deque[int] = deque()  # seqs added, oldest first (deleted ones included)
        self.bytes = 0
        self.max_bytes = max_bytes
        self.max_events = max_events

    def __len__(self) -> int:
        return len(self._by_seq)

    # -- the writer's hand-off (loop thread) -----------------------------------------------

    def committed(
        self,
        rows: Sequence[StoredEvent],
        deleted: Sequence[int],
        next_offsets: Mapping[str, int],
        last_seq: int,
    ) -> None:
        """One commit: its inserted rows (seq order), deleted seqs and touched topics' next
        offsets."""
        for row in rows:
            self._by_seq[row.seq] = row
            self._by_topic.setdefault(row.topic, {})[row.offset] = row
            self._order.append(row.seq)
            self.bytes += row.size
        self.next.update(next_offsets)
        self.last = max(self.last, last_seq)
        for seq in deleted:
            self._drop(seq)
        self._evict()

    def _drop(self, seq: int) -> StoredEvent | None:
        row = self._by_seq.pop(seq, None)
        if row is None:
            return None
        per_topic = self._by_topic[row.topic]
        del per_topic[row.offset]
        if not per_topic:
            del self._by_topic[row.topic]
        self.bytes -= row.size
        return row

    def _evict(self) -> None:
        order = self._order
        while order and (
            self.bytes > self.max_bytes
            or len(order) > self.max_events
            or order[0] not in self._by_seq
        ):
            seq = order.popleft()
            row = self._drop(seq)
            self.low = max(self.low, seq)
            if row is not None:
                self._first[row.topic] = max(self._first.get(row.topic, 0), row.offset + 1)

    # -- reads: a list when covered, None when the database must answer -------------------

    def since(self, seq: int, limit: int) -> list[StoredEvent] | None:
        """Events of every topic with seq > `seq`, in seq order, or None if not covered."""
        if seq < self.low:
            return None
        out: list[StoredEvent] = []
        by_seq = self._by_seq
        s = seq + 1
        while s <= self.last and len(out) < limit:
            row = by_seq.get(s)
            if row is not None:
                out.append(row)
            s += 1
        return out

    def read(self, topic: str, from_offset: int, limit: int) -> list[StoredEvent] | None:
        """Events of `topic` with offset >= from_offset, in offset order, or None."""
        nxt = self.next.get(topic, 0)
        if from_offset >= nxt:
            return []
        if from_offset < self._first.get(topic, 0):
            return None
        rows = self._by_topic.get(topic, {})
        out: list[StoredEvent] = []
        o = from_offset
        while o < nxt and len(out) < limit:
            row = rows.get(o)
            if row is not None:
                out.append(row)
            o += 1
        return out

    def offsets(self, topic: str, wanted: Sequence[int]) -> list[StoredEvent] | None:
        """The events at the sorted offsets `wanted` still stored, or None if not covered."""
        if not wanted:
            return []
        if wanted[0] < self._first.get(topic, 0):
            return None
        rows = self._by_topic.get(topic, {})
        return [rows[o] for o in wanted if o in rows]
