"""The SQLite store's one writer thread: group commit, one hand-off to the loop per commit.

Theory of operation:

- Every write (append, replicated append, group offset, cursor, retention) is a job on one
  queue. The writer thread takes the first job, drains whatever else is queued (up to
  MAX_GROUP jobs), runs them in ONE transaction, each under its own SAVEPOINT so one failing job
  does not undo the others, COMMITs (WAL, synchronous=FULL, so fsync), and only then resolves
  each job's future. Rule (persist before ack), enforced in `_commit` and `_hand_off`: nothing
  is answered before its COMMIT returned.
- A commit hands its outcome to the event loop in ONE `call_soon_threadsafe`, which resolves
  every job's asyncio future and then runs the listeners with the touched topics. (One
  concurrent future per job, wrapped with `asyncio.wrap_future`, cost a self-pipe write and a
  loop wake-up per job: with many small publishes that was a large share of the loop's time.)
- The `Counters` (last seq, each topic's next offset) live here: only this thread moves them,
  a failed job or transaction puts them back, and each touched topic's next offset is saved
  once per transaction, not once per job.
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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gateway.errors import GatewayClosing, StoreError, StoreFull, StoreUnavailable
from gateway.sqlite_errors import store_error
from gateway.store import AppendListeners

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
    """One transaction as a job sees it: the counters to advance, the topics appended to."""

    counters: Counters
    topics: set[str] = field(default_factory=set)


WriteJob = Callable[[sqlite3.Connection, Tx], T]


@dataclass(slots=True)
class _Job:
    run: WriteJob[Any]
    future: asyncio.Future[Any]  # bound to the caller's loop: only that loop's thread resolves it


_Outcome = tuple[_Job, bool, Any]  # (job, succeeded, result or exception)


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
    ) -> None:
        self.counters = counters
        self._conn = conn
        self._loop = loop
        self._listeners = listeners
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
        counters = self.counters
        tx = Tx(counters)
        results: list[_Outcome] = []
        seq_before = counters.last_seq
        offsets_before = dict(counters.next_offsets)
        try:
            conn.execute("BEGIN IMMEDIATE")
            for i, job in enumerate(jobs):
                conn.execute(f"SAVEPOINT job{i}")
                job_seq, job_offsets = counters.last_seq, dict(counters.next_offsets)
                job_topics = set(tx.topics)
                try:
                    value = job.run(conn, tx)
                except Exception as exc:
                    if isinstance(exc, sqlite3.Error) and not conn.in_transaction:
                        raise  # SQLite rolled the whole transaction back (e.g. disk full)
                    conn.execute(f"ROLLBACK TO job{i}")
                    conn.execute(f"RELEASE job{i}")
                    counters.last_seq, counters.next_offsets = job_seq, job_offsets
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
            return [(job, False, store_error(exc, "commit")) for job in jobs], frozenset()
        return results, frozenset(tx.topics)

    def _hand_off(self, outcomes: list[_Outcome], topics: frozenset[str]) -> None:
        """Writer thread, after COMMIT: pass a transaction's outcome to the loop in one wake-up.

        Callers normally share the store's loop; one awaiting on another loop (a test) gets its
        own hand-off, since a future may only be resolved on its loop's thread.
        """
        by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
        for outcome in outcomes:
            by_loop.setdefault(outcome[0].future.get_loop(), []).append(outcome)
        if topics:
            by_loop.setdefault(self._loop, [])
        last_seq = self.counters.last_seq
        for loop, mine in by_loop.items():
            notify = topics if loop is self._loop else frozenset()
            # RuntimeError: the loop closed while we committed, nobody is left to wake.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._resolve, mine, notify, last_seq)

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
            for listener in self._listeners.snapshot():
                try:
                    listener(topics, last_seq)
                except Exception:
                    log.exception("append listener failed")
