"""Micro benchmark of the SQLite event store alone (no gRPC): appends/s and read-back costs.

Rows (1 KiB events, a fresh data directory per row, on the disk of --dir):

- `batch1x32`: 32 concurrent writers, one event per append (what a gateway sees from many
  one-event publishes: the writer's group commit is the only batching).
- `batch100`: 4 concurrent writers, 100 events per append.
- `follow3`: 4 writers of 100 events beside 3 readers that follow the log the way delivery
  and federation do (`read_since` pages, then each event's filterable attributes): the cost of
  reading back what was just written (from the committed tail, or from the database).
- `segment`: the floor an append-only segment file would have: `write` + `fdatasync` of the
  same bytes grouped like batch1x32's commits (no index, no dedup: the cost of the fsync
  alone, to compare SQLite's commit with).

Each row for every durability (`fsync`, `os`), `--runs` times interleaved; it prints the
median events/s and the median process CPU microseconds per event (the CPU figure is the
steadier one on a shared machine). Usage::

    python -m bench.store_micro [--seconds 3] [--runs 3] [--dir PATH] [--durability fsync,os]

bench/RESULTS.md is F3's (`make bench`); this one is for the store alone.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from eventmodel import attributes
from gateway import store as store_module
from gateway.sqlite_store import SqliteEventStore
from gateway.store import NewEvent, StoredEvent
from proto import cloudevents_pb2

PAYLOAD = b"x" * 1024
READERS = 3


def _event(key: str) -> NewEvent:
    pb = cloudevents_pb2.CloudEvent(
        id=key, source="/bench", spec_version="1.0", type="bench.t", binary_data=b"x" * 960
    )
    return NewEvent("/bench", key, "bench.t", pb.SerializeToString(deterministic=True))


def _attributes(row: StoredEvent) -> dict[str, str]:
    cached = getattr(store_module, "attribute_strings", None)  # absent before the tail
    if cached is not None:
        return dict(cached(row))
    return attributes.attribute_strings(attributes.parse(row.payload))


def _store(path: Path, durability: str) -> SqliteEventStore:
    params = inspect.signature(SqliteEventStore).parameters
    kwargs: dict[str, Any] = {"durability": durability} if "durability" in params else {}
    return SqliteEventStore(path, **kwargs)


async def appends(
    path: Path, durability: str, writers: int, batch: int, seconds: float
) -> tuple[float, float]:
    """(events/s, process CPU seconds per event)."""
    store = _store(path, durability)
    await store.open()
    counter = 0
    deadline = time.perf_counter() + seconds

    async def writer(w: int) -> None:
        nonlocal counter
        i = 0
        while time.perf_counter() < deadline:
            events = [NewEvent("/bench", f"{w}-{i}-{k}", "t", PAYLOAD) for k in range(batch)]
            await store.append("bench", events, "eu")
            counter += batch
            i += 1

    start, cpu = time.perf_counter(), time.process_time()
    try:
        async with asyncio.TaskGroup() as tg:
            for w in range(writers):
                tg.create_task(writer(w))
    finally:
        await store.aclose()
    return counter / (time.perf_counter() - start), (time.process_time() - cpu) / counter


async def follow(path: Path, durability: str, seconds: float) -> tuple[float, float]:
    """(events read back per second by each reader, process CPU seconds per event written)."""
    store = _store(path, durability)
    await store.open()
    written = 0
    read = [0] * READERS
    deadline = time.perf_counter() + seconds
    done = asyncio.Event()

    async def writer(w: int) -> None:
        nonlocal written
        i = 0
        while time.perf_counter() < deadline:
            await store.append("bench", [_event(f"{w}-{i}-{k}") for k in range(100)], "eu")
            written += 100
            i += 1

    async def reader(r: int) -> None:
        seq = 0
        while not (done.is_set() and seq >= store.last_seq):
            rows = await store.read_since(seq, 256)
            if not rows:
                await asyncio.sleep(0.001)
                continue
            for row in rows:
                if _attributes(row)["type"] != "bench.t":
                    raise AssertionError("read back a different event")
            read[r] += len(rows)
            seq = rows[-1].seq

    start, cpu = time.perf_counter(), time.process_time()
    try:
        async with asyncio.TaskGroup() as tg:
            readers = [tg.create_task(reader(r)) for r in range(READERS)]
            await asyncio.gather(*(writer(w) for w in range(4)))
            done.set()
            await asyncio.gather(*readers)
    finally:
        await store.aclose()
    elapsed = time.perf_counter() - start
    assert all(n == written for n in read), (read, written)
    return written / elapsed, (time.process_time() - cpu) / written


def segment(path: Path, group: int, seconds: float) -> float:
    """write + fdatasync of `group` 1 KiB records at a time (a segment log's floor)."""
    fd = os.open(path / "segment.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    blob = PAYLOAD * group
    n = 0
    start = time.perf_counter()
    try:
        while time.perf_counter() - start < seconds:
            os.write(fd, blob)
            os.fdatasync(fd)
            n += group
    finally:
        os.close(fd)
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--dir", type=Path, default=Path.cwd())
    parser.add_argument("--durability", default="fsync,os")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rows = [
        (name, durability, writers, batch)
        for durability in args.durability.split(",")
        for name, writers, batch in (("batch1x32", 32, 1), ("batch100", 4, 100))
    ]
    seen: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for _ in range(args.runs):
        for name, durability, writers, batch in rows:
            with tempfile.TemporaryDirectory(dir=args.dir, prefix="store-micro-") as tmp:
                got = asyncio.run(appends(Path(tmp), durability, writers, batch, args.seconds))
            seen.setdefault((name, durability), []).append(got)
    for _ in range(args.runs):
        for durability in args.durability.split(","):
            with tempfile.TemporaryDirectory(dir=args.dir, prefix="store-micro-") as tmp:
                got = asyncio.run(follow(Path(tmp), durability, args.seconds))
            seen.setdefault(("follow3", durability), []).append(got)
    for (name, durability), runs in seen.items():
        rate = statistics.median(r for r, _ in runs)
        cpu = statistics.median(c for _, c in runs) * 1e6
        print(
            f"{name:10} durability={durability:5} {rate:10.0f} events/s {cpu:6.1f} us CPU/event",
            flush=True,
        )
    for group in (1, 32, 100):
        with tempfile.TemporaryDirectory(dir=args.dir, prefix="store-micro-") as tmp:
            rate = segment(Path(tmp), group, args.seconds)
        print(f"segment    group={group:<5}  {rate:10.0f} events/s (write+fdatasync)", flush=True)


if __name__ == "__main__":
    main()
