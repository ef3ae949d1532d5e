"""SQLite implementation of EventStore: one writer thread with group commit, pooled readers.

Theory of operation:

- Every write (append, replicated append, group offset, cursor, retention) is a job on one
  queue. The writer thread takes the first job, drains whatever else is queued (up to
  MAX_GROUP jobs), runs them in ONE transaction, each under its own SAVEPOINT so one failing job
  does not undo the others, COMMITs (WAL, synchronous=FULL, so fsync), and only then resolves
  each job's future. Rule: nothing is acknowledged before its COMMIT returned.
- A commit hands its outcome to the event loop in ONE `call_soon_threadsafe`, which resolves
  every job's asyncio future and then runs the listeners with the touched topics. (One
  concurrent future per job, wrapped with `asyncio.wrap_future`, cost a self-pipe write and a
  loop wake-up per job: with many small publishes that was a large share of the loop's time.)
- Each touched topic's next offset is saved once per transaction, not once per job.
- Reads run on a small thread pool, each thread with its own read-only connection (WAL lets
  readers proceed while the writer commits).
- `aclose()` enqueues a stop marker after the pending jobs, so queued publishes are drained.

Error handling: SQLite errors never leave this module raw. `store_error` names them: a full
disk or database (SQLITE_FULL) is StoreFull, I/O, locking and read-only failures are
StoreUnavailable, anything else (a bug, corruption) a plain StoreError. A failed transaction
rolls back whole, so nothing of it is acknowledged, and the next one is tried afresh: publishes
succeed again as soon as space returns.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from gateway import sqlite_schema
from gateway.errors import GatewayClosing, StoreError, StoreFull, StoreUnavailable
from gateway.sqlite_errors import store_error
from gateway.store import (
    AppendListener,
    AppendListeners,
    AppendResult,
    GroupRecord,
    NewEvent,
    ReplicatedItem,
    StoredEvent,
    TopicStats,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_GROUP = 512  # jobs per transaction: bounds how long one commit holds the write lock
READERS = 2
DB_NAME = "events.sqlite3"
_COLUMNS = "seq, topic, offset, payload, origin_region, replication, received_at, size"


@dataclass(slots=True)
class _Job:
    run: Callable[[sqlite3.Connection, _Tx], Any]
    future: asyncio.Future[Any]  # bound to the store's loop: only that loop's thread resolves it


@dataclass
class _Tx:
    """What one transaction changed, for listeners and in-memory counters."""

    topics: set[str] = field(default_factory=set)


_Outcome = tuple[_Job, bool, Any]  # (job, succeeded, result or exception)


def _row(r: tuple[Any, ...]) -> StoredEvent:
    return StoredEvent(
        seq=r[0],
        topic=r[1],
        offset=r[2],
        payload=r[3],
        origin_region=r[4],
        replication=r[5],
        received_at=r[6],
        size=r[7],
    )


class SqliteEventStore:
    """EventStore over `<data_dir>/events.sqlite3`. See the module docstring."""

    def __init__(self, data_dir: Path, *, clock: Callable[[], float] = time.time) -> None:
        self._path = str(Path(data_dir) / DB_NAME)
        self._data_dir = Path(data_dir)
        self._clock = clock
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._writer: threading.Thread | None = None
        self._readers: concurrent.futures.ThreadPoolExecutor | None = None
        self._reader_conns: list[sqlite3.Connection] = []
        self._local = threading.local()
        self._lock = threading.Lock()
        self._listeners = AppendListeners()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._last_seq = 0
        self._next_offsets: dict[str, int] = {}

    # -- lifecycle -----------------------------------------------------------

    async def open(self) -> None:
        """Open (creating or migrating) the database.

        Raises StoreUnavailable("data directory ... is not writable: ...") or another
        StoreError naming the file, in one line."""
        self._loop = asyncio.get_running_loop()
        conn: sqlite3.Connection | None = None
        try:
            self._data_dir.mkdir(parents=True, exist_ok=True)
            conn = sqlite_schema.connect(self._path)
            sqlite_schema.migrate(conn)
        except (OSError, sqlite3.Error) as exc:
            if conn is not None:
                conn.close()
            if not os.access(self._data_dir, os.W_OK):
                raise StoreUnavailable(
                    f"data directory {self._data_dir} is not writable: {exc}"
                ) from exc
            error = store_error(exc, "open")
            raise type(error)(f"cannot open store {self._path}: {exc}") from exc
        row = conn.execute("SELECT value FROM meta WHERE key='last_seq'").fetchone()
        high = conn.execute("SELECT MAX(seq) FROM events").fetchone()[0] or 0
        self._last_seq = max(high, row[0] if row else 0)
        for name, nxt in conn.execute("SELECT name, next_offset FROM topics"):
            self._next_offsets[name] = nxt
        self._readers = concurrent.futures.ThreadPoolExecutor(
            READERS, thread_name_prefix="store-reader"
        )
        self._writer = threading.Thread(
            target=self._write_loop, args=(conn,), name="store-writer", daemon=True
        )
        self._writer.start()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        writer = self._writer
        if writer is not None:
            self._jobs.put(None)
            await asyncio.to_thread(writer.join)
        if self._readers is not None:
            self._readers.shutdown(wait=True)
        for conn in self._reader_conns:
            conn.close()

    @property
    def last_seq(self) -> int:
        return self._last_seq

    def on_append(self, listener: AppendListener) -> Callable[[], None]:
        return self._listeners.add(listener)

    # -- writer thread ---------------------------------------------------------

    def _write_loop(self, conn: sqlite3.Connection) -> None:
        try:
            stop = False
            while not stop:
                first = self._jobs.get()
                if first is None:
                    break
                jobs = [first]
                while len(jobs) < MAX_GROUP:
                    try:
                        nxt = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        stop = True
                        break
                    jobs.append(nxt)
                # A job whose caller was cancelled before we started it is dropped (never
                # acknowledged). Reading `cancelled()` off the loop thread is a plain attribute
                # read; a cancel that lands after this check finds the job committed, and
                # `_resolve` then leaves the cancelled future alone.
                live = [j for j in jobs if not j.future.cancelled()]
                if live:
                    self._hand_off(*self._commit_guarded(conn, live))
        finally:
            conn.close()

    def _commit_guarded(
        self, conn: sqlite3.Connection, jobs: list[_Job]
    ) -> tuple[list[_Outcome], frozenset[str]]:
        """Commit; a bug here fails these jobs instead of killing the writer thread."""
        try:
            return self._commit(conn, jobs)
        except Exception as exc:
            log.exception("store writer failed a transaction")
            return [(job, False, store_error(exc, "write")) for job in jobs], frozenset()

    def _commit(
        self, conn: sqlite3.Connection, jobs: list[_Job]
    ) -> tuple[list[_Outcome], frozenset[str]]:
        """Run `jobs` in one transaction; return each job's outcome and the topics appended to."""
        tx = _Tx()
        results: list[_Outcome] = []
        seq_before = self._last_seq
        offsets_before = dict(self._next_offsets)
        try:
            conn.execute("BEGIN IMMEDIATE")
            for i, job in enumerate(jobs):
                conn.execute(f"SAVEPOINT job{i}")
                job_seq, job_offsets = self._last_seq, dict(self._next_offsets)
                job_topics = set(tx.topics)
                try:
                    value = job.run(conn, tx)
                except Exception as exc:
                    if isinstance(exc, sqlite3.Error) and not conn.in_transaction:
                        raise  # SQLite rolled the whole transaction back (e.g. disk full)
                    conn.execute(f"ROLLBACK TO job{i}")
                    conn.execute(f"RELEASE job{i}")
                    self._last_seq, self._next_offsets = job_seq, job_offsets
                    tx.topics = job_topics
                    failure = store_error(exc, "write") if isinstance(exc, sqlite3.Error) else exc
                    results.append((job, False, failure))
                else:
                    conn.execute(f"RELEASE job{i}")
                    results.append((job, True, value))
            for topic in tx.topics:
                conn.execute(
                    "INSERT INTO topics(name, next_offset) VALUES(?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET next_offset=excluded.next_offset",
                    (topic, self._next_offsets[topic]),
                )
            if self._last_seq != seq_before:
                conn.execute(
                    "INSERT INTO meta(key, value) VALUES('last_seq', ?) "
                    "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                    (self._last_seq,),
                )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            error = store_error(exc, "commit")
            if isinstance(error, (StoreFull, StoreUnavailable)):
                log.error("store commit failed, %d writes refused: %s", len(jobs), error)
            else:
                log.exception("store commit failed")
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            self._last_seq, self._next_offsets = seq_before, offsets_before
            # Each caller gets its own exception object (one shared would chain tracebacks).
            return [(job, False, store_error(exc, "commit")) for job in jobs], frozenset()
        return results, frozenset(tx.topics)

    def _hand_off(self, outcomes: list[_Outcome], topics: frozenset[str]) -> None:
        """Writer thread: pass a transaction's outcome to the loop in one wake-up.

        Callers normally share the store's loop; one awaiting on another loop (a test) gets its
        own hand-off, since a future may only be resolved on its loop's thread.
        """
        by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
        for outcome in outcomes:
            by_loop.setdefault(outcome[0].future.get_loop(), []).append(outcome)
        if self._loop is not None and topics:
            by_loop.setdefault(self._loop, [])
        for loop, mine in by_loop.items():
            notify = topics if loop is self._loop else frozenset()
            # RuntimeError: the loop closed while we committed, nobody is left to wake.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._resolve, mine, notify, self._last_seq)

    def _resolve(self, outcomes: list[_Outcome], topics: frozenset[str], last_seq: int) -> None:
        """Loop thread: answer the jobs of one transaction, then wake the listeners."""
        for job, ok, value in outcomes:
            if job.future.done():  # its caller was cancelled meanwhile
                continue
            if ok:
                job.future.set_result(value)
            else:
                job.future.set_exception(value)
        if topics:
            self._notify(topics, last_seq)

    def _notify(self, topics: frozenset[str], last_seq: int) -> None:
        for listener in self._listeners.snapshot():
            try:
                listener(topics, last_seq)
            except Exception:
                log.exception("append listener failed")

    async def _write(self, run: Callable[[sqlite3.Connection, _Tx], T]) -> T:
        if self._closed or self._writer is None:
            raise GatewayClosing("store is closed")
        if not self._writer.is_alive():
            raise StoreError("store writer is not running")
        job = _Job(run, asyncio.get_running_loop().create_future())
        self._jobs.put(job)
        result: T = await job.future
        return result

    # -- appends (writer thread) ------------------------------------------------

    def _insert_all(
        self,
        conn: sqlite3.Connection,
        tx: _Tx,
        rows: Sequence[tuple[str, NewEvent, str, bytes | None]],
        now: float,
    ) -> list[AppendResult]:
        """Insert (topic, event, origin, blob) rows; a known (topic, source, id) is a duplicate.

        The unique index decides (INSERT ... DO NOTHING), so a new event costs one statement;
        `_commit` saves each touched topic's next offset once per transaction.
        """
        out: list[AppendResult] = []
        touched: set[str] = set()
        cur = conn.cursor()
        for topic, event, origin, replication in rows:
            offset = self._next_offsets.get(topic, 0)
            seq = self._last_seq + 1
            cur.execute(
                "INSERT INTO events(seq, topic, offset, source, id, type, received_at, "
                "origin_region, replication, size, payload) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT(topic, source, id) DO NOTHING",
                (
                    seq,
                    topic,
                    offset,
                    event.source,
                    event.id,
                    event.type,
                    now,
                    origin,
                    replication,
                    len(event.payload),
                    event.payload,
                ),
            )
            if cur.rowcount == 0:
                found = cur.execute(
                    "SELECT offset FROM events WHERE topic=? AND source=? AND id=?",
                    (topic, event.source, event.id),
                ).fetchone()
                out.append(AppendResult(found[0], True))
                continue
            self._last_seq = seq
            self._next_offsets[topic] = offset + 1
            touched.add(topic)
            out.append(AppendResult(offset, False))
        tx.topics |= touched
        return out

    async def append(
        self, topic: str, events: Sequence[NewEvent], origin_region: str
    ) -> list[AppendResult]:
        now = self._clock()

        def run(conn: sqlite3.Connection, tx: _Tx) -> list[AppendResult]:
            rows = [(topic, e, origin_region, None) for e in events]
            return self._insert_all(conn, tx, rows, now)

        return await self._write(run)

    async def append_replicated(self, topic: str, items: Sequence[ReplicatedItem]) -> list[bool]:
        now = self._clock()

        def run(conn: sqlite3.Connection, tx: _Tx) -> list[bool]:
            rows = [(topic, it.event, it.origin_region, it.replication) for it in items]
            return [not r.duplicate for r in self._insert_all(conn, tx, rows, now)]

        return await self._write(run)

    async def append_replicated_batch(
        self, entries: Sequence[tuple[str, ReplicatedItem]]
    ) -> list[bool]:
        now = self._clock()

        def run(conn: sqlite3.Connection, tx: _Tx) -> list[bool]:
            rows = [(topic, it.event, it.origin_region, it.replication) for topic, it in entries]
            return [not r.duplicate for r in self._insert_all(conn, tx, rows, now)]

        return await self._write(run)

    # -- small writes ---------------------------------------------------------------

    async def save_group(self, record: GroupRecord) -> None:
        def run(conn: sqlite3.Connection, tx: _Tx) -> None:
            conn.execute(
                "INSERT INTO groups(topic, name, committed_offset, filters) VALUES(?,?,?,?) "
                "ON CONFLICT(topic, name) DO UPDATE SET "
                "committed_offset=excluded.committed_offset, filters=excluded.filters",
                (record.topic, record.group, record.committed_offset, record.filters_json),
            )

        await self._write(run)

    async def set_cursor(self, name: str, seq: int) -> None:
        def run(conn: sqlite3.Connection, tx: _Tx) -> None:
            conn.execute(
                "INSERT INTO cursors(name, seq) VALUES(?, ?) "
                "ON CONFLICT(name) DO UPDATE SET seq=excluded.seq",
                (name, seq),
            )

        await self._write(run)

    async def apply_retention(
        self, topic: str, *, older_than: float | None, max_bytes: int | None
    ) -> int:
        def run(conn: sqlite3.Connection, tx: _Tx) -> int:
            deleted = 0
            if older_than is not None:
                deleted += conn.execute(
                    "DELETE FROM events WHERE topic=? AND received_at < ?", (topic, older_than)
                ).rowcount
            if max_bytes is not None:
                total = conn.execute(
                    "SELECT COALESCE(SUM(size), 0) FROM events WHERE topic=?", (topic,)
                ).fetchone()[0]
                excess = total - max_bytes
                if excess > 0:
                    cut, freed = None, 0
                    rows = conn.execute(
                        "SELECT offset, size FROM events WHERE topic=? ORDER BY offset", (topic,)
                    )
                    for offset, size in rows:
                        freed += size
                        cut = offset
                        if freed >= excess:
                            break
                    if cut is not None:
                        deleted += conn.execute(
                            "DELETE FROM events WHERE topic=? AND offset <= ?", (topic, cut)
                        ).rowcount
            return deleted

        return await self._write(run)

    async def delete_events(self, seqs: Sequence[int]) -> int:
        rows = [(s,) for s in seqs]
        if not rows:
            return 0

        def run(conn: sqlite3.Connection, tx: _Tx) -> int:
            return conn.executemany("DELETE FROM events WHERE seq=?", rows).rowcount

        return await self._write(run)

    # -- reads -------------------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite_schema.connect(self._path, readonly=True)
            with self._lock:
                self._reader_conns.append(conn)
            self._local.conn = conn
        return conn

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._readers is None or self._closed:
            raise GatewayClosing("store is closed")
        loop = asyncio.get_running_loop()

        def call() -> T:
            try:
                return fn(self._reader())
            except sqlite3.Error as exc:
                raise store_error(exc, "read") from exc

        return await loop.run_in_executor(self._readers, call)

    async def read(self, topic: str, from_offset: int, limit: int) -> list[StoredEvent]:
        return await self._read(
            lambda c: [
                _row(r)
                for r in c.execute(
                    f"SELECT {_COLUMNS} FROM events WHERE topic=? AND offset>=? "
                    "ORDER BY offset LIMIT ?",
                    (topic, from_offset, limit),
                )
            ]
        )

    async def read_offsets(self, topic: str, offsets: Sequence[int]) -> list[StoredEvent]:
        wanted = sorted(set(offsets))
        if not wanted:
            return []

        def run(c: sqlite3.Connection) -> list[StoredEvent]:
            out: list[StoredEvent] = []
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                out.extend(
                    _row(r)
                    for r in c.execute(
                        f"SELECT {_COLUMNS} FROM events WHERE topic=? AND offset IN ({marks}) "
                        "ORDER BY offset",
                        (topic, *chunk),
                    )
                )
            return out

        return await self._read(run)

    async def read_since(self, seq: int, limit: int) -> list[StoredEvent]:
        return await self._read(
            lambda c: [
                _row(r)
                for r in c.execute(
                    f"SELECT {_COLUMNS} FROM events WHERE seq>? ORDER BY seq LIMIT ?",
                    (seq, limit),
                )
            ]
        )

    async def offset_at_time(self, topic: str, when: float) -> int:
        def run(c: sqlite3.Connection) -> int:
            row = c.execute(
                "SELECT MIN(offset) FROM events WHERE topic=? AND received_at>=?", (topic, when)
            ).fetchone()
            if row[0] is not None:
                return int(row[0])
            nxt = c.execute("SELECT next_offset FROM topics WHERE name=?", (topic,)).fetchone()
            return int(nxt[0]) if nxt else 0

        return await self._read(run)

    async def topic_stats(self, topic: str | None = None) -> list[TopicStats]:
        def run(c: sqlite3.Connection) -> list[TopicStats]:
            where, args = ("WHERE t.name=?", (topic,)) if topic is not None else ("", ())
            rows = c.execute(
                "SELECT t.name, t.next_offset, MIN(e.offset), COUNT(e.seq), "
                "COALESCE(SUM(e.size), 0) FROM topics t LEFT JOIN events e ON e.topic=t.name "
                f"{where} GROUP BY t.name ORDER BY t.name",
                args,
            ).fetchall()
            return [
                TopicStats(
                    name=name,
                    first_offset=first if first is not None else nxt,
                    next_offset=nxt,
                    event_count=count,
                    stored_bytes=size,
                )
                for name, nxt, first, count, size in rows
            ]

        return await self._read(run)

    async def load_group(self, topic: str, group: str) -> GroupRecord | None:
        def run(c: sqlite3.Connection) -> GroupRecord | None:
            row = c.execute(
                "SELECT committed_offset, filters FROM groups WHERE topic=? AND name=?",
                (topic, group),
            ).fetchone()
            return GroupRecord(topic, group, row[0], row[1]) if row else None

        return await self._read(run)

    async def list_groups(self) -> list[GroupRecord]:
        return await self._read(
            lambda c: [
                GroupRecord(t, g, o, f)
                for t, g, o, f in c.execute(
                    "SELECT topic, name, committed_offset, filters FROM groups ORDER BY topic, name"
                )
            ]
        )

    async def get_cursor(self, name: str) -> int | None:
        def run(c: sqlite3.Connection) -> int | None:
            row = c.execute("SELECT seq FROM cursors WHERE name=?", (name,)).fetchone()
            return int(row[0]) if row else None

        return await self._read(run)
