"""The SQLite store's read side: a small thread pool, each thread with its own connection.

Reads never wait for the writer: WAL lets a read-only connection read the last committed state
while the writer thread (gateway/sqlite_writer.py) commits. A connection is opened lazily by
the pool thread that first needs it and stays with that thread; `close()` closes them all.

Error handling: a sqlite3 error of a read leaves as the store error `store_error` names.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sqlite3
import threading
from collections.abc import Callable
from typing import TypeVar

from gateway import sqlite_schema
from gateway.errors import GatewayClosing
from gateway.sqlite_errors import store_error

T = TypeVar("T")
READERS = 2


class ReaderPool:
    """Runs read functions `fn(conn)` on READERS threads; usable between `start` and `close`."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._conns: list[sqlite3.Connection] = []
        self._local = threading.local()
        self._lock = threading.Lock()
        self._closed = False

    def start(self) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(
            READERS, thread_name_prefix="store-reader"
        )

    def close(self) -> None:
        """Finish running reads, then close every connection. Idempotent."""
        self._closed = True
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite_schema.connect(self._path, readonly=True)
            with self._lock:
                self._conns.append(conn)
            self._local.conn = conn
        return conn

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`fn(conn)` on a pool thread. Raises GatewayClosing outside start..close."""
        if self._pool is None or self._closed:
            raise GatewayClosing("store is closed")

        def call() -> T:
            try:
                return fn(self._connection())
            except sqlite3.Error as exc:
                raise store_error(exc, "read") from exc

        return await asyncio.get_running_loop().run_in_executor(self._pool, call)
