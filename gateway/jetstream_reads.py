"""Reads of the JetStream store that walk a topic: find an offset's sequence, page through.

Both only read (direct gets, any current replica answers), so they are plain functions over a
`JetStreamClient` and a `Layout`, shared by the store and the groups (a new group's consumer
starts at the sequence of its committed offset).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from gateway.jetstream_client import JetStreamClient, Record
from gateway.jetstream_layout import H_OFFSET, Layout

SCAN = 1_000  # records per page when a call scans a topic


async def seq_at_offset(js: JetStreamClient, layout: Layout, topic: str, offset: int) -> int | None:
    """The sequence of `topic`'s first event with offset >= `offset` (None: there is none).

    One direct get when that offset is stored, else a binary search over sequences (retention
    or deletions left a gap)."""
    exact = await js.get_last(layout.event(topic, offset))
    if exact is not None:
        return exact.seq
    subject = layout.topic_events(topic)
    last = await js.get_last(subject)
    if last is None or int(last.headers[H_OFFSET]) < offset:
        return None
    lo, hi = 1, last.seq  # smallest x with offset(first event at seq >= x) >= offset
    while lo < hi:
        mid = (lo + hi) // 2
        found = await js.get_next(mid, subject)
        if found is not None and int(found.headers[H_OFFSET]) >= offset:
            hi = mid
        else:
            lo = mid + 1
    first = await js.get_next(lo, subject)
    return first.seq if first is not None else None


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
