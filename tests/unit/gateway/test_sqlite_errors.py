"""store_error names real SQLite failures (a full database, a read-only file, a bug), and a data
directory the store cannot create is one line."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import pytest

from gateway.errors import StoreError, StoreFull, StoreUnavailable
from gateway.sqlite_errors import store_error
from gateway.sqlite_store import SqliteEventStore


def real_error(run: str, conn: sqlite3.Connection) -> sqlite3.Error:
    with pytest.raises(sqlite3.Error) as caught:
        conn.execute(run)
    return caught.value


def test_a_full_database_is_store_full() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t(x BLOB)")
    conn.execute("PRAGMA max_page_count=2")  # SQLite's own SQLITE_FULL path
    exc = real_error("INSERT INTO t VALUES(zeroblob(100000))", conn)
    error = store_error(exc, "write")
    assert type(error) is StoreFull
    assert str(error) == "store full: database or disk is full"
    assert type(store_error(OSError(errno.ENOSPC, "No space left on device"), "open")) is StoreFull


def test_a_read_only_database_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "db"
    sqlite3.connect(path).execute("CREATE TABLE t(x)")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    error = store_error(real_error("INSERT INTO t VALUES(1)", conn), "write")
    assert type(error) is StoreUnavailable
    assert "readonly" in str(error)


def test_a_bug_stays_a_plain_store_error() -> None:
    conn = sqlite3.connect(":memory:")
    error = store_error(real_error("SELECT * FROM missing", conn), "read")
    assert type(error) is StoreError
    assert store_error(error, "again") is error


async def test_a_data_directory_that_cannot_be_created_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    store = SqliteEventStore(tmp_path / "file" / "data")
    with pytest.raises(StoreUnavailable) as caught:
        await store.open()
    message = str(caught.value)
    assert message.startswith(f"data directory {tmp_path / 'file' / 'data'} is not writable: ")
    assert "\n" not in message
    await store.aclose()
