"""Every SQL statement of the SQLite store, as plain functions over a connection.

Write functions take the writer's `Tx` and run inside its transaction (gateway/sqlite_writer.py
owns BEGIN / SAVEPOINT / COMMIT: these never commit, so nothing here is durable, or answered,
before the writer's COMMIT). They note in the `Tx` the rows they inserted and the seqs they
deleted, for the store's in-memory tail (handed over only once committed). Read functions run
on a pooled read-only connection (gateway/sqlite_readers.py) and return at most `limit` rows.

Dedup rule: the unique index on (topic, source, id) decides (INSERT ... DO NOTHING), so a new
event costs one statement and a repeat answers its first offset. `insert_new` is the fast
path: one `executemany` for a whole group, assuming every row new; the index still decides,
and if it refused any row the writer rolls the group back and uses `insert_events`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gateway.store import AppendResult, GroupRecord, ParsedOnce, Row, StoredEvent, TopicStats

if TYPE_CHECKING:  # the writer imports this module; Tx is only a parameter type here
    from gateway.sqlite_writer import Tx

_COLUMNS = "seq, topic, offset, payload, origin_region, replication, received_at, size"
_IN_CHUNK = 500  # offsets per IN (...) list, well below SQLite's bound on variables


def _stored(r: tuple[Any, ...]) -> StoredEvent:
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


# -- writes (writer thread, inside its transaction) ---------------------------------------

_INSERT = (
    "INSERT INTO events(seq, topic, offset, source, id, type, received_at, "
    "origin_region, replication, size, payload) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
    "ON CONFLICT(topic, source, id) DO NOTHING"
)


def _row(seq: int, offset: int, row: Row, now: float) -> StoredEvent:
    topic, event, origin, replication = row
    payload = event.payload
    return StoredEvent(
        seq,
        topic,
        offset,
        payload,
        origin,
        replication,
        now,
        len(payload),
        ParsedOnce(payload, event.attributes),
    )


def insert_new(
    conn: sqlite3.Connection, tx: Tx, batches: Sequence[tuple[Sequence[Row], float]]
) -> list[list[AppendResult]] | None:
    """Insert every row of `batches` (one per job, with its time) in one statement, as new.

    Returns the answers per batch, or None if the unique index refused any row (a duplicate):
    the counters and `tx` are then advanced for rows that are not all stored, and the caller
    must roll back to before this call (the writer's group savepoint) and undo `tx`."""
    counters = tx.counters
    offsets = counters.next_offsets
    seq = counters.last_seq
    params: list[tuple[Any, ...]] = []
    answers: list[list[AppendResult]] = []
    stored: list[StoredEvent] = []
    for rows, now in batches:
        answer: list[AppendResult] = []
        for row in rows:
            topic, event, origin, replication = row
            offset = offsets.get(topic, 0)
            seq += 1
            offsets[topic] = offset + 1
            params.append(
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
                )
            )
            stored.append(_row(seq, offset, row, now))
            answer.append(AppendResult(offset, False))
            tx.topics.add(topic)
        answers.append(answer)
    counters.last_seq = seq
    tx.inserted.extend(stored)
    if not params:
        return answers
    if conn.executemany(_INSERT, params).rowcount != len(params):
        return None
    return answers


def insert_events(
    conn: sqlite3.Connection, tx: Tx, rows: Sequence[Row], now: float
) -> list[AppendResult]:
    """Insert rows; a known (topic, source, id) answers its first offset as a duplicate.

    Advances `tx.counters` for each new event; the writer saves each touched topic's next
    offset once per transaction."""
    counters = tx.counters
    out: list[AppendResult] = []
    touched: set[str] = set()
    cur = conn.cursor()
    for row in rows:
        topic, event, origin, replication = row
        offset = counters.next_offsets.get(topic, 0)
        seq = counters.last_seq + 1
        cur.execute(
            _INSERT,
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
        counters.last_seq = seq
        counters.next_offsets[topic] = offset + 1
        touched.add(topic)
        tx.inserted.append(_row(seq, offset, row, now))
        out.append(AppendResult(offset, False))
    tx.topics |= touched
    return out


def save_group(conn: sqlite3.Connection, record: GroupRecord) -> None:
    conn.execute(
        "INSERT INTO groups(topic, name, committed_offset, filters) VALUES(?,?,?,?) "
        "ON CONFLICT(topic, name) DO UPDATE SET "
        "committed_offset=excluded.committed_offset, filters=excluded.filters",
        (record.topic, record.group, record.committed_offset, record.filters_json),
    )


def set_cursor(conn: sqlite3.Connection, name: str, seq: int) -> None:
    conn.execute(
        "INSERT INTO cursors(name, seq) VALUES(?, ?) "
        "ON CONFLICT(name) DO UPDATE SET seq=excluded.seq",
        (name, seq),
    )


def apply_retention(
    conn: sqlite3.Connection, tx: Tx, topic: str, older_than: float | None, max_bytes: int | None
) -> int:
    """Delete `topic`'s events older than `older_than`, then its oldest beyond `max_bytes`."""
    before = len(tx.deleted)
    if older_than is not None:
        tx.deleted.extend(
            seq
            for (seq,) in conn.execute(
                "DELETE FROM events WHERE topic=? AND received_at < ? RETURNING seq",
                (topic, older_than),
            ).fetchall()
        )
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
                tx.deleted.extend(
                    seq
                    for (seq,) in conn.execute(
                        "DELETE FROM events WHERE topic=? AND offset <= ? RETURNING seq",
                        (topic, cut),
                    ).fetchall()
                )
    return len(tx.deleted) - before


def delete_events(conn: sqlite3.Connection, tx: Tx, seqs: Sequence[int]) -> int:
    before = len(tx.deleted)
    cur = conn.cursor()
    for seq in seqs:
        if cur.execute("DELETE FROM events WHERE seq=? RETURNING seq", (seq,)).fetchone():
            tx.deleted.append(seq)
    return len(tx.deleted) - before


# -- reads (a pooled read-only connection) --------------------------------------------------


def read_page(
    conn: sqlite3.Connection, topic: str, from_offset: int, limit: int
) -> list[StoredEvent]:
    return [
        _stored(r)
        for r in conn.execute(
            f"SELECT {_COLUMNS} FROM events WHERE topic=? AND offset>=? ORDER BY offset LIMIT ?",
            (topic, from_offset, limit),
        )
    ]


def read_offsets(conn: sqlite3.Connection, topic: str, wanted: Sequence[int]) -> list[StoredEvent]:
    """The events at the sorted, distinct offsets `wanted` that are still stored."""
    out: list[StoredEvent] = []
    for start in range(0, len(wanted), _IN_CHUNK):
        chunk = wanted[start : start + _IN_CHUNK]
        marks = ",".join("?" * len(chunk))
        out.extend(
            _stored(r)
            for r in conn.execute(
                f"SELECT {_COLUMNS} FROM events WHERE topic=? AND offset IN ({marks}) "
                "ORDER BY offset",
                (topic, *chunk),
            )
        )
    return out


def read_since(conn: sqlite3.Connection, seq: int, limit: int) -> list[StoredEvent]:
    return [
        _stored(r)
        for r in conn.execute(
            f"SELECT {_COLUMNS} FROM events WHERE seq>? ORDER BY seq LIMIT ?", (seq, limit)
        )
    ]


def offset_at_time(conn: sqlite3.Connection, topic: str, when: float) -> int:
    row = conn.execute(
        "SELECT MIN(offset) FROM events WHERE topic=? AND received_at>=?", (topic, when)
    ).fetchone()
    if row[0] is not None:
        return int(row[0])
    nxt = conn.execute("SELECT next_offset FROM topics WHERE name=?", (topic,)).fetchone()
    return int(nxt[0]) if nxt else 0


def topic_stats(conn: sqlite3.Connection, topic: str | None) -> list[TopicStats]:
    where, args = ("WHERE t.name=?", (topic,)) if topic is not None else ("", ())
    rows = conn.execute(
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


def load_group(conn: sqlite3.Connection, topic: str, group: str) -> GroupRecord | None:
    row = conn.execute(
        "SELECT committed_offset, filters FROM groups WHERE topic=? AND name=?", (topic, group)
    ).fetchone()
    return GroupRecord(topic, group, row[0], row[1]) if row else None


def list_groups(conn: sqlite3.Connection) -> list[GroupRecord]:
    return [
        GroupRecord(t, g, o, f)
        for t, g, o, f in conn.execute(
            "SELECT topic, name, committed_offset, filters FROM groups ORDER BY topic, name"
        )
    ]


def get_cursor(conn: sqlite3.Connection, name: str) -> int | None:
    row = conn.execute("SELECT seq FROM cursors WHERE name=?", (name,)).fetchone()
    return int(row[0]) if row else None
