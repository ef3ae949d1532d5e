from eventmodel.filters import Exact
from federation.messages import Interest, RegionInterest, TopicInterest
from federation.routing import MAX_DISTANCE, RoutingTable

ORDERS = (TopicInterest("orders"),)


def advert(version: int, *regions: tuple[str, int, tuple[TopicInterest, ...]]) -> Interest:
    return Interest(version, tuple(RegionInterest(r, d, t) for r, d, t in regions))


def test_prefers_shortest_then_smallest_next_hop() -> None:
    t = RoutingTable("aa")
    for p in ("bb", "cc", "dd"):
        t.peer_up(p)
    t.peer_advertised("cc", advert(1, ("cc", 0, ORDERS), ("ee", 1, ORDERS)))
    t.peer_advertised("bb", advert(1, ("bb", 0, ()), ("ee", 1, ORDERS), ("cc", 1, ORDERS)))
    assert t.route("cc").next_hop == "cc"  # type: ignore[union-attr]
    assert t.route("ee").next_hop == "bb"  # type: ignore[union-attr]  # tie -> smaller name
    assert t.route("ee").distance == 2  # type: ignore[union-attr]


def test_destinations_and_partition_by_next_hop() -> None:
    t = RoutingTable("aa")
    t.peer_up("bb")
    paid = (TopicInterest("orders", (Exact("type", "paid"),)),)
    t.peer_advertised("bb", advert(1, ("bb", 0, ()), ("cc", 1, ORDERS), ("dd", 1, paid)))
    assert t.destinations("orders", {"type": "new"}) == ("cc",)
    assert t.destinations("orders", {"type": "paid"}) == ("cc", "dd")
    assert t.destinations("orders", {"type": "paid"}, exclude=["cc"]) == ("dd",)
    assert t.partition(["cc", "dd", "zz"]) == {"bb": ("cc", "dd")}


def test_split_horizon_and_local_interest() -> None:
    t = RoutingTable("bb")
    t.set_local(ORDERS)
    t.peer_up("aa")
    t.peer_up("cc")
    t.peer_advertised("cc", advert(1, ("cc", 0, ORDERS)))
    to_cc = {r.region: r.distance for r in t.advertisement_for("cc")}
    to_aa = {r.region: r.distance for r in t.advertisement_for("aa")}
    assert to_cc == {"bb": 0}
    assert to_aa == {"bb": 0, "cc": 1}


def test_old_versions_ignored_and_far_routes_dropped() -> None:
    t = RoutingTable("aa")
    t.peer_up("bb")
    assert t.peer_advertised("bb", advert(5, ("bb", 0, ORDERS)))
    assert not t.peer_advertised("bb", advert(4, ("bb", 0, ())))
    assert t.route("bb").topics == ORDERS  # type: ignore[union-attr]
    t.peer_advertised("bb", advert(6, ("bb", 0, ORDERS), ("zz", MAX_DISTANCE, ORDERS)))
    assert t.route("zz") is None


def test_lost_route_is_remembered_through_a_relinked_peer() -> None:
    t = RoutingTable("aa")
    t.peer_up("bb")
    t.peer_advertised("bb", advert(1, ("bb", 0, ()), ("cc", 1, ORDERS)))
    t.peer_down("bb")
    assert t.route("cc") is None  # no linked peer to send through
    t.peer_up("bb")  # bb restarted: linked, has not relearnt cc yet
    stale = t.route("cc")
    assert stale is not None and stale.stale and stale.next_hop == "bb"
    assert t.destinations("orders", {}) == ("cc",)
    t.peer_advertised("bb", advert(2, ("bb", 0, ()), ("cc", 1, ORDERS)))
    assert not t.route("cc").stale  # type: ignore[union-attr]
