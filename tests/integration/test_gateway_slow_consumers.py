"""A consumer that reads but never acks, against a real gateway: the group's max_ack_pending
bounds what it holds, only those events are redelivered, ever more rarely, and an ack frees
room for the next ones."""

from __future__ import annotations

import time
from pathlib import Path

from gateway.app import Gateway
from gateway.config import GatewayConfig
from meshgate.client import GatewayClient
from tests.integration.gateway_helpers import event


async def test_a_reader_that_never_acks_holds_max_ack_pending_events(tmp_path: Path) -> None:
    config = GatewayConfig(
        region="eu", data_dir=tmp_path, ack_timeout=0.3, max_ack_pending=5, max_redelivery_delay=5
    )
    async with Gateway(config) as gw, GatewayClient(gw.listen) as client:
        await client.publish_batch("slow", [event(i) for i in range(200)])
        seen: dict[int, list[tuple[int, float]]] = {}
        # Credits far above the bound, topped up as the client reads: they do not bound it.
        opened = time.monotonic()  # no lease is older than this
        async with client.subscribe("slow", group="g", auto_ack=False, credits=100) as sub:
            async for offset, _ev in sub:
                seen.setdefault(offset, []).append((sub.last_attempt, time.monotonic()))
                if all(len(v) >= 3 for v in seen.values()) and len(seen) == 5:
                    break
            assert sorted(seen) == [0, 1, 2, 3, 4]  # nothing past the bound was leased
            for offset, deliveries in seen.items():
                assert [a for a, _ in deliveries[:3]] == [1, 2, 3], offset
                (_, t2), (_, t3) = deliveries[1:3]
                # The wait doubles: 0.3 s before attempt 2, then 0.6 s before attempt 3 (without
                # backoff it would come at 0.6 s). A lease never expires early and none is older
                # than `opened`, so these bounds hold however slow the machine.
                assert t2 - opened >= 0.3
                assert t3 - opened >= 0.9
            await sub.ack(0, 1, 2, 3, 4)
            fresh = []
            async for offset, _ev in sub:
                if sub.last_attempt == 1:
                    fresh.append(offset)
                if len(fresh) == 5:
                    break
            assert fresh == [5, 6, 7, 8, 9]
        info = await client.topic("slow")
        assert [(g.name, g.committed_offset) for g in info.groups] == [("g", 5)]
