"""SQLite-only group-commit details: one transaction carries many callers and several topics;
each topic's next offset (saved once per transaction) and every answer must still be right."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.sqlite_store import SqliteEventStore
from gateway.store import NewEvent


def ev(topic: str, i: int) -> NewEvent:
    return NewEvent("/s", f"{topic}-{i}", "t", b"x" * 10)


async def test_concurrent_callers_on_several_topics_survive_restart(tmp_path: Path) -> None:
    s = SqliteEventStore(tmp_path)
    await s.open()
    topics = ("a", "b", "c")
    try:
        calls = [s.append(t, [ev(t, i)], "eu") for i in range(40) for t in topics]
        results = await asyncio.gather(*calls)
        # a repeat of an already stored event inside a later group answers its first offset
        again = await asyncio.gather(*(s.append(t, [ev(t, 0)], "eu") for t in topics))
    finally:
        await s.aclose()
    offsets: dict[str, list[int]] = {t: [] for t in topics}
    for (topic, _), res in zip(((t, i) for i in range(40) for t in topics), results, strict=True):
        assert not res[0].duplicate
        offsets[topic].append(res[0].offset)
    assert all(sorted(o) == list(range(40)) for o in offsets.values())
    assert [r[0].duplicate for r in again] == [True, True, True]
    s = SqliteEventStore(tmp_path)
    await s.open()
    try:
        after = await asyncio.gather(*(s.append(t, [ev(t, 99)], "eu") for t in topics))
        assert [r[0].offset for r in after] == [40, 40, 40]
        stats = {x.name: x.next_offset for x in await s.topic_stats()}
        assert stats == {"a": 41, "b": 41, "c": 41}
    finally:
        await s.aclose()


async def test_every_caller_is_answered_on_its_own_loop_task(tmp_path: Path) -> None:
    """Hundreds of callers queued at once are all answered (one hand-off per transaction)."""
    s = SqliteEventStore(tmp_path)
    await s.open()
    try:
        results = await asyncio.wait_for(
            asyncio.gather(*(s.append("t", [ev("t", i)], "eu") for i in range(600))), 30
        )
        assert sorted(r[0].offset for r in results) == list(range(600))
    finally:
        await s.aclose()
