"""The small records of a region's stream: durable group records and federation cursors.

One subject each (gateway/jetstream_layout.py: `mg.<r>.g.<topic>.<group>`, `mg.<r>.c.<name>`);
the latest message is the value. A mixin of JetStreamEventStore (gateway/jetstream_store.py),
kept apart so each module stays about one thing.
"""

from __future__ import annotations

import abc
import json

from gateway.jetstream_client import JetStreamClient, Record
from gateway.jetstream_layout import Layout
from gateway.store import GroupRecord


class StreamRecords(abc.ABC):
    """Group records and cursors over the store's connection and layout."""

    _layout: Layout

    @abc.abstractmethod
    def _js(self) -> JetStreamClient:
        """The open connection (GatewayClosing after close)."""

    @abc.abstractmethod
    async def _scan(self, subject: str) -> list[Record]:
        """Every record on `subject` (small sets only)."""

    async def load_group(self, topic: str, group: str) -> GroupRecord | None:
        found = await self._js().get_last(self._layout.group(topic, group))
        return _group(found) if found is not None else None

    async def save_group(self, record: GroupRecord) -> None:
        body = {
            "topic": record.topic,
            "group": record.group,
            "committed": record.committed_offset,
            "filters": record.filters_json,
        }
        await self._js().put(
            self._layout.group(record.topic, record.group), json.dumps(body).encode()
        )

    async def list_groups(self) -> list[GroupRecord]:
        groups = [_group(r) for r in await self._scan(self._layout.all_groups())]
        return sorted(groups, key=lambda g: (g.topic, g.group))

    async def get_cursor(self, name: str) -> int | None:
        found = await self._js().get_last(self._layout.cursor(name))
        return int(found.data) if found is not None else None

    async def set_cursor(self, name: str, seq: int) -> None:
        await self._js().put(self._layout.cursor(name), str(seq).encode())

    async def cursors(self) -> dict[str, int]:
        """Every cursor of the region (name -> seq), as the cluster holds them."""
        return {
            self._layout.name_of(r.subject): int(r.data)
            for r in await self._scan(self._layout.all_cursors)
        }


def _group(record: Record) -> GroupRecord:
    body = json.loads(record.data)
    return GroupRecord(body["topic"], body["group"], int(body["committed"]), body["filters"])
