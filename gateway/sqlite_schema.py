"""SQLite schema and migrations (sqlite-utils), keyed by PRAGMA user_version.

Durability (the gateway's `durability` setting): WAL, and
- `fsync` (the default): `synchronous=FULL` fsyncs the WAL on every commit, so "acknowledged =>
  durable" holds across a kill -9 and a power cut. The cost is one fsync per transaction, which
  group commit amortizes over every write waiting at that moment (gateway/sqlite_writer.py).
- `os`: `synchronous=NORMAL`: a commit is written to the OS (survives a kill -9 of the process)
  but fsync'd only at checkpoints, so a power cut or kernel crash may lose the commits of the
  last moments (never corrupt the file: WAL replay stops at the last whole commit). Like
  NATS JetStream's default (it fsyncs every 2 minutes).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import sqlite_utils

SYNCHRONOUS = {"fsync": "FULL", "os": "NORMAL"}  # durability setting -> PRAGMA synchronous


def _v1(db: sqlite_utils.Database) -> None:
    table = db.table
    table("events").create(
        {
            "seq": int,
            "topic": str,
            "offset": int,
            "source": str,
            "id": str,
            "type": str,
            "received_at": float,
            "origin_region": str,
            "replication": bytes,
            "size": int,
            "payload": bytes,
        },
        pk="seq",
        not_null={"topic", "offset", "source", "id", "received_at", "origin_region", "payload"},
    )
    table("events").create_index(["topic", "source", "id"], unique=True)
    table("events").create_index(["topic", "offset"], unique=True)
    table("events").create_index(["topic", "received_at"])
    table("topics").create({"name": str, "next_offset": int}, pk="name")
    table("groups").create(
        {"topic": str, "name": str, "committed_offset": int, "filters": str},
        pk=("topic", "name"),
    )
    table("cursors").create({"name": str, "seq": int}, pk="name")
    # High-water marks that must survive retention deleting every row (e.g. last seq).
    table("meta").create({"key": str, "value": int}, pk="key")


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_v1]


def connect(path: str, *, readonly: bool = False, durability: str = "fsync") -> sqlite3.Connection:
    """Raises ValueError for a durability that is not `fsync` or `os`."""
    if durability not in SYNCHRONOUS:
        raise ValueError(f"durability must be fsync or os, not {durability!r}")
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={SYNCHRONOUS[durability]}")
    conn.execute("PRAGMA busy_timeout=30000")
    if readonly:
        conn.execute("PRAGMA query_only=ON")
    return conn


def migrate(conn: sqlite3.Connection) -> None:
    """Run every migration newer than the file's user_version, each in its own transaction."""
    db = sqlite_utils.Database(conn)
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            step(db)
            conn.execute(f"PRAGMA user_version={number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
