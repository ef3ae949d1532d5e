"""InterestRegistry: reference counts, durable interest, change notification."""

from __future__ import annotations

import asyncio

from gateway.filters import Exact
from gateway.interest import Interest, InterestRegistry


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
    reg.add_durable(g)
    reg.add(g)
    reg.remove(g)
    assert reg.topics() == {"orders"}
