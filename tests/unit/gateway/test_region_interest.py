"""region_interest: entries round-trip, liveness by ttl, the merge's union of readers' proofs."""

from __future__ import annotations

import pytest

from eventmodel.filters import Exact, Prefix
from federation.messages import MAX_PROOFS_PER_TOPIC
from gateway import region_interest as core
from gateway.interest import Interest, ReaderProof, Snapshot

TTL = 10.0
ORDERS = Interest("orders")
EU_ONLY = Interest("orders", (Exact("region", "eu"), Prefix("type", "order.")))


def proof(address: str, expires_at: float) -> ReaderProof:
    return ReaderProof(address, f"signed by {address}", bytes.fromhex("ab" * 65), expires_at)


def entry(replica: str, at: float, interests: Snapshot) -> core.ReplicaInterest:
    return core.decode(core.encode(replica, interests, at))


def test_an_entry_round_trips_with_filters_and_proofs() -> None:
    held: Snapshot = {ORDERS: (proof("0xa", 500.0),), EU_ONLY: ()}
    got = core.decode(core.encode("b-1", held, 100.0))
    assert got == core.ReplicaInterest("b-1", 100.0, held)


def test_equal_interest_encodes_to_equal_bytes_whatever_the_order() -> None:
    one: Snapshot = {ORDERS: (), EU_ONLY: ()}
    other: Snapshot = {EU_ONLY: (), ORDERS: ()}
    assert core.encode("b", one, 1.0) == core.encode("b", other, 1.0)


@pytest.mark.parametrize("raw", [b"{}", b"[]", b"not json", b'{"replica":"b","at":1}'])
def test_a_malformed_entry_is_a_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError):
        core.decode(raw)


def test_merge_is_the_union_of_own_and_live_entries() -> None:
    own: Snapshot = {ORDERS: (proof("0xa", 500.0),)}
    b = entry("b", 95.0, {EU_ONLY: (proof("0xb", 400.0),)})
    got = core.merge(own, [b], now=100.0, ttl=TTL)
    assert got == {ORDERS: (proof("0xa", 500.0),), EU_ONLY: (proof("0xb", 400.0),)}


def test_a_dead_replica_stops_counting_after_ttl() -> None:
    b = entry("b", 90.0, {ORDERS: ()})
    assert core.merge({}, [b], now=99.9, ttl=TTL) == {ORDERS: ()}
    assert core.merge({}, [b], now=100.0, ttl=TTL) == {}


def test_a_farewell_counts_for_nothing() -> None:
    assert core.merge({}, [entry("b", 0.0, {ORDERS: ()})], now=1.0, ttl=TTL) == {}


def test_proofs_merge_per_reader_latest_first_and_expired_dropped() -> None:
    own: Snapshot = {ORDERS: (proof("0xa", 200.0), proof("0xold", 50.0))}
    b = entry("b", 99.0, {ORDERS: (proof("0xa", 300.0), proof("0xc", 250.0))})
    got = core.merge(own, [b], now=100.0, ttl=TTL)
    assert got == {ORDERS: (proof("0xa", 300.0), proof("0xc", 250.0))}


def test_at_most_max_proofs_per_topic_the_latest_expiring() -> None:
    many = [
        entry(f"r{i}", 99.0, {ORDERS: (proof(f"0x{i}", 200.0 + i),)})
        for i in range(MAX_PROOFS_PER_TOPIC + 3)
    ]
    [kept] = core.merge({}, many, now=100.0, ttl=TTL).values()
    assert len(kept) == MAX_PROOFS_PER_TOPIC
    assert [p.expires_at for p in kept] == sorted((p.expires_at for p in kept), reverse=True)
    assert kept[0].address == f"0x{MAX_PROOFS_PER_TOPIC + 2}"


def test_next_change_is_the_earliest_entry_death_or_proof_expiry() -> None:
    b = entry("b", 95.0, {ORDERS: (proof("0xb", 103.0),)})
    c = entry("c", 99.0, {ORDERS: ()})
    dead = entry("d", 10.0, {ORDERS: (proof("0xd", 101.0),)})
    assert core.next_change([b, c, dead], now=100.0, ttl=TTL) == 103.0
    assert core.next_change([c], now=100.0, ttl=TTL) == 109.0
    assert core.next_change([dead], now=100.0, ttl=TTL) is None


def test_stale_names_entries_dead_for_longer_than_keep() -> None:
    entries = [entry("old", 10.0, {}), entry("recent", 95.0, {}), entry("gone", 0.0, {})]
    assert core.stale(entries, now=100.0, ttl=TTL, keep=50.0) == ["old", "gone"]
