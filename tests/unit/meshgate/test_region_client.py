"""RegionClient follows writer hints (meshgate/client/region_client.py), against in-process
gateways whose stores name a topic's writer as a region of replicas does (the JetStream path
itself: tests/integration/test_jetstream_writer_hints.py).

What must hold: a hint that names one of the client's replicas routes the topic's next
publishes there, over the stream and the unary call alike; a hint naming any other address is
never followed; an UNAVAILABLE writer drops the route and the publish goes once more to the
next replica; topics without a hint go to the replicas in turn."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from gateway.app import Gateway
from gateway.config import GatewayConfig
from gateway.memory_store import MemoryEventStore
from meshgate.client import GatewayClient, RegionClient
from meshgate.client.region_client import followed
from tests.integration.gateway_helpers import event

pytestmark = pytest.mark.filterwarnings("ignore:gateway runs OPEN")


class HintingStore(MemoryEventStore):
    """A store that says another replica writes some topics (as a JetStream region's does
    once its replicas found they both publish a topic)."""

    def __init__(self) -> None:
        super().__init__()
        self.writers: dict[str, str] = {}

    def writer_of(self, topic: str) -> str | None:
        return self.writers.get(topic)


@contextlib.asynccontextmanager
async def replicas(tmp_path: Path, n: int = 2) -> AsyncIterator[list[Gateway]]:
    async with contextlib.AsyncExitStack() as stack:
        gateways = []
        for i in range(n):
            config = GatewayConfig(region="eu", data_dir=tmp_path / str(i), port=0)
            gateways.append(await stack.enter_async_context(Gateway(config, store=HintingStore())))
        yield gateways


def hints(gateway: Gateway) -> dict[str, str]:
    assert isinstance(gateway.store, HintingStore)
    return gateway.store.writers


async def stored(gateway: Gateway, topic: str) -> int:
    stats = await gateway.store.topic_stats(topic)
    return stats[0].event_count if stats else 0


def test_only_a_hint_naming_another_of_our_replicas_is_followed() -> None:
    ours = {"a:1", "b:1"}
    assert followed("b:1", "a:1", ours) == "b:1"
    assert followed(None, "a:1", ours) is None
    assert followed("a:1", "a:1", ours) is None  # it writes there already
    assert followed("evil:1", "a:1", ours) is None  # never an address we were not given


@pytest.mark.parametrize("publish_stream", [True, False])
async def test_a_gateway_client_keeps_the_writer_hint_of_each_answer(
    tmp_path: Path, publish_stream: bool
) -> None:
    async with (
        replicas(tmp_path, 1) as [a],
        GatewayClient(a.listen, publish_stream=publish_stream) as client,
    ):
        hints(a)["hot"] = "10.0.0.2:7000"
        await client.publish("hot", event(1))
        assert client.writer_hints == {"hot": "10.0.0.2:7000"}
        del hints(a)["hot"]
        await client.publish("hot", event(2))
        assert client.writer_hints == {}  # the last answer had none


async def test_publishes_follow_the_hint_to_the_writer_and_never_elsewhere(
    tmp_path: Path,
) -> None:
    async with replicas(tmp_path) as [a, b]:
        hints(a)["hot"] = b.listen  # a says b writes hot
        hints(a)["cold"] = hints(b)["cold"] = "evil.example:443"
        async with RegionClient([a.listen, b.listen]) as region:
            for i in range(6):
                await region.publish("hot", event(i))
            assert region.routes == {"hot": b.listen}
            assert await stored(a, "hot") == 1 and await stored(b, "hot") == 5
            for i in range(6):
                await region.publish("cold", event(i))
            assert "cold" not in region.routes  # a foreign hint: in turn, as before
            assert await stored(a, "cold") == await stored(b, "cold") == 3


async def test_a_writer_that_is_gone_is_dropped_and_the_publish_goes_to_the_next(
    tmp_path: Path,
) -> None:
    async with replicas(tmp_path) as [a, b]:
        hints(a)["hot"] = b.listen
        async with RegionClient([a.listen, b.listen], timeout=10) as region:
            await region.publish("hot", event(0))  # to a, which names b
            assert region.routes == {"hot": b.listen}
            await b.aclose()
            result = await region.publish("hot", event(1))  # b is gone: a takes it
            assert (result.offset, result.duplicate) == (1, False)
            assert await stored(a, "hot") == 2
        async with RegionClient([b.listen], timeout=10) as alone:
            with pytest.raises(grpc.aio.AioRpcError) as err:  # nowhere else to go
                await alone.publish("hot", event(2))
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_a_region_client_needs_a_replica() -> None:
    with pytest.raises(ValueError, match="at least one"):
        RegionClient([])
