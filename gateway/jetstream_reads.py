"""Reads of the JetStream store that walk a topic: an offset's sequence, pages, marks, stats.

They only read (direct gets, any current replica answers), so they are plain functions over a
`JetStreamClient` and a `Layout`, shared by the store and the groups (a new group's consumer
starts at the sequence of its committed offset); `retention_cut` is the pure decision of
`apply_retention`. Time O(events of the topic); memory a page plus a small tuple per event.
"""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator, Sequence

from gateway.jetstream_client import JetStreamClient, Record
from gateway.jetstream_layout import H_OFFSET, H_RECEIVED, Layout
from gateway.store import TopicStats

SCAN = 1_000  # records per page when a call scans a topic


async def seq_at_offset(
    js: JetStreamClient, layout: Layout, topic: str, offset: int, *, above: int = 1
) -> int | None:
    """The sequence of `topic`'s first event with offset >= `offset` (None: there is none).

    Events are named by their dedup key, not their offset, but offsets grow with sequences
    within a topic (jetstream_layout's invariants), so this is a binary search over sequences
    from `above` (a sequence known not to be past that event): one get when the first event
    from there already qualifies (a topic read from its start), about log2(seq) gets else."""
    subject = layout.topic_events(topic)
    first = await js.get_next(above, subject)
    if first is None:
        return None
    if int(first.headers[H_OFFSET]) >= offset:
        return first.seq
    last = await js.get_last(subject)
    if last is None or int(last.headers[H_OFFSET]) < offset:
        return None
    lo, hi = first.seq + 1, last.seq  # smallest x with offset(first event at seq >= x) >= offset
    while lo < hi:
        mid = (lo + hi) // 2
        found = await js.get_next(mid, subject)
        if found is not None and int(found.headers[H_OFFSET]) >= offset:
            hi = mid
        else:
            lo = mid + 1
    found = await js.get_next(lo, subject)
    return found.seq if found is not None else None


class Positions:
    """Where readers left off: (topic, offset) -> the sequence to read that offset from.

    After a read ends at the event (seq s, offset o), the topic's next read starts at offset
    o + 1, and no event of the topic at or past that offset is below seq s + 1: so the next
    read is one batch get, with no search. LRU, at most `size` entries."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._seqs: collections.OrderedDict[tuple[str, int], int] = collections.OrderedDict()

    def get(self, topic: str, offset: int) -> int | None:
        seq = self._seqs.get((topic, offset))
        if seq is not None:
            self._seqs.move_to_end((topic, offset))
        return seq

    def put(self, topic: str, offset: int, seq: int) -> None:
        self._seqs[(topic, offset)] = seq
        self._seqs.move_to_end((topic, offset))
        if len(self._seqs) > self._size:
            self._seqs.popitem(last=False)


async def pages(js: JetStreamClient, subject: str) -> AsyncIterator[list[Record]]:
    """Every record on `subject` in sequence order, one page at a time (memory: a page)."""
    seq = 1
    while True:
        page = await js.get_batch(seq, subject, SCAN)
        if page:
            yield page
        if len(page) < SCAN:
            return
        seq = page[-1].seq + 1


Mark = tuple[int, int, float, int]  # (seq, offset, received_at, size) of one stored event


async def marks(js: JetStreamClient, layout: Layout, topic: str) -> list[Mark]:
    """The marks of each stored event of `topic` in order, payloads dropped."""
    return [
        (r.seq, int(r.headers[H_OFFSET]), float(r.headers[H_RECEIVED]), len(r.data))
        async for page in pages(js, layout.topic_events(topic))
        for r in page
    ]


async def first_offset_since(
    js: JetStreamClient, layout: Layout, topic: str, when: float
) -> int | None:
    """The offset of `topic`'s first stored event received at or after `when` (None: none)."""
    async for page in pages(js, layout.topic_events(topic)):
        for record in page:
            if float(record.headers[H_RECEIVED]) >= when:
                return int(record.headers[H_OFFSET])
    return None


async def topic_stats(
    js: JetStreamClient, layout: Layout, names: Sequence[str]
) -> list[TopicStats]:
    """The stats of each topic of `names` that exists (has a head)."""
    out = []
    for name in names:
        head = await js.get_last(layout.head(name))
        if head is None:
            continue
        nxt = int(head.data)
        found = await marks(js, layout, name)
        out.append(
            TopicStats(
                name=name,
                first_offset=found[0][1] if found else nxt,
                next_offset=nxt,
                event_count=len(found),
                stored_bytes=sum(m[3] for m in found),
            )
        )
    return out


def retention_cut(rows: Sequence[Mark], *, older_than: float | None, max_bytes: int | None) -> int:
    """How many of the oldest `rows` retention removes: those received before `older_than`,
    then more until the rest fits in `max_bytes`."""
    cut = 0
    if older_than is not None:
        while cut < len(rows) and rows[cut][2] < older_than:
            cut += 1
    if max_bytes is not None:
        total = sum(m[3] for m in rows[cut:])
        while cut < len(rows) and total > max_bytes:
            total -= rows[cut][3]
            cut += 1
    return cut
