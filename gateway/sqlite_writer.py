"""The SQLite store's one writer thread: group commit, one hand-off to the loop per commit.

Theory of operation:

- Every write (append, replicated append, group offset, cursor, retention) is a job on one
  queue. The writer thread takes the first job, drains whatever else is queued (up to
  MAX_GROUP jobs) and runs them in ONE transaction, then COMMITs (WAL; with durability
  `fsync` that is one fsync of the WAL per group, with `os` none: gateway/sqlite_schema.py),
  and only then resolves each job's future. Rule (persist before ack), enforced in `_commit`
  and `_hand_off`: nothing is answered before its COMMIT returned.
- Appends are data, not code: consecutive append jobs of a group are inserted with ONE
  `executemany` under ONE savepoint, on the optimistic assumption that every row is new
  (`sqlite_queries.insert_new`). If any row was a duplicate (the unique index said so) or the
  statement failed, that savepoint is rolled back and those jobs run one by one, each under
  its own SAVEPOINT (`sqlite_queries.insert_events`), so a duplicate answers its first offset
  and one failing job does not undo the others. Other jobs (cursor, group offset, retention,
  deletes) always run under their own SAVEPOINT, in queue order.
- A commit hands its outcome to the event loop in ONE `call_soon_threadsafe`, which resolves
  every job's asyncio future, gives the committed rows and deleted seqs to `on_commit` (the
  store's in-memory tail, gateway/store_tail.py) and then runs the listeners with the touched
  topics. (One concurrent future per job, wrapped with `asyncio.wrap_future`, cost a self-pipe
  write and a loop wake-up per job: with many small publishes that was a large share of the
  loop's time.)
- The `Counters` (last seq, each topic's next offset) live here: only this thread moves them,
  a failed job, group or transaction puts them back, and each touched topic's next offset is
  saved once per transaction, not once per job.
- `stop()` enqueues a stop marker after the pending jobs, so queued writes are drained.

Error handling: a job's sqlite3 error is named by `store_error` and fails that job only; a
failed COMMIT (e.g. SQLITE_FULL) rolls the whole transaction back and fails every job in it,
each with its own exception, and the next transaction is tried afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gateway import sqlite_queries as q
from gateway.errors import GatewayClosing, StoreError, StoreFull, StoreUnavailable
from gateway.sqlite_errors import store_error
from gateway.store import AppendListeners, AppendResult, Row, StoredEvent

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_GROUP = 512  # jobs per transaction: bounds how long one commit holds the write lock


@dataclass
class Counters:
    """The high-water marks appends advance (read on the loop, moved by the writer only)."""

    last_seq: int = 0
    next_offsets: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, conn: sqlite3.Connection) -> Counters:
        """The marks as committed: `meta.last_seq` survives retention deleting every row."""
        row = conn.execute("SELECT value FROM meta WHERE key='last_seq'").fetchone()
        high = conn.execute("SELECT MAX(seq) FROM events").fetchone()[0] or 0
        offsets = dict(conn.execute("SELECT name, next_offset FROM topics").fetchall())
        return cls(max(high, row[0] if row else 0), offsets)


@dataclass
class Tx:
    """One transaction as a job sees it: the counters to advance, the topics appended to, the
    rows inserted and the seqs deleted (handed to `on_commit` once committed)."""

    counters: Counters
    topics: set[str] = field(default_factory=set)
    inserted: list[StoredEvent] = field(default_factory=list)
    deleted: list[int] = field(default_factory=list)

    def mark(self) -> tuple[int, dict[str, int], set[str], int, int]:
        c = self.counters
        return (
            c.last_seq,
            dict(c.next_offsets),
            set(self.topics),
            len(self.inserted),
            len(self.deleted),
        )

    def undo(self, mark: tuple[int, dict[str, int], set[str], int, int]) -> None:
        """Back to `mark` (a rolled back savepoint): counters, topics, rows, deletions."""
        c = self.counters
        c.last_seq, c.next_offsets, self.topics, inserted, deleted = mark
        del self.inserted[inserted:]
        del self.deleted[deleted:]


WriteJob = Callable[[sqlite3.Connection, Tx], T]
# Called on the loop after a commit: (rows inserted, seqs deleted, next offsets of the touched
# topics, last seq), before the listeners.
CommitListener = Callable[[Sequence[StoredEvent], Sequence[int], Mapping[str, int], int], None]


@dataclass(slots=True)
class _Job:
    run: WriteJob[Any]
    future: asyncio.Future[Any]  # bound to the caller's loop: only that loop's thread resolves it
    rows: Sequence[Row] | None = None  # an append: may join its neighbours' executemany
    now: float = 0.0


@dataclass(slots=True)
class _Committed:
    rows: Sequence[StoredEvent]
    deleted: Sequence[int]
    next_offsets: dict[str, int]
    topics: frozenset[str]


_Outcome = tuple[_Job, bool, Any]  # (job, succeeded, result or exception)
_NOTHING = _Committed((), (), {}, frozenset())


class SqliteWriter:
    """The writer thread over its own connection; `submit` a job, get its committed result.

    Resource handling: owns `conn` from `start()` and closes it when the thread ends.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        counters: Counters,
        *,
        loop: asyncio.AbstractEventLoop,
        listeners: AppendListeners,
        on_commit: CommitListener | None = None,
    ) -> None:
        self.counters = counters
        self._conn = conn
        self._loop = loop
        self._listeners = listeners
        self._on_commit = on_commit
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._write_loop, name="store-writer", daemon=True)
        self._stopping = False

    def start(self) -> None:
        self._thread.start()

    async def stop(self) -> None:
        """Commit what is queued, then end the thread. Idempotent."""
        if self._stopping:
            return
        self._stopping = True
        self._jobs.put(None)
        await asyncio.to_thread(self._thread.join)

    async def submit(self, run: WriteJob[T]) -> T:
        """Run `run(conn, tx)` in the next transaction; answer once it is committed.

        Raises GatewayClosing after `stop()`, StoreError if the thread died, or what the job
        or its COMMIT raised (store errors, see the module docstring)."""
        if self._stopping:
            raise GatewayClosing("store is closed")
        if not self._thread.is_alive():
            raise StoreError("store writer is not running")
        job = _Job(run, asyncio.get_running_loop().create_future())
        self._jobs.put(job)
        result: T = await job.future
        return result

    async def submit_rows(self, rows: Sequence[Row], now: float) -> list[AppendResult]:
        """Append `rows` (all-or-nothing) in the next transaction; answer once committed."""
        if self._stopping:
            raise GatewayClosing("store is closed")
        if not self._thread.is_alive():
            raise StoreError("store writer is not running")
        job = _Job(
            lambda conn, tx: q.insert_events(conn, tx, rows, now),
            asyncio.get_running_loop().create_future(),
            rows,
            now,
        )
        self._jobs.put(job)
        result: list[AppendResult] = await job.future
        return result

    def submit_soon(self, run: WriteJob[Any]) -> None:
        """Queue `run` for the next transaction without waiting for it (a write whose loss in a
        crash costs only a resend, e.g. a peer cursor); its failure is logged. Jobs run in
        queue order, so a later job (a delete) commits with it or after it."""
        if self._stopping or not self._thread.is_alive():
            raise GatewayClosing("store is closed")
        future = asyncio.get_running_loop().create_future()
        future.add_done_callback(_log_failure)
        self._jobs.put(_Job(run, future))

    # -- writer thread ---------------------------------------------------------------------

    def _write_loop(self) -> None:
        conn = self._conn
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
    ) -> tuple[list[_Outcome], _Committed]:
        """Commit; a bug here fails these jobs instead of killing the writer thread."""
        seq, offsets = self.counters.last_seq, dict(self.counters.next_offsets)
        try:
            return self._commit(conn, jobs)
        except Exception as exc:
            log.exception("store writer failed a transaction")
            self.counters.last_seq, self.counters.next_offsets = seq, offsets
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            return [(job, False, store_error(exc, "write")) for job in jobs], _NOTHING

    def _commit(
        self, conn: sqlite3.Connection, jobs: list[_Job]
    ) -> tuple[list[_Outcome], _Committed]:
        """Run `jobs` in one transaction; return each job's outcome and what was committed."""
        counters = self.counters
        tx = Tx(counters)
        results: list[_Outcome] = []
        seq_before = counters.last_seq
        offsets_before = dict(counters.next_offsets)
        try:
            conn.execute("BEGIN IMMEDIATE")
            i, n = 0, len(jobs)
            while i < n:
                j = i
                while j < n and jobs[j].rows is not None:
                    j += 1
                if j == i:
                    results.append(self._run_one(conn, tx, i, jobs[i]))
                    i += 1
                    continue
                grouped = self._append_group(conn, tx, jobs[i:j])
                if grouped is None:  # a duplicate or a failure: one by one, each on its own
                    grouped = [self._run_one(conn, tx, k, jobs[k]) for k in range(i, j)]
                results.extend(grouped)
                i = j
            for topic in tx.topics:
                conn.execute(
                    "INSERT INTO topics(name, next_offset) VALUES(?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET next_offset=excluded.next_offset",
                    (topic, counters.next_offsets[topic]),
                )
            if counters.last_seq != seq_before:
                conn.execute(
                    "INSERT INTO meta(key, value) VALUES('last_seq', ?) "
                    "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                    (counters.last_seq,),
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
            counters.last_seq, counters.next_offsets = seq_before, offsets_before
            # Each caller gets its own exception object (one shared would chain tracebacks).
            return [(job, False, store_error(exc, "commit")) for job in jobs], _NOTHING
        committed = _Committed(
            tx.inserted,
            tx.deleted,
            {t: counters.next_offsets[t] for t in tx.topics},
            frozenset(tx.topics),
        )
        return results, committed

    def _append_group(
        self, conn: sqlite3.Connection, tx: Tx, jobs: list[_Job]
    ) -> list[_Outcome] | None:
        """Insert the rows of consecutive append jobs in one statement, all assumed new.

        Returns None, with the group rolled back, if a row was a duplicate or the statement
        failed: the caller then runs those jobs one by one. Raises the sqlite3 error that
        rolled back the whole transaction (e.g. a full disk)."""
        mark = tx.mark()
        conn.execute("SAVEPOINT grp")
        try:
            answers = q.insert_new(conn, tx, [(job.rows or (), job.now) for job in jobs])
        except Exception as exc:
            if isinstance(exc, sqlite3.Error) and not conn.in_transaction:
                raise
            answers = None
        if answers is None:
            conn.execute("ROLLBACK TO grp")
            tx.undo(mark)
        conn.execute("RELEASE grp")
        if answers is None:
            return None
        return [(job, True, answer) for job, answer in zip(jobs, answers, strict=True)]

    def _run_one(self, conn: sqlite3.Connection, tx: Tx, i: int, job: _Job) -> _Outcome:
        """Run one job under its own savepoint: its failure undoes it alone."""
        mark = tx.mark()
        conn.execute(f"SAVEPOINT job{i}")
        try:
            value = job.run(conn, tx)
        except Exception as exc:
            if isinstance(exc, sqlite3.Error) and not conn.in_transaction:
                raise  # SQLite rolled the whole transaction back (e.g. disk full)
            conn.execute(f"ROLLBACK TO job{i}")
            conn.execute(f"RELEASE job{i}")
            tx.undo(mark)
            failure = store_error(exc, "write") if isinstance(exc, sqlite3.Error) else exc
            return (job, False, failure)
        conn.execute(f"RELEASE job{i}")
        return (job, True, value)

    def _hand_off(self, outcomes: list[_Outcome], committed: _Committed) -> None:
        """Writer thread, after COMMIT: pass a transaction's outcome to the loop in one wake-up.

        Callers normally share the store's loop; one awaiting on another loop (a test) gets its
        own hand-off, since a future may only be resolved on its loop's thread.
        """
        by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
        for outcome in outcomes:
            by_loop.setdefault(outcome[0].future.get_loop(), []).append(outcome)
        if committed.topics or committed.deleted:
            by_loop.setdefault(self._loop, [])
        last_seq = self.counters.last_seq
        for loop, mine in by_loop.items():
            done = committed if loop is self._loop else _NOTHING
            # RuntimeError: the loop closed while we committed, nobody is left to wake.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._resolve, mine, done, last_seq)

    def _resolve(self, outcomes: list[_Outcome], committed: _Committed, last_seq: int) -> None:
        """Loop thread: answer the jobs of one transaction, hand the committed rows to
        `on_commit`, then wake the listeners."""
        for job, ok, value in outcomes:
            if job.future.done():  # its caller was cancelled meanwhile
                continue
            if ok:
                job.future.set_result(value)
            else:
                job.future.set_exception(value)
        if self._on_commit is not None and (committed.rows or committed.deleted):
            try:
                self._on_commit(committed.rows, committed.deleted, committed.next_offsets, last_seq)
            except Exception:
                log.exception("store commit listener failed")
        if committed.topics:
            for listener in self._listeners.snapshot():
                try:
                    listener(committed.topics, last_seq)
                except Exception:
                    log.exception("append listener failed")


def _log_failure(future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.warning("queued store write failed: %s", future.exception())
