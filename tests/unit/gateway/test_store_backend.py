"""`backend_name`: what TopicInfo.backend and `meshgate topics` say keeps the region's events."""

from __future__ import annotations

from pathlib import Path

from gateway.jetstream_store import JetStreamEventStore
from gateway.memory_store import MemoryEventStore
from gateway.sqlite_store import SqliteEventStore
from gateway.store_backend import backend_name


def test_each_store_names_its_backend(tmp_path: Path) -> None:
    assert backend_name(SqliteEventStore(tmp_path)) == "sqlite"
    assert backend_name(MemoryEventStore()) == "memory"
    assert backend_name(JetStreamEventStore(["nats://127.0.0.1:1"], "eu")) == "jetstream"
