"""Which backend keeps a region's events, as `TopicInfo.backend` and `meshgate topics` name it."""

from __future__ import annotations

from gateway.jetstream_store import JetStreamEventStore
from gateway.memory_store import MemoryEventStore
from gateway.sqlite_store import SqliteEventStore
from gateway.store import EventStore


def backend_name(store: EventStore) -> str:
    """ "sqlite", "jetstream", "memory", or the class name of another EventStore."""
    if isinstance(store, JetStreamEventStore):
        return "jetstream"
    if isinstance(store, SqliteEventStore):
        return "sqlite"
    if isinstance(store, MemoryEventStore):
        return "memory"
    return type(store).__name__
