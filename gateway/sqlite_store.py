"""SQLite implementation of EventStore: one writer thread with group commit, pooled readers.

Theory of operation (each part where it is enforced):

- `<data_dir>/events.sqlite3` in WAL mode; `durability="fsync"` (synchronous=FULL) makes a
  COMMIT that returned survive a kill -9 and a power cut, `"os"` (NORMAL) a kill -9 only
  (gateway/sqlite_schema.py says what a power cut may lose).
- Every write is a job for the one writer thread (gateway/sqlite_writer.py): it runs every job
  queued at that moment in ONE transaction (consecutive appends in one executemany), COMMITs,
  and only then answers each caller and wakes the `on_append` listeners. Rule: persist before
  ack, nothing is answered before its COMMIT returned.
- Committed rows also go to an in-memory tail (gateway/store_tail.py) in the same hand-off,
  before the listeners: `read`, `read_offsets` and `read_since` of recent events are answered
  from it without a query or a parse; older ones from the database.
- Reads run on a small pool of read-only connections (gateway/sqlite_readers.py); WAL lets
  them proceed while the writer commits. The SQL of both sides is in gateway/sqlite_queries.py.
- `last_seq` is the highest seq handed over after its commit (what readers can read).
- `aclose()` stops the writer after the jobs already queued, so queued publishes are drained.

This class only composes them: it opens the file, loads the counters, and turns each
`EventStore` call into a write job or a read.

Error handling: SQLite errors never leave the store raw. `store_error` (gateway/sqlite_errors.py)
names them: a full disk or database (SQLITE_FULL) is StoreFull, I/O, locking and read-only
failures are StoreUnavailable, anything else (a bug, corruption) a plain StoreError. A failed
transaction rolls back whole, so nothing of it is acknowledged, and the next one is tried
afresh: publishes succeed again as soon as space returns.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from gateway import sqlite_queries as q
from gateway import sqlite_schema
from gateway.errors import GatewayClosing, StoreUnavailable
from gateway.sqlite_errors import store_error
from gateway.sqlite_readers import ReaderPool
from gateway.sqlite_writer import Counters, SqliteWriter, WriteJob
from gateway.store import (
    AppendListener,
    AppendListeners,
    AppendResult,
    GroupRecord,
    Row,
    RowAppends,
    StoredEvent,
    TopicStats,
)
from gateway.store_tail import CommittedTail

T = TypeVar("T")
DB_NAME = "events.sqlite3"


class SqliteEventStore(RowAppends):
    """EventStore over `<data_dir>/events.sqlite3`. See the module docstring."""

    def __init__(
        self,
        data_dir: Path,
        *,
        clock: Callable[[], float] = time.time,
        durability: str = "fsync",
        tail: CommittedTail | None = None,
    ) -> None:
        """`durability`: "fsync" or "os" (module docstring); raises ValueError otherwise.
        `tail`: a CommittedTail to size it (default: its defaults), or None."""
        if durability not in sqlite_schema.SYNCHRONOUS:
            raise ValueError(f"durability must be fsync or os, not {durability!r}")
        self.durability = durability
        self._data_dir = Path(data_dir)
        self._path = str(self._data_dir / DB_NAME)
        self._clock = clock
        self._tail_sizes = (tail.max_bytes, tail.max_events) if tail is not None else None
        self.tail = CommittedTail(0, {})
        self._listeners = AppendListeners()
        self._counters = Counters()
        self._writer: SqliteWriter | None = None
        self._readers = ReaderPool(self._path)
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        """Open (creating or migrating) the database.

        Raises StoreUnavailable("data directory ... is not writable: ...") or another
        StoreError naming the file, in one line."""
        conn: sqlite3.Connection | None = None
        try:
            self._data_dir.mkdir(parents=True, exist_ok=True)
            conn = sqlite_schema.connect(self._path, durability=self.durability)
            sqlite_schema.migrate(conn)
            self._counters = Counters.load(conn)
        except (OSError, sqlite3.Error) as exc:
            if conn is not None:
                conn.close()
            if not os.access(self._data_dir, os.W_OK):
                raise StoreUnavailable(
                    f"data directory {self._data_dir} is not writable: {exc}"
                ) from exc
            error = store_error(exc, "open")
            raise type(error)(f"cannot open store {self._path}: {exc}") from exc
        self._readers.start()
        sizes = self._tail_sizes
        self.tail = CommittedTail(
            self._counters.last_seq,
            self._counters.next_offsets,
            **({} if sizes is None else {"max_bytes": sizes[0], "max_events": sizes[1]}),
        )
        self._writer = SqliteWriter(
            conn,
            self._counters,
            loop=asyncio.get_running_loop(),
            listeners=self._listeners,
            on_commit=self.tail.committed,
        )
        self._writer.start()

    async def aclose(self) -> None:
        """Commit the queued writes, then close the writer and the readers. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            await self._writer.stop()
        self._readers.close()

    @property
    def last_seq(self) -> int:
        return self.tail.last

    def on_append(self, listener: AppendListener) -> Callable[[], None]:
        return self._listeners.add(listener)

    async def _write(self, run: WriteJob[T]) -> T:
        if self._closed or self._writer is None:
            raise GatewayClosing("store is closed")
        return await self._writer.submit(run)

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise GatewayClosing("store is closed")
        return await self._readers.run(fn)

    # -- appends -----------------------------------------------------------------------------

    async def _append_rows(self, rows: Sequence[Row]) -> list[AppendResult]:
        if self._closed or self._writer is None:
            raise GatewayClosing("store is closed")
        return await self._writer.submit_rows(rows, self._clock())

    # -- small writes ------------------------------------------------------------------------

    async def save_group(self, record: GroupRecord) -> None:
        await self._write(lambda conn, tx: q.save_group(conn, record))

    async def set_cursor(self, name: str, seq: int) -> None:
        await self._write(lambda conn, tx: q.set_cursor(conn, name, seq))

    def set_cursor_soon(self, name: str, seq: int) -> None:
        """`set_cursor` without waiting: it joins the next group commit (a peer cursor: if a
        crash loses it, the peer is resent from the older one and deduplicates). Writes
        queued after it (e.g. `delete_events`) commit with it or later, never before.
        Raises GatewayClosing once closed."""
        if self._closed or self._writer is None:
            raise GatewayClosing("store is closed")
        self._writer.submit_soon(lambda conn, tx: q.set_cursor(conn, name, seq))

    async def apply_retention(
        self, topic: str, *, older_than: float | None, max_bytes: int | None
    ) -> int:
        return await self._write(
            lambda conn, tx: q.apply_retention(conn, tx, topic, older_than, max_bytes)
        )

    async def delete_events(self, seqs: Sequence[int]) -> int:
        wanted = list(seqs)
        if not wanted:
            return 0
        return await self._write(lambda conn, tx: q.delete_events(conn, tx, wanted))

    # -- reads -------------------------------------------------------------------------------

    async def read(self, topic: str, from_offset: int, limit: int) -> list[StoredEvent]:
        if self._closed:
            raise GatewayClosing("store is closed")
        recent = self.tail.read(topic, from_offset, limit)
        if recent is not None:
            return recent
        return await self._read(lambda c: q.read_page(c, topic, from_offset, limit))

    async def read_offsets(self, topic: str, offsets: Sequence[int]) -> list[StoredEvent]:
        wanted = sorted(set(offsets))
        if not wanted:
            return []
        if self._closed:
            raise GatewayClosing("store is closed")
        recent = self.tail.offsets(topic, wanted)
        if recent is not None:
            return recent
        return await self._read(lambda c: q.read_offsets(c, topic, wanted))

    async def read_since(self, seq: int, limit: int) -> list[StoredEvent]:
        if self._closed:
            raise GatewayClosing("store is closed")
        recent = self.tail.since(seq, limit)
        if recent is not None:
            return recent
        return await self._read(lambda c: q.read_since(c, seq, limit))

    async def offset_at_time(self, topic: str, when: float) -> int:
        return await self._read(lambda c: q.offset_at_time(c, topic, when))

    async def topic_stats(self, topic: str | None = None) -> list[TopicStats]:
        return await self._read(lambda c: q.topic_stats(c, topic))

    async def topic_bounds(self, topic: str) -> tuple[int, int] | None:
        stats = await self.topic_stats(topic)
        return (stats[0].first_offset, stats[0].next_offset) if stats else None

    async def gauge_stats(self) -> list[TopicStats]:
        return await self.topic_stats()  # SQL aggregates in this process: exact each time

    def writer_of(self, topic: str) -> str | None:
        return None  # one process writes every topic

    async def advertise(self, address: str) -> None:
        return None

    async def load_group(self, topic: str, group: str) -> GroupRecord | None:
        return await self._read(lambda c: q.load_group(c, topic, group))

    async def list_groups(self) -> list[GroupRecord]:
        return await self._read(q.list_groups)

    async def get_cursor(self, name: str) -> int | None:
        return await self._read(lambda c: q.get_cursor(c, name))
