"""Revocation lag: from the revoke transaction mined to the last event delivered, per region.

Shape of one run:
1. The owner registers a fresh topic, allows the publisher and grants the reader (on chain).
2. The reader signs in (EIP-4361) at every region's gateway and subscribes there; the
   publisher signs in at the publishing region and publishes 1 KiB events at a paced
   1,000 events/s (batches of 10 every 10 ms).
3. Once every region is delivering, the owner revokes the reader. "Mined" is the moment
   `eth_sendRawTransaction` returns: Ganache mines before it answers, so mining happened
   within `revoke_tx_ms` before it.
4. Each region's lag is its last delivery minus "mined"; the stream should then end with
   PERMISSION_DENIED. Publishing stops when every stream has ended or `cutoff` seconds after
   the revoke, whichever is first; a stream still open then is reported as not cut (cut=0,
   no lag figure).

Bounded everywhere: warm-up, cut-off and drain all have deadlines.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import grpc

from bench.drivers import Metrics
from bench.harness import Pacer, make_payload
from bench.meshgate_workloads import (
    MeshgateTarget,
    meshgate_target,
    new_topic,
    open_subscription,
    signed_in_client,
)
from bench.procs import BenchError

RATE = 1000.0
BATCH = 10
WARMUP_TIMEOUT = 60.0
CREDITS = 4096


@dataclass
class RegionReader:
    region: str
    received: int = 0
    last_ns: int = 0
    arrivals: list[tuple[int, int]] = field(default_factory=list)  # (monotonic ns, events)
    end: str = "open"
    first: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, addr: str, topic: str, account: Any) -> None:
        """Sign in, subscribe and count deliveries until the stream ends."""
        try:
            async with await signed_in_client(addr, account, topic) as client:
                sub = await open_subscription(client, topic, window=CREDITS)
                try:
                    async for _delivery in sub.deliveries():
                        self.received += 1
                        self.last_ns = time.monotonic_ns()
                        self.arrivals.append((self.last_ns, 1))
                        self.first.set()
                    self.end = "EOF"
                except grpc.aio.AioRpcError as exc:
                    self.end = exc.code().name
                finally:
                    await sub.aclose()
        finally:
            self.ended.set()


async def _publish(target: MeshgateTarget, stop: asyncio.Event, limit: float) -> None:
    """Paced publishing until `stop` (or `limit` seconds): the stream the revoke must cut."""
    total = int(RATE * limit / BATCH)
    pacer = Pacer(rate=RATE / BATCH, total=total)
    start = time.monotonic()
    sent = 0
    while sent < total and not stop.is_set():
        due = pacer.due(time.monotonic() - start)
        while sent < due and not stop.is_set():
            now = time.monotonic_ns()
            await target.publish([make_payload(sent * BATCH + i, now) for i in range(BATCH)])
            sent += 1
        delay = pacer.delay_until_next(sent, time.monotonic() - start)
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await stop.wait()


async def _until_all_delivering(
    readers: dict[str, RegionReader], tasks: list[asyncio.Task[None]]
) -> None:
    """Wait for every region's first delivery; fail fast if a reader or the publisher died."""
    async with asyncio.timeout(WARMUP_TIMEOUT):
        while not all(r.first.is_set() for r in readers.values()):
            for task in tasks:
                if task.done():
                    task.result()  # re-raises the task's error
                    ended = {name: r.end for name, r in readers.items() if r.ended.is_set()}
                    raise BenchError(f"a stream ended before delivering anything: {ended}")
            await asyncio.sleep(0.05)


async def _revoke_under_load(
    chain: Any,
    target: MeshgateTarget,
    readers: dict[str, RegionReader],
    addrs: dict[str, str],
    cutoff: float,
) -> tuple[int, int]:
    """Readers everywhere, the paced publisher, the revoke once all deliver: (sent, mined) ns."""
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(readers[region].run(addr, target.topic, chain.reader))
        for region, addr in addrs.items()
    ]
    try:
        tasks.append(asyncio.create_task(_publish(target, stop, cutoff + WARMUP_TIMEOUT)))
        await _until_all_delivering(readers, tasks)
        revoked = await asyncio.to_thread(chain.revoke_timed, target.topic, chain.reader.address)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(cutoff):
                await asyncio.gather(*(r.ended.wait() for r in readers.values()))
        return revoked
    finally:
        stop.set()
        for task in tasks[: len(addrs)]:  # readers; the publisher stops on `stop`
            task.cancel()
        async with asyncio.timeout(30):
            await asyncio.gather(*tasks, return_exceptions=True)


async def revocation_lag(
    *,
    chain: Any,  # bench.chain.BenchChain
    addrs: dict[str, str],
    publish_region: str,
    cutoff: float = 10.0,
) -> Metrics:
    topic = new_topic("revoke")
    await asyncio.to_thread(chain.open_topic, topic)
    readers = {region: RegionReader(region) for region in addrs}
    addr = addrs[publish_region]
    async with meshgate_target(
        addr, addr, window=CREDITS, topic=topic, publisher=chain.publisher
    ) as target:
        sent_ns, mined_ns = await _revoke_under_load(chain, target, readers, addrs, cutoff)
    metrics: Metrics = {"revoke_tx_ms": (mined_ns - sent_ns) / 1e6}
    for region, r in readers.items():
        cut = r.end != "open"  # the gateway ended the stream within the cut-off
        metrics[f"cut_{region}"] = 1.0 if cut else 0.0
        metrics[f"end_{region}_{r.end}"] = 1.0
        after = sum(n for ns, n in r.arrivals if ns > mined_ns)
        metrics[f"events_after_revoke_{region}"] = float(after)
        if cut:
            metrics[f"lag_ms_{region}"] = (r.last_ns - mined_ns) / 1e6
    return metrics
