"""InterestRegistry: reference counts, durable interest, change notification."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from eventmodel.filters import Exact
from gateway.access import ANONYMOUS, Identity
from gateway.interest import Interest, InterestRegistry, ReaderProof
from gateway.interest_file import ProofFile


async def test_add_remove_notifies_only_on_change() -> None:
    reg = InterestRegistry()
    a = Interest("orders", (Exact("type", "x"),))
    waiter = asyncio.create_task(reg.wait_changed(reg.version))
    reg.add(a)
    assert await asyncio.wait_for(waiter, 10) == 1
    reg.add(a)  # second stream, same interest: no change
    assert reg.version == 1
    reg.remove(a)
    assert reg.snapshot() == {a}
    reg.remove(a)
    assert reg.snapshot() == frozenset()
    assert reg.version == 2


async def test_durable_interest_outlives_streams() -> None:
    reg = InterestRegistry()
    g = Interest("orders")
    reg.add_durable(g, Identity("0xalice"))
    reg.add(g)
    reg.remove(g)
    assert reg.topics() == {"orders"}


async def test_durable_interest_is_withdrawn_when_every_reader_lost_access() -> None:
    allowed = {"0xalice", "0xbob"}
    reg = InterestRegistry(may_read=lambda reader, topic: reader.address in allowed)
    g = Interest("orders")
    reg.add_durable(g, Identity("0xalice"))
    reg.add_durable(g, Identity("0xbob"))
    assert reg.topics() == {"orders"}
    version = reg.version

    allowed.discard("0xalice")
    reg.reevaluate()  # the access view changed: Bob still reads, the interest stays
    assert reg.topics() == {"orders"} and reg.version == version

    allowed.discard("0xbob")
    waiter = asyncio.create_task(reg.wait_changed(version))
    reg.reevaluate()
    assert await asyncio.wait_for(waiter, 10) == version + 1
    assert reg.topics() == frozenset()

    allowed.add("0xbob")  # granted again: the group attracts the topic again
    reg.reevaluate()
    assert reg.topics() == {"orders"}


async def test_group_loaded_at_start_attracts_nothing_until_a_granted_reader_subscribes() -> None:
    allowed: set[str] = set()
    reg = InterestRegistry(may_read=lambda reader, topic: reader.address in allowed)
    reg.add_durable(Interest("orders"), ANONYMOUS)  # from the store after a restart
    assert reg.topics() == frozenset()
    reg.add_durable(Interest("orders"), Identity("0xcarol"))  # a denied reader shows up
    assert reg.topics() == frozenset()
    allowed.add("0xdave")
    reg.add_durable(Interest("orders"), Identity("0xdave"))  # a granted one subscribes
    assert reg.topics() == {"orders"}


def test_readers_are_kept_by_address_not_per_stream() -> None:
    from gateway.registry_access import SignedInIdentity

    reg = InterestRegistry()
    for serial in range(100):
        reg.add_durable(Interest("orders"), SignedInIdentity("0xalice", serial=serial))
    assert reg._durable[Interest("orders")] == {Identity("0xalice")}


def test_group_loaded_at_start_on_an_open_gateway_attracts_as_before() -> None:
    reg = InterestRegistry()  # open access: anyone, the anonymous reader too, may read
    reg.add_durable(Interest("orders"), ANONYMOUS)
    assert reg.topics() == {"orders"}


class MemoryProofs:
    """DurableProofs in memory (ProofFile's contract: load what was last saved)."""

    def __init__(self) -> None:
        self.entries: list[tuple[Interest, ReaderProof]] = []

    def load(self) -> list[tuple[Interest, ReaderProof]]:
        return list(self.entries)

    def save(self, entries: Sequence[tuple[Interest, ReaderProof]]) -> None:
        self.entries = list(entries)


def test_a_durable_groups_proofs_outlive_a_restart_while_the_reader_may_read() -> None:
    allowed, now, store = {"0xa"}, [100.0], MemoryProofs()

    def registry() -> InterestRegistry:
        return InterestRegistry(
            may_read=lambda r, t: r.address in allowed, clock=lambda: now[0], durable_proofs=store
        )

    g, proof = Interest("orders"), ReaderProof("0xa", "signed", b"sig", 200.0)
    registry().add_durable(g, Identity("0xa"), proof)
    assert store.entries == [(g, proof)]
    restarted = registry()
    restarted.restore_durable(g)
    assert restarted.proven() == {g: (proof,)}  # attracts again: events sent meanwhile come
    allowed.clear()  # revoked before the restart: the restored group attracts nothing
    revoked = registry()
    revoked.restore_durable(g)
    assert revoked.topics() == frozenset()
    allowed.add("0xa")
    now[0] = 300.0  # the proof expired while the gateway was down: nothing either
    late = registry()
    late.restore_durable(g)
    assert late.topics() == frozenset()


def test_proof_file_round_trip_and_a_corrupt_file_is_empty(tmp_path: Path) -> None:
    f = ProofFile(tmp_path / "interest_proofs.json")
    assert f.load() == []
    entry = (Interest("orders", (Exact("type", "x"),)), ReaderProof("0xa", "m", b"\x01", 5.0))
    f.save([entry])
    assert ProofFile(f.path).load() == [entry]
    f.path.write_text("{not json")
    assert f.load() == []
