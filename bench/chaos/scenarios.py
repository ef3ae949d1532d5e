"""The fault scenarios: a topology, where the publisher and the consumers sit, and a fault.

Each fault is a coroutine over a `Run`; it waits on conditions (so many events acknowledged),
breaks something for real (SIGKILL of a process group, a proxy cutting peer links, Ganache
killed, a full tmpfs), undoes it and marks the heal, which starts the catch-up clock.

| name                | topology        | publish | witness | fault                            |
|---------------------|-----------------|---------|---------|----------------------------------|
| kill-gateway-loop   | aa alone        | aa      | aa      | kill -9 aa, restart; `kills` x   |
| kill-origin         | aa - bb         | aa      | bb      | kill -9 aa, restart              |
| kill-consumer       | aa - bb         | aa      | bb      | kill -9 bb, `down_s`, restart    |
| kill-relay          | aa - bb - cc    | aa      | cc      | kill -9 relay bb (line, no mesh) |
| partition-reset     | aa - bb proxied | aa      | bb      | proxies reset, `partition_s`     |
| partition-blackhole | aa - bb proxied | aa      | bb      | proxies blackhole, `partition_s` |
| chain-restart       | aa - bb         | aa      | bb      | kill -9 Ganache, restart (its db)|
| revoke-under-load   | aa - bb         | aa      | bb      | revoke a second reader in bb     |
| full-disk           | aa on a tmpfs   | aa      | aa      | fill the disk, then free it      |
"""

from __future__ import annotations

import asyncio
import errno
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench.chaos.cluster import RegionSpec, kill9_chain
from bench.chaos.proxy import Mode

if TYPE_CHECKING:
    from bench.chaos.runner import Run

SINGLE = (RegionSpec(name="aa", federated=False),)
PAIR = (RegionSpec(name="aa"), RegionSpec(name="bb", seeds=("aa",)))
LINE = (
    RegionSpec(name="bb", mesh=False),
    RegionSpec(name="aa", seeds=("bb",), mesh=False),
    RegionSpec(name="cc", seeds=("bb",), mesh=False),
)


@dataclass(frozen=True, kw_only=True)
class Scenario:
    name: str
    what: str  # one line for the report
    regions: tuple[RegionSpec, ...]
    fault: Callable[[Run], Awaitable[None]]
    publish_at: str = "aa"
    witnesses: tuple[str, ...] = ("bb",)
    proxied: bool = False
    own_chain: bool = False  # the chain is killed: never share it
    revokee_at: str | None = None
    disk_region: str | None = None  # that region's data dir is a small tmpfs


def _kill_loop(
    region: str, kills: Callable[[Run], int], *, stay_down: bool = False
) -> Callable[[Run], Awaitable[None]]:
    """kill -9 `region` and restart it, `kills` times; `stay_down`: down for `down_s` first
    (longer than the peers' `stale_after`, 5 s, while the publisher keeps publishing)."""

    async def fault(run: Run) -> None:
        n = kills(run)
        for k in range(n):
            await run.wait_acked(run.params.events * (k + 1) // (n + 1))
            await run.cluster.kill9(region)
            run.mark("killed", region)
            if stay_down:
                await asyncio.sleep(run.params.down_s)  # the outage's length, not a wait
            await run.cluster.restart(region)
            run.heal()

    return fault


def _partition(mode: Mode) -> Callable[[Run], Awaitable[None]]:
    async def fault(run: Run) -> None:
        await run.wait_acked(run.params.events // 3)
        for proxy in run.cluster.proxies.values():
            proxy.set_mode(mode)
        before = len(run.history.delivered)
        run.mark(f"partition {mode}", f"all peer links ({_proxy_stats(run)})")
        await asyncio.sleep(run.params.partition_s)  # the fault's length, not a wait
        during = len(run.history.delivered) - before
        for proxy in run.cluster.proxies.values():
            proxy.set_mode("pass")
        run.mark("deliveries during the partition", f"{during} (in flight before it)")
        run.heal()

    return fault


def _proxy_stats(run: Run) -> str:
    return "; ".join(
        f"{name}: {p.stats.connections} connections, {p.stats.bytes_forwarded >> 10} KiB"
        for name, p in run.cluster.proxies.items()
    )


async def _chain_restart(run: Run) -> None:
    chain = run.cluster.handle.chain
    await run.wait_acked(run.params.events // 3)
    await asyncio.to_thread(kill9_chain, chain)
    run.mark("killed", "chain")
    await asyncio.sleep(run.params.chain_down_s)  # the outage's length, not a wait
    await asyncio.to_thread(chain.restart)
    run.heal()


async def _revoke(run: Run) -> None:
    await run.wait_acked(run.params.events // 3)
    run.revoke_sent = True
    block = await run.cluster.revoke(run.topic)
    sent = time.monotonic()
    applied = await run.wait_refused(timeout=60)
    run.history.revoke_applied[run.revokee_name] = applied
    run.mark("revoked", f"block {block}, refused {1000 * (applied - sent):.0f} ms after mined")
    got = [d.at for d in run.history.delivered if d.consumer == run.revokee_name]
    run.mark(
        "revoked reader's deliveries",
        f"{len(got)} in all, {sum(1 for t in got if t > sent)} after the revoke was mined "
        "(before its gateway applied it)",
    )


def fill(path: Path, chunk: int = 1 << 20) -> int:
    """Write `path` until the filesystem is full; returns the bytes written."""
    written = 0
    block = b"\0" * chunk
    with path.open("wb", buffering=0) as f:
        while chunk >= 512:
            try:
                written += f.write(block[:chunk])
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                chunk //= 2
    return written


async def _full_disk(run: Run) -> None:
    region = "aa"
    mount = run.cluster.data_dirs[region]
    ballast = mount / "ballast"
    await run.wait_acked(run.params.events // 4)
    errors_before = sum(run.history.publish_errors.values())
    size = await asyncio.to_thread(fill, ballast)
    run.mark("disk full", f"{size >> 10} KiB ballast")
    try:
        await run.wait_for(
            lambda: sum(run.history.publish_errors.values()) >= errors_before + 3
            or not run.cluster.gateways[region].running(),
            timeout=60, what="publishes to fail on the full disk",
        )  # fmt: skip
        await asyncio.sleep(run.params.full_hold_s)  # keep the disk full a while, not a wait
    finally:
        ballast.unlink()
    freed = time.monotonic()
    gw = run.cluster.gateways[region]
    if not gw.running():
        run.mark("gateway exited on the full disk", f"rc={gw.proc and gw.proc.poll()}")
        await run.cluster.restart(region)
    run.heal()
    if not await _publishes_again(run):
        bound = run.params.recovery_timeout
        run.history.failures.append(f"publishes did not recover within {bound:.0f}s of space")
        run.mark("no recovery", f"{bound:.0f}s after space returned: restarting the gateway")
        await asyncio.to_thread(gw.stop, 15.0)
        await run.cluster.restart(region)
        run.heal()
        if not await _publishes_again(run):
            raise TimeoutError("publishes did not recover even after a gateway restart")
    run.mark("publishing again", f"{1000 * (time.monotonic() - freed):.0f} ms after space returned")


async def _publishes_again(run: Run) -> bool:
    acked = len(run.history.acked)
    try:
        await run.wait_for(
            lambda: len(run.history.acked) > acked, timeout=run.params.recovery_timeout,
            what="a publish to be acknowledged after space returned",
        )  # fmt: skip
    except TimeoutError:
        return False
    return True


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        name="kill-gateway-loop", what="kill -9 of the only gateway, restarted, in a loop",
        regions=SINGLE, witnesses=("aa",), fault=_kill_loop("aa", lambda r: r.params.kills),
    ),
    Scenario(
        name="kill-origin", what="kill -9 of the origin region (publisher's gateway)",
        regions=PAIR, fault=_kill_loop("aa", lambda r: 1),
    ),
    Scenario(
        name="kill-consumer", what="kill -9 of the consumer's region, down `down_s`",
        regions=PAIR, fault=_kill_loop("bb", lambda r: 1, stay_down=True),
    ),
    Scenario(
        name="kill-relay", what="kill -9 of the relay on a line aa - bb - cc (no mesh)",
        regions=LINE, witnesses=("cc",), fault=_kill_loop("bb", lambda r: 1),
    ),
    Scenario(
        name="partition-reset", what="peer links reset by a TCP proxy, healed",
        regions=PAIR, proxied=True, fault=_partition("reset"),
    ),
    Scenario(
        name="partition-blackhole", what="peer links blackholed by a TCP proxy, healed",
        regions=PAIR, proxied=True, fault=_partition("blackhole"),
    ),
    Scenario(
        name="chain-restart", what="kill -9 of the chain node, restarted on its database",
        regions=PAIR, own_chain=True, fault=_chain_restart,
    ),
    Scenario(
        name="revoke-under-load", what="a reader revoked while events flow (a witness stays)",
        regions=PAIR, revokee_at="bb", fault=_revoke,
    ),
    Scenario(
        name="full-disk", what="the gateway's data dir (tmpfs) filled, then space freed",
        regions=SINGLE, witnesses=("aa",), disk_region="aa", fault=_full_disk,
    ),
)  # fmt: skip
BY_NAME = {s.name: s for s in SCENARIOS}
