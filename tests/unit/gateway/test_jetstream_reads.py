"""Reads of a JetStream topic (no network: client stand-ins): scans end at the topic as it was
when they began; the figures give counts and bytes without a scan, and only where they hold."""

from __future__ import annotations

from typing import Any, cast

from gateway.jetstream_client import JetStreamClient, Record
from gateway.jetstream_layout import H_BYTES, H_OFFSET, H_RECEIVED, Layout
from gateway.jetstream_reads import (
    SCAN,
    SNAPSHOT_TRIES,
    GaugeStats,
    marks,
    topic_figures,
    topic_stats,
)

LAYOUT = Layout("r")


class GrowingTopic:
    """Topic `t`: each of the first reads appends SCAN more events after the ones it
    returns, as a publisher faster than the scan would."""

    def __init__(self, events: int) -> None:
        self.last = events
        self.reads = 0

    def _record(self, seq: int) -> Record:
        headers = {H_OFFSET: str(seq - 1), H_RECEIVED: "1.0"}
        return Record(seq, LAYOUT.topic_events("t")[:-1] + f"k{seq}", headers, b"x" * 10)

    async def get_last(self, subject: str) -> Record | None:
        if subject == LAYOUT.head("t"):
            return Record(1, subject, {}, str(self.last).encode())
        return self._record(self.last) if self.last else None

    async def get_batch(self, seq: int, subject: str, limit: int) -> list[Record]:
        self.reads += 1
        out = [self._record(s) for s in range(seq, min(self.last, seq + limit - 1) + 1)]
        if self.reads < 10:  # the publisher keeps going (for a while: a test must end)
            self.last += SCAN
        return out

    async def get_first_counted(self, subject: str) -> tuple[Record | None, int]:
        return (self._record(1), self.last) if self.last else (None, 0)


def client(topic: GrowingTopic) -> JetStreamClient:
    return cast(JetStreamClient, cast(Any, topic))


async def test_a_scan_ends_at_the_last_event_stored_when_it_began() -> None:
    topic = GrowingTopic(2 * SCAN + 5)
    found = await marks(client(topic), LAYOUT, "t")
    assert [m[0] for m in found] == list(range(1, 2 * SCAN + 6))
    assert topic.reads == 3  # two full pages and the rest: it does not chase the appends


async def test_an_empty_topic_is_not_read() -> None:
    topic = GrowingTopic(0)
    assert await marks(client(topic), LAYOUT, "t") == []
    assert topic.reads == 0


async def test_the_gauges_forget_topics_that_are_gone() -> None:
    now = [0.0]
    gauges = GaugeStats(60.0, lambda: now[0])
    topic = GrowingTopic(3)
    [stats] = await gauges.stats(client(topic), LAYOUT, ["t"])
    assert (stats.event_count, stats.stored_bytes) == (3, 30)
    reads = topic.reads
    await gauges.stats(client(topic), LAYOUT, ["t"])
    assert topic.reads == reads  # bytes from the cache: no scan
    assert await gauges.stats(client(topic), LAYOUT, []) == []
    await gauges.stats(client(topic), LAYOUT, ["t"])
    assert topic.reads > reads  # forgotten, so summed again


class StoredTopic:
    """Topic `t` as the writer leaves it: each event and the head carry H_BYTES. `moves` heads
    are newer on each read of it, as another replica's appends would make them; the first
    `half_applied` counts miss the last event, as a server still applying the head's batch."""

    def __init__(
        self,
        sizes: list[int],
        *,
        drop: tuple[int, ...] = (),
        moves: int = 0,
        half_applied: int = 0,
    ) -> None:
        self.records: list[Record] = []
        appended = 0
        for offset, size in enumerate(sizes):
            appended += size
            headers = {H_OFFSET: str(offset), H_RECEIVED: "1.0", H_BYTES: str(appended)}
            self.records.append(Record(offset + 1, f"ev.{offset}", headers, b"x" * size))
        self.next, self.appended = len(sizes), appended
        self.records = [r for r in self.records if int(r.headers[H_OFFSET]) not in drop]
        self.moves = moves
        self.half_applied = half_applied
        self.head_reads = self.scans = self.counts = 0

    async def get_last(self, subject: str) -> Record | None:
        if subject == LAYOUT.topic_events("t"):  # where a scan ends
            return self.records[-1] if self.records else None
        if subject != LAYOUT.head("t"):
            return None
        self.head_reads += 1
        seq = 1000 + min(self.head_reads, self.moves + 1)
        return Record(seq, subject, {H_BYTES: str(self.appended)}, str(self.next).encode())

    async def get_batch(self, seq: int, subject: str, limit: int) -> list[Record]:
        self.scans += 1
        return [r for r in self.records if r.seq >= seq][:limit]

    async def get_first_counted(self, subject: str) -> tuple[Record | None, int]:
        self.counts += 1
        short = 1 if self.counts <= self.half_applied else 0
        return (self.records[0] if self.records else None), len(self.records) - short


async def test_the_figures_give_a_topics_bytes_without_reading_its_events() -> None:
    topic = StoredTopic([5, 7, 11, 13], drop=(0, 1))  # retention took the two oldest
    assert await topic_figures(client(topic), LAYOUT, "t") == (2, 4, 2, 24)
    [stats] = await topic_stats(client(topic), LAYOUT, ["t"])
    assert (stats.first_offset, stats.event_count, stats.stored_bytes) == (2, 2, 24)
    assert topic.scans == 0


async def test_a_gap_in_the_offsets_makes_the_bytes_summed() -> None:
    topic = StoredTopic([5, 7, 11, 13], drop=(2,))  # a federation discard of one event
    assert await topic_figures(client(topic), LAYOUT, "t") == (0, 4, 3, None)
    [stats] = await topic_stats(client(topic), LAYOUT, ["t"])
    assert stats.stored_bytes == 25 and topic.scans == 1


async def test_a_head_that_moves_while_counted_is_read_again_until_it_settles() -> None:
    settling = StoredTopic([5, 7], moves=2)
    assert await topic_figures(client(settling), LAYOUT, "t") == (0, 2, 2, 12)
    assert settling.head_reads == 4  # before, then after each of three counts
    restless = StoredTopic([5, 7], moves=100)
    assert await topic_figures(client(restless), LAYOUT, "t") == (0, 2, 2, None)
    assert restless.head_reads == 1 + SNAPSHOT_TRIES  # bounded: then the caller sums


async def test_a_count_from_a_server_still_applying_the_heads_batch_is_taken_again() -> None:
    topic = StoredTopic([5, 7, 11], half_applied=2)
    assert await topic_figures(client(topic), LAYOUT, "t") == (0, 3, 3, 23)
    assert topic.counts == 3 and topic.scans == 0
    [stats] = await topic_stats(client(topic), LAYOUT, ["t"])
    assert stats.stored_bytes == 23 and topic.scans == 0


async def test_a_gap_is_told_from_a_half_applied_batch_by_counting_again() -> None:
    gapped = StoredTopic([5, 7, 11], drop=(1,))
    assert await topic_figures(client(gapped), LAYOUT, "t") == (0, 3, 2, None)
    assert gapped.counts == SNAPSHOT_TRIES  # bounded: then the caller sums


async def test_an_empty_topic_has_no_bytes_and_no_topic_has_no_figures() -> None:
    assert await topic_figures(client(StoredTopic([])), LAYOUT, "t") == (0, 0, 0, 0)
    assert await topic_figures(client(StoredTopic([3])), LAYOUT, "other") is None
