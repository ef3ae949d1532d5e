"""`Subscription.deliveries()`: the raw deliveries, with the same credits and acks as iterating."""

from __future__ import annotations

from meshgate.client import GatewayClient
from tests.integration.gateway_helpers import event
from tests.support.gateway_process import GatewayProcess


async def test_raw_deliveries_return_credit_and_ack_what_was_read(
    shared_gateway: GatewayProcess,
) -> None:
    async with GatewayClient(shared_gateway.listen) as gw:
        published = await gw.publish_batch("raw-deliveries", [event(i) for i in range(10)])
        seen: list[tuple[int, str]] = []
        # 4 credits for 10 events: the rest arrives only if reading returns credit.
        async with gw.subscribe("raw-deliveries", group="raw", credits=4) as sub:
            async for delivery in sub.deliveries():
                seen.append((delivery.offset, delivery.event.id))
                if len(seen) == 7:
                    break
        assert seen == [(r.offset, str(i)) for i, r in enumerate(published[:7])]
        info = await gw.topic("raw-deliveries")
        # auto_ack: the 7 read were acked (the last one on close), none beyond them
        assert [(g.name, g.committed_offset) for g in info.groups] == [("raw", 7)]


async def test_raw_deliveries_without_auto_ack_wait_for_explicit_acks(
    shared_gateway: GatewayProcess,
) -> None:
    async with GatewayClient(shared_gateway.listen) as gw:
        await gw.publish_batch("raw-manual", [event(i) for i in range(3)])
        async with gw.subscribe("raw-manual", group="m", auto_ack=False, credits=10) as sub:
            offsets = []
            async for delivery in sub.deliveries():
                offsets.append(delivery.offset)
                if len(offsets) == 3:
                    break
            await sub.ack(0, 1)
        info = await gw.topic("raw-manual")
        assert [(g.name, g.committed_offset) for g in info.groups] == [("m", 2)]
