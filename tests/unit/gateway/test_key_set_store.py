"""KeySetStore: durable puts (a reload after a kill -9 holds them), damage skipped, wake-ups."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.key_set_store import KeySetStore, StoredKeySet, hash_hex


def stored(topic: str, epoch: int, body: bytes = b"") -> StoredKeySet:
    document = json.dumps({"topic": topic, "epoch": epoch, "x": body.hex()}).encode()
    return StoredKeySet(
        topic=topic,
        epoch=epoch,
        key_set_hash=hash_hex(document),
        document=document,
        signature=b"\x01" * 65,
    )


async def test_put_then_reload_in_a_new_store(tmp_path: Path) -> None:
    store = KeySetStore(tmp_path)
    assert store.load() == 0
    a, b, c = stored("orders", 2), stored("orders", 1), stored("other", 1)
    for s in (a, b, c):
        assert await store.put(s) is True
    assert await store.put(a) is False  # held already: once, whatever door it came through
    again = KeySetStore(tmp_path)
    assert again.load() == 3
    assert again.for_topic("orders") == [b, a]  # oldest epoch first
    assert again.for_topic("orders", from_epoch=2) == [a]
    assert again.get(a.key_set_hash.upper().replace("0X", "0x")) == a
    assert again.all() == [b, a, c]


async def test_a_hash_that_is_not_the_documents_is_refused(tmp_path: Path) -> None:
    store = KeySetStore(tmp_path)
    store.load()
    bad = StoredKeySet(
        topic="t", epoch=1, key_set_hash="0x" + "00" * 32, document=b"{}", signature=b""
    )
    with pytest.raises(ValueError):
        await store.put(bad)


async def test_damaged_and_half_written_files_are_skipped_at_load(tmp_path: Path) -> None:
    store = KeySetStore(tmp_path)
    store.load()
    good = stored("t", 1)
    await store.put(good)
    (store.directory / f"{hash_hex(b'x')}.json").write_text("{not json")
    edited = stored("t", 2)
    path = store.directory / f"{edited.key_set_hash}.json"
    path.write_text(json.dumps({"topic": "t", "epoch": 2, "document": "e30=", "signature": ""}))
    (store.directory / "leftover.tmp").write_bytes(b"half")
    again = KeySetStore(tmp_path)
    assert again.load() == 1
    assert again.all() == [good]
    assert not (store.directory / "leftover.tmp").exists()


_WRITER = """
import asyncio, sys
from pathlib import Path
from gateway.key_set_store import KeySetStore
from tests.unit.gateway.test_key_set_store import stored

async def main() -> None:
    store = KeySetStore(Path(sys.argv[1]))
    store.load()
    i = 0
    while True:
        await store.put(stored("t", i + 1, b"y" * 4096))
        i += 1
        print(i, flush=True)

asyncio.run(main())
"""


def test_killed_mid_writes_every_acknowledged_set_reloads_whole(tmp_path: Path) -> None:
    """kill -9 a writer while it puts: every put that returned is held, nothing is torn."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert proc.stdout is not None
    acknowledged = 0
    for line in proc.stdout:  # bounded: the writer never stops on its own
        acknowledged = int(line)
        if acknowledged >= 20:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    store = KeySetStore(tmp_path)
    held = store.load()
    assert held >= acknowledged
    assert {s.epoch for s in store.all()} >= set(range(1, acknowledged + 1))
    assert all(s.key_set_hash == hash_hex(s.document) for s in store.all())


async def test_wait_changed_wakes_on_a_new_set_only(tmp_path: Path) -> None:
    store = KeySetStore(tmp_path)
    store.load()
    assert await store.wait_changed(-1) == 0
    waiter = asyncio.create_task(store.wait_changed(0))
    await asyncio.sleep(0)
    assert not waiter.done()
    await store.put(stored("t", 1))
    assert await asyncio.wait_for(waiter, 5) == 1
    await store.put(stored("t", 1))  # held already: no change
    assert store.version == 1


async def test_put_before_load_is_a_bug(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        await KeySetStore(tmp_path).put(stored("t", 1))
