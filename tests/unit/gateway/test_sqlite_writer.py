"""The writer thread on its own: jobs queued together share ONE transaction, a failing job is
rolled back to its savepoint (its counters too) without undoing the others, and nothing is
answered or announced before the COMMIT."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from gateway import sqlite_queries as q
from gateway import sqlite_schema
from gateway.errors import GatewayClosing
from gateway.sqlite_writer import Counters, SqliteWriter, Tx
from gateway.store import AppendListeners, AppendResult, NewEvent


def ev(i: int) -> NewEvent:
    return NewEvent("/s", f"id-{i}", "t", b"x" * 10)


def insert(i: int, *, fail: bool = False):  # type: ignore[no-untyped-def]
    def run(conn: sqlite3.Connection, tx: Tx) -> list[AppendResult]:
        out = q.insert_events(conn, tx, [("t", ev(i), "eu", None)], 0.0)
        if fail:
            raise ValueError(f"job {i} fails after inserting")
        return out

    return run


async def test_a_failing_job_is_undone_alone_inside_one_transaction(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    conn = sqlite_schema.connect(path)
    sqlite_schema.migrate(conn)
    listeners = AppendListeners()
    calls: list[tuple[frozenset[str], int]] = []
    listeners.add(lambda topics, seq: calls.append((topics, seq)))
    writer = SqliteWriter(
        conn, Counters.load(conn), loop=asyncio.get_running_loop(), listeners=listeners
    )
    writer.start()
    started, release = threading.Event(), threading.Event()

    def hold(conn: sqlite3.Connection, tx: Tx) -> bool:
        started.set()
        return release.wait(10)

    try:
        # The first transaction holds the writer until the next three jobs are all queued.
        blocker = asyncio.create_task(writer.submit(hold))
        assert await asyncio.to_thread(started.wait, 10)
        jobs = [
            asyncio.create_task(writer.submit(insert(1))),
            asyncio.create_task(writer.submit(insert(2, fail=True))),
            asyncio.create_task(writer.submit(insert(3))),
        ]
        await asyncio.sleep(0)  # one loop turn: each task has queued its job
        assert not any(j.done() for j in jobs)
        release.set()
        assert await blocker is True
        first, failed, third = await asyncio.gather(*jobs, return_exceptions=True)
    finally:
        release.set()
        await writer.stop()
    assert first == [AppendResult(0, False)]
    assert isinstance(failed, ValueError)
    assert third == [AppendResult(1, False)]  # the failed job's offset and seq were given back
    assert writer.counters.last_seq == 2
    assert calls == [(frozenset({"t"}), 2)]  # one transaction, announced once, after COMMIT
    check = sqlite3.connect(path)
    rows = check.execute("SELECT seq, offset, id FROM events ORDER BY seq").fetchall()
    assert rows == [(1, 0, "id-1"), (2, 1, "id-3")]


async def test_a_stopped_writer_refuses_jobs(tmp_path: Path) -> None:
    conn = sqlite_schema.connect(str(tmp_path / "db"))
    sqlite_schema.migrate(conn)
    loop = asyncio.get_running_loop()
    writer = SqliteWriter(conn, Counters.load(conn), loop=loop, listeners=AppendListeners())
    writer.start()
    await writer.stop()
    await writer.stop()  # idempotent
    with pytest.raises(GatewayClosing):
        await writer.submit(insert(1))
