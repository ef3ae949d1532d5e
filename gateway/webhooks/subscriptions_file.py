"""Where webhook subscriptions persist: one JSON file in the data directory (blocking I/O).

Why a file of its own and not a table in the event store: subscriptions are few, written
rarely (create, replace, delete, 410), and read once at start-up; a file keeps them off the
store's schema and its migrations (owned by the store) and readable by an operator. Each
write replaces the whole file atomically (temporary file, fsync, rename, fsync of the
directory), so a crash leaves either the old or the new set, never half of one.

The group offsets of the subscriptions are NOT here: each subscription reads a durable group,
whose committed offset the event store keeps like any other group's.

Error handling: an unreadable or malformed file raises ConfigError (the gateway refuses to
start rather than drop subscriptions silently); a failed write raises StoreUnavailable.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from gateway.errors import ConfigError, StoreUnavailable
from gateway.webhooks.errors import InvalidSubscription
from gateway.webhooks.subscription import Subscription, from_record

FILE_NAME = "webhooks.json"
FORMAT_VERSION = 1


class SubscriptionsFile:
    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / FILE_NAME

    def load(self) -> list[Subscription]:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ConfigError(f"cannot read webhook subscriptions {self.path}: {exc}") from exc
        try:
            doc = json.loads(raw)
            if not isinstance(doc, dict) or doc.get("version") != FORMAT_VERSION:
                raise ValueError(f"expected {{'version': {FORMAT_VERSION}, ...}}")
            records = doc.get("subscriptions")
            if not isinstance(records, list):
                raise ValueError("'subscriptions' must be a list")
            return [from_record(r) for r in records]
        except (ValueError, InvalidSubscription) as exc:
            raise ConfigError(
                f"webhook subscriptions file {self.path} is malformed: {exc}"
            ) from exc

    def save(self, subscriptions: Iterable[Subscription]) -> None:
        doc = {
            "version": FORMAT_VERSION,
            "subscriptions": [s.to_record() for s in sorted(subscriptions, key=lambda s: s.id)],
        }
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(doc, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)  # headers may carry the sink's credentials
            os.replace(tmp, self.path)
            fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise StoreUnavailable(
                f"cannot write webhook subscriptions {self.path}: {exc}"
            ) from exc
