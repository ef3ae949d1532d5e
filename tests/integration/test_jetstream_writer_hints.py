"""Writer hints on a real region of two gateway replicas (gateway/jetstream_forward.py,
meshgate/client/region_client.py), on the shared 3-node R3 JetStream cluster.

A RegionClient publishes one topic through both replicas at once: they race for its head,
the one that does not own it routes the topic to the owner and answers with the owner's
address, and from then on the client sends the topic to the owner: nothing is forwarded. When the
owner is killed with SIGKILL, the client's next publishes go to the survivor: every event
the client was answered for is stored once, at dense offsets."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from pathlib import Path

import pytest

from meshgate.client import GatewayClient, RegionClient
from meshgate.client.region_client import DOWN_FOR
from meshgate.processes import free_port
from tests.integration.gateway_helpers import event, metric, scrape
from tests.support.gateway_process import GatewayProcess
from tests.support.jetstream_fixtures import JetStreamCluster

pytestmark = [pytest.mark.xdist_group("jetstream"), pytest.mark.slow]

TOPIC = "hot"
BATCH = 10
WORKERS = 4
LEARN_WITHIN = 30.0  # s of concurrent publishing for the replicas to race and route


def forwarded(proc: GatewayProcess, way: str) -> float:
    assert proc.metrics_url is not None
    value = metric(scrape(proc.metrics_url), "meshgate_region_forwarded_rows_total", way=way)
    return value or 0.0


async def test_the_client_follows_the_writer_hint_and_fails_over_to_the_survivor(
    tmp_path: Path, jetstream_cluster: JetStreamCluster
) -> None:
    region = f"r{uuid.uuid4().hex[:8]}"
    store = ["--store", jetstream_cluster.store_url]
    a_listen = f"127.0.0.1:{free_port()}"  # a says where it is; b's is its listen address
    a = GatewayProcess(tmp_path / "a", region=region, extra_args=[*store, "--advertise", a_listen])
    b = GatewayProcess(tmp_path / "b", region=region, extra_args=store)
    ids = itertools.count()
    answered: list[tuple[int, bool]] = []  # (offset, duplicate) of every event answered
    try:
        a.start(a_listen)
        b.start()
        async with RegionClient([a.listen, b.listen], timeout=15) as client:

            async def publish() -> None:
                results = await client.publish_batch(
                    TOPIC, [event(next(ids)) for _ in range(BATCH)]
                )
                answered.extend((r.offset, r.duplicate) for r in results)

            async def worker(until: float) -> None:
                while TOPIC not in client.routes and time.monotonic() < until:
                    await publish()

            until = time.monotonic() + LEARN_WITHIN
            await asyncio.gather(*(worker(until) for _ in range(WORKERS)))
            assert TOPIC in client.routes, "no writer hint in 30 s of racing publishes"
            owner, other = (a, b) if client.routes[TOPIC] == a.listen else (b, a)

            # routed to the writer: nothing is forwarded (routed to the other replica, it
            # would forward every row: the topic stays contended there for 10 s)
            sent = [forwarded(p, "sent") for p in (a, b)]
            await asyncio.gather(*(publish() for _ in range(20)))
            assert [forwarded(p, "sent") for p in (a, b)] == sent
            assert client.routes[TOPIC] == owner.listen and client.retried == 0

            owner.kill9()
            began = time.monotonic()
            for _ in range(10):  # the first fails over; the others skip the dead replica
                await publish()
            # skipped for DOWN_FOR after each failure: one more per DOWN_FOR on a slow machine
            assert 1 <= client.retried <= 1 + int((time.monotonic() - began) / DOWN_FOR)
            assert client.routes.get(TOPIC) in (None, other.listen)  # never back to the dead

            total = next(ids)
            async with GatewayClient(other.listen, timeout=15) as reader:
                info = await reader.topic(TOPIC)
            assert (info.event_count, info.next_offset) == (total, total)
    finally:
        for proc in (a, b):
            proc.stop()
    assert len(answered) == total
    assert not any(duplicate for _, duplicate in answered)
    assert sorted(offset for offset, _ in answered) == list(range(total))
