"""The writer's fast path keeps every guarantee of the slow one: consecutive appends share one
executemany, yet a duplicate answers its first offset, a failing request is undone alone and
whole, a kill -9 loses nothing acknowledged (either durability), and a cursor queued without a
wait commits before a delete queued after it."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from gateway import sqlite_schema
from gateway.errors import StoreError
from gateway.sqlite_store import SqliteEventStore
from gateway.sqlite_writer import Counters, SqliteWriter, Tx
from gateway.store import AppendListeners, AppendResult, NewEvent, Row, StoredEvent
from tests.support.gateway_process import REPO


def ev(i: int) -> NewEvent:
    return NewEvent("/s", f"id-{i}", "t", b"x" * 10)


def rows(*ids: int, topic: str = "t") -> list[Row]:
    return [(topic, ev(i), "eu", None) for i in ids]


async def _one_group(path: str, requests: list[list[Row]]) -> tuple[list[object], list[int]]:
    """Run `requests` as append jobs queued together (one transaction); return each answer and
    the seqs handed to on_commit."""
    conn = sqlite_schema.connect(path)
    sqlite_schema.migrate(conn)
    committed: list[int] = []

    def on_commit(new: object, deleted: object, nxt: object, last: int) -> None:
        assert isinstance(new, (list, tuple))
        committed.extend(r.seq for r in new if isinstance(r, StoredEvent))

    writer = SqliteWriter(
        conn,
        Counters.load(conn),
        loop=asyncio.get_running_loop(),
        listeners=AppendListeners(),
        on_commit=on_commit,
    )
    writer.start()
    started, release = threading.Event(), threading.Event()

    def hold(conn: sqlite3.Connection, tx: Tx) -> bool:
        started.set()
        return release.wait(10)

    try:
        blocker = asyncio.create_task(writer.submit(hold))
        assert await asyncio.to_thread(started.wait, 10)
        jobs = [asyncio.create_task(writer.submit_rows(r, 1.0)) for r in requests]
        await asyncio.sleep(0)  # each task has queued its job behind the blocker
        release.set()
        await blocker
        answers = await asyncio.gather(*jobs, return_exceptions=True)
    finally:
        release.set()
        await writer.stop()
    return list(answers), committed


def stored(path: str) -> list[tuple[int, int, str]]:
    with sqlite3.connect(path) as check:
        return check.execute("SELECT seq, offset, id FROM events ORDER BY seq").fetchall()


async def test_duplicates_in_a_group_answer_their_first_offset(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    answers, committed = await _one_group(path, [rows(0), rows(0), rows(1, 2), rows(1, 3)])
    assert answers == [
        [AppendResult(0, False)],
        [AppendResult(0, True)],
        [AppendResult(1, False), AppendResult(2, False)],
        [AppendResult(1, True), AppendResult(3, False)],
    ]
    assert stored(path) == [(1, 0, "id-0"), (2, 1, "id-1"), (3, 2, "id-2"), (4, 3, "id-3")]
    assert committed == [1, 2, 3, 4]  # the rolled back optimistic rows never reach the tail


async def test_a_failing_request_is_undone_whole_and_alone(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    bad: list[Row] = [*rows(10, 11), ("t", ev(12), None, None)]  # type: ignore[list-item]
    answers, committed = await _one_group(path, [rows(0), bad, rows(1)])
    first, failed, third = answers
    assert first == [AppendResult(0, False)]
    assert isinstance(failed, StoreError)  # origin_region NOT NULL: none of its rows stored
    assert third == [AppendResult(1, False)]
    assert stored(path) == [(1, 0, "id-0"), (2, 1, "id-1")]
    assert committed == [1, 2]


async def test_the_fast_path_groups_many_requests_in_one_statement(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    answers, committed = await _one_group(path, [rows(i) for i in range(100)])
    assert [a for (a,) in answers] == [AppendResult(i, False) for i in range(100)]  # type: ignore[misc]
    assert committed == list(range(1, 101))


async def test_a_cursor_queued_without_a_wait_commits_before_a_later_delete(
    tmp_path: Path,
) -> None:
    store = SqliteEventStore(tmp_path)
    await store.open()
    try:
        await store.append("t", [ev(0), ev(1)], "eu")
        store.set_cursor_soon("peer:us", 2)
        assert await store.delete_events([1]) == 1
        assert await store.get_cursor("peer:us") == 2  # committed by the time the delete was
    finally:
        await store.aclose()
    store = SqliteEventStore(tmp_path)
    await store.open()
    try:
        assert await store.get_cursor("peer:us") == 2
        assert [r.seq for r in await store.read_since(0, 10)] == [2]
    finally:
        await store.aclose()


async def test_durability_os_round_trip(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fsync or os"):
        SqliteEventStore(tmp_path, durability="never")
    store = SqliteEventStore(tmp_path, durability="os")
    await store.open()
    try:
        assert [r.offset for r in await store.append("t", [ev(0), ev(1)], "eu")] == [0, 1]
    finally:
        await store.aclose()
    conn = sqlite_schema.connect(str(tmp_path / "events.sqlite3"), durability="os")
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    conn.close()
    store = SqliteEventStore(tmp_path)  # the same file opens with either setting
    await store.open()
    try:
        assert [r.offset for r in await store.read("t", 0, 10)] == [0, 1]
        assert (await store.append("t", [ev(1)], "eu"))[0].duplicate
    finally:
        await store.aclose()


WRITERS = """
import asyncio, sys
from pathlib import Path
from gateway.sqlite_store import SqliteEventStore
from gateway.store import NewEvent

async def main() -> None:
    store = SqliteEventStore(Path(sys.argv[1]), durability=sys.argv[2])
    await store.open()

    async def writer(w: int) -> None:
        for i in range(1_000_000):
            event = NewEvent("/s", f"{w}-{i}", "t", b"y" * 512)
            (result,) = await store.append("t", [event], "eu")
            print(f"{w}-{i} {result.offset}", flush=True)

    async with asyncio.TaskGroup() as tg:
        for w in range(32):
            tg.create_task(writer(w))

asyncio.run(main())
"""


async def _recover(path: Path) -> None:
    store = SqliteEventStore(path)  # opening recovers the WAL up to the last whole commit
    await store.open()
    await store.aclose()


@pytest.mark.parametrize("durability", ["fsync", "os"])
def test_kill9_during_group_commits_loses_nothing_acknowledged(
    tmp_path: Path, durability: str
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITERS, str(tmp_path), durability],
        stdout=subprocess.PIPE,
        cwd=REPO,
    )
    assert proc.stdout is not None
    watchdog = threading.Timer(60, proc.kill)  # a hung child fails the test, never hangs it
    watchdog.start()
    lines: list[bytes] = []
    try:
        while len(lines) < 2000:  # bounded: the child prints one line per acknowledged append
            line = proc.stdout.readline()
            assert line, "the writer child exited early"
            lines.append(line)
    finally:
        proc.kill()  # SIGKILL while 32 writers keep group commits in flight
        rest, _ = proc.communicate(timeout=30)
        watchdog.cancel()
    acked = dict(line.decode().split() for line in [*lines, *rest.splitlines()] if b" " in line)
    asyncio.run(_recover(tmp_path))
    with sqlite3.connect(tmp_path / "events.sqlite3") as check:
        got = dict(check.execute("SELECT id, offset FROM events WHERE topic='t'").fetchall())
    assert sorted(got.values()) == list(range(len(got)))  # dense: no torn group
    assert len(acked) >= 2000
    assert {i: got.get(i) for i in acked} == {i: int(o) for i, o in acked.items()}
