"""`KeySetStore`: the verified key sets of encrypted topics this gateway holds, on disk.

A key set (policy/key_sets.py) is an owner-signed document whose keccak256 the chain records
with its epoch; readers and publishers fetch it from any gateway (GetKeySets). The store keeps
only sets the caller already verified against this gateway's view of the chain (PutKeySet,
the federation flood: gateway/key_sets.py); it never judges them itself.

Layout: `<data_dir>/key_sets/<keccak hex>.json`, one file per set, holding
`{"topic", "epoch", "document", "signature"}` (the bytes base64). The name is the document's
keccak256, so a set is stored once whatever door it came through, and a file whose content
does not hash to its name (a torn or edited file) is skipped at load with a warning.

Durability: each put writes a temporary file, fsyncs it, renames it over the final name and
fsyncs the directory, before `put` returns: a gateway killed at any instant holds either the
whole set or nothing of it (never a half-written one), and a PutKeySet that answered OK
survives a crash. Sets are small and rare (one per rotation or grant), so the fsyncs cost
nothing that matters; they run in a worker thread.

Backends: the same whatever the event store is (SQLite, memory, JetStream). On JetStream,
where several gateways share one region's events, each replica keeps its own copy in its own
data directory, fed by the mesh (the flood sends every held set on each link up) and by
PutKeySet: a set is public (it only holds sealed keys) and self-certifying (chain + owner
signature), so copies never need to agree beyond "verified".

Wake-ups: `version` counts puts that added a set; `wait_changed(seen)` returns as soon as it
differs (the federation flood watches it instead of being called back).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from eth_utils import keccak

log = logging.getLogger(__name__)

DIRECTORY = "key_sets"


@dataclass(frozen=True, slots=True)
class StoredKeySet:
    topic: str
    epoch: int
    key_set_hash: str  # 0x-hex keccak256 of document, lower case
    document: bytes
    signature: bytes


def hash_hex(document: bytes) -> str:
    """The chain's name for a key set: 0x-hex keccak256 of its document."""
    return "0x" + keccak(document).hex()


class KeySetStore:
    """Held sets by topic; not thread-safe (one event loop), writes in a worker thread."""

    def __init__(self, data_dir: Path) -> None:
        self.directory = data_dir / DIRECTORY
        self._sets: dict[str, StoredKeySet] = {}  # by hash
        self.version = 0
        self._changed = asyncio.Condition()
        self._loaded = False

    # -- start -------------------------------------------------------------------------

    def load(self) -> int:
        """Read every held set (blocking; at start). Returns how many were loaded."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for leftover in self.directory.glob("*.tmp"):
            leftover.unlink(missing_ok=True)  # a put killed before its rename
        for path in sorted(self.directory.glob("*.json")):
            stored = _read(path)
            if stored is None:
                log.warning("key set file %s is damaged: skipped", path)
                continue
            self._sets[stored.key_set_hash] = stored
        self._loaded = True
        return len(self._sets)

    # -- reading -----------------------------------------------------------------------

    def get(self, key_set_hash: str) -> StoredKeySet | None:
        return self._sets.get(key_set_hash.lower())

    def for_topic(self, topic: str, from_epoch: int = 0) -> list[StoredKeySet]:
        """Held sets of `topic` with epoch >= from_epoch, oldest epoch first."""
        found = [s for s in self._sets.values() if s.topic == topic and s.epoch >= from_epoch]
        return sorted(found, key=lambda s: (s.epoch, s.key_set_hash))

    def all(self) -> list[StoredKeySet]:
        return sorted(self._sets.values(), key=lambda s: (s.topic, s.epoch, s.key_set_hash))

    # -- writing -----------------------------------------------------------------------

    async def put(self, stored: StoredKeySet) -> bool:
        """Persist a verified set (durable on return); False if it was held already."""
        if not self._loaded:
            raise RuntimeError("KeySetStore.put before load()")
        if stored.key_set_hash != hash_hex(stored.document):
            raise ValueError("key set hash does not match its document")
        if stored.key_set_hash in self._sets:
            return False
        await asyncio.to_thread(_write, self.directory, stored)
        if stored.key_set_hash in self._sets:  # a concurrent put of the same set won
            return False
        self._sets[stored.key_set_hash] = stored
        async with self._changed:
            self.version += 1
            self._changed.notify_all()
        return True

    async def wait_changed(self, seen_version: int) -> int:
        """Return `version` as soon as it differs from `seen_version` (-1: at once)."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.version != seen_version)
            return self.version


def _encode(stored: StoredKeySet) -> bytes:
    return json.dumps(
        {
            "topic": stored.topic,
            "epoch": stored.epoch,
            "document": base64.b64encode(stored.document).decode(),
            "signature": base64.b64encode(stored.signature).decode(),
        },
        sort_keys=True,
    ).encode()


def _read(path: Path) -> StoredKeySet | None:
    try:
        raw = json.loads(path.read_bytes())
        document = base64.b64decode(raw["document"], validate=True)
        stored = StoredKeySet(
            topic=str(raw["topic"]),
            epoch=int(raw["epoch"]),
            key_set_hash=hash_hex(document),
            document=document,
            signature=base64.b64decode(raw["signature"], validate=True),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return stored if path.stem == stored.key_set_hash else None


def _write(directory: Path, stored: StoredKeySet) -> None:
    """Atomic and durable: temp file, fsync, rename, fsync the directory."""
    final = directory / f"{stored.key_set_hash}.json"
    tmp = directory / f"{stored.key_set_hash}.tmp"
    with open(tmp, "wb") as f:
        f.write(_encode(stored))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, final)
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
