"""DataPath with a real RoutingTable: a peer whose interest vanished and came back is resent
what was withheld, and its persisted cursor is held until then (federation/catch_up.py)."""

from __future__ import annotations

import pytest

from federation.codec import canonical_event
from federation.config import PeerConfig
from federation.datapath import DataPath
from federation.errors import ReadRewind
from federation.messages import Interest, RegionInterest, TopicInterest
from federation.metrics import FederationMetrics
from federation.ports import LogRecord
from federation.routing import RoutingTable
from proto import cloudevents_pb2
from tests.support.federation_fakes import MemoryCursors, MemoryLog

SEED = bytes(range(32))


def record(seq: int, topic: str = "orders") -> LogRecord:
    raw = canonical_event(
        cloudevents_pb2.CloudEvent(id=f"e{seq}", source="/s", spec_version="1.0", type="t")
    )
    return LogRecord(seq, topic, raw, {"id": f"e{seq}", "type": "t"}, None)


def advertise(routing: RoutingTable, version: int, *topics: str) -> None:
    interest = tuple(TopicInterest(t) for t in topics)
    routing.peer_advertised("bb", Interest(version, (RegionInterest("bb", 0, interest),)))


async def test_a_peer_whose_interest_came_back_is_resent_what_was_withheld() -> None:
    routing, cursors = RoutingTable("aa"), MemoryCursors()
    data = DataPath(
        config=PeerConfig(region="aa"),
        log_port=MemoryLog(),
        cursors=cursors,
        routing=routing,
        metrics=FederationMetrics(),
        signing_seed=SEED,
        keys={},
    )
    routing.peer_up("bb")
    advertise(routing, 1, "orders", "other")
    sent = data.outbound("bb", [record(1), record(2)], "link-1")
    assert [e.origin_offset for e in sent] == [1, 2]
    await data.save_cursor("bb", 2, "link-1")

    # bb restarts: its reader is not back, it advertises "other" only
    routing.peer_down("bb")
    data.link_gone("link-1")
    routing.peer_up("bb")
    advertise(routing, 2, "other")
    records = [record(3), record(4, "other"), record(5)]
    assert [e.origin_offset for e in data.outbound("bb", records, "link-2")] == [4]
    await data.save_cursor("bb", 5, "link-2")
    assert cursors.cursors["bb"] == 2  # held where "orders" stopped being routed

    advertise(routing, 3, "orders", "other")  # the reader is back
    with pytest.raises(ReadRewind):
        data.outbound("bb", [], "link-2")  # even with nothing new to read
    data.link_gone("link-2")

    records = [record(3), record(4, "other"), record(5), record(6)]  # from the held cursor
    resent = data.outbound("bb", records, "link-3")
    assert [e.origin_offset for e in resent] == [3, 5, 6]  # 4 ("other") was acked already
    await data.save_cursor("bb", 6, "link-3")
    assert cursors.cursors["bb"] == 6
