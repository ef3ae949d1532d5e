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
    CHANNEL_OPTIONS,
    MeshgateTarget,
    new_topic,
    open_subscription,
    session_credentials,
)
from bench.procs import BenchError
from proto import gateway_pb2_grpc

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
            async with grpc.aio.insecure_channel(addr, options=CHANNEL_OPTIONS) as channel:
                stub = gateway_pb2_grpc.GatewayStub(channel)
                creds = await session_credentials(stub, account, topic)
                stream = await open_subscription(stub, topic, window=CREDITS, credentials=creds)
                try:
                    while (deliveries := await stream.read()) is not None:
                        self.received += len(deliveries)
                        self.last_ns = time.monotonic_ns()
                        self.arrivals.append((self.last_ns, len(deliveries)))
                        self.first.set()
                        await stream.settle(deliveries)
                    self.end = "EOF"
                except grpc.aio.AioRpcError as exc:
                    self.end = exc.code().name
                finally:
                    await stream.close()
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


async def revocation_lag(
    *,
    chain: Any,  # bench.chain.BenchChain
    addrs: dict[str, str],
    publish_region: str,
    cutoff: float = 10.0,
) -> Metrics:
    topic = new_topic("revoke")
    await asyncio.to_thread(chain.open_topic, topic)
    target = MeshgateTarget(
        publish_addr=addrs[publish_region],
        subscribe_addr=addrs[publish_region],
        topic=topic,
        window=CREDITS,
    )
    readers = {region: RegionReader(region) for region in addrs}
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    try:
        stub = gateway_pb2_grpc.GatewayStub(target.channel(addrs[publish_region]))
        target.publish_credentials = await session_credentials(stub, chain.publisher, topic)
        tasks += [
            asyncio.create_task(readers[region].run(addr, topic, chain.reader))
            for region, addr in addrs.items()
        ]
        tasks.append(asyncio.create_task(_publish(target, stop, cutoff + WARMUP_TIMEOUT)))
        await _until_all_delivering(readers, tasks)
        sent_ns, mined_ns = await asyncio.to_thread(chain.revoke_timed, topic, chain.reader.address)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(cutoff):
                await asyncio.gather(*(r.ended.wait() for r in readers.values()))
    finally:
        stop.set()
        for task in tasks[:-1]:  # readers; the publisher stops on `stop`
            task.cancel()
        async with asyncio.timeout(30):
            await asyncio.gather(*tasks, return_exceptions=True)
        await target.aclose()
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
