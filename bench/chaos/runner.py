"""Run one scenario once: build the cluster, start the clients, apply the fault, judge.

Order: chain (shared or the scenario's own) -> tmpfs (full disk) -> gateways -> topic and
grants -> consumers -> warm-up probes -> publisher and fault together -> bounded wait until
every witness holds every acknowledged event -> consumers cancelled -> verdict.

Every wait is bounded (`Params.catch_up_timeout` for the end, explicit timeouts elsewhere);
every process is stopped in a `finally` by its process group (Cluster, DevChain).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.chaos import workload
from bench.chaos.checker import Verdict, judge
from bench.chaos.cluster import ChainHandle, Cluster, start_chain
from bench.chaos.disk import tmpfs
from bench.chaos.history import History
from bench.chaos.scenarios import Scenario
from meshgate.client import GatewayClient


@dataclass(frozen=True, kw_only=True)
class Params:
    events: int
    batch: int = 10
    rate: float  # events/s offered
    kills: int
    partition_s: float
    chain_down_s: float
    full_hold_s: float
    down_s: float = 7.0  # s the consumer's region stays down (> the peers' stale_after, 5 s)
    pad: int = 256  # bytes of padding per event
    catch_up_timeout: float = 120.0
    recovery_timeout: float = 60.0  # s for publishes to succeed again after a full disk


QUICK = Params(events=300, rate=300, kills=2, partition_s=3, chain_down_s=1, full_hold_s=1,
               catch_up_timeout=30, recovery_timeout=10)  # fmt: skip
FULL = Params(events=6000, rate=400, kills=5, partition_s=15, chain_down_s=10, full_hold_s=3)


@dataclass(frozen=True, kw_only=True)
class Outcome:
    scenario: str
    verdict: Verdict | None
    seconds: float
    publish_errors: dict[str, int]
    stream_ends: dict[str, int]
    unacked: int
    marks: list[str]
    error: str | None = None


@dataclass
class Run:
    """What a fault step may use and record."""

    scenario: Scenario
    params: Params
    cluster: Cluster
    history: History
    topic: str = ""
    revoke_sent: bool = False
    revokee_name: str = ""
    probe: GatewayClient | None = None
    started: float = field(default_factory=time.monotonic)
    marks: list[str] = field(default_factory=list)

    def mark(self, what: str, detail: str) -> None:
        self.marks.append(f"{time.monotonic() - self.started:6.2f}s {what}: {detail}")

    def heal(self) -> None:
        self.history.heals.append(time.monotonic())
        self.mark("healed", f"{len(self.history.acked)} acknowledged so far")

    async def wait_for(self, predicate: Callable[[], bool], *, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
            await asyncio.sleep(0.02)

    async def wait_acked(self, n: int) -> None:
        await self.wait_for(lambda: len(self.history.acked) >= n, timeout=120,
                            what=f"{n} acknowledged events")  # fmt: skip

    async def wait_refused(self, *, timeout: float) -> float:
        assert self.probe is not None
        return await workload.wait_refused(self.probe, self.topic, timeout)


async def run_once(
    scenario: Scenario, params: Params, work: Path, shared: ChainHandle | None = None
) -> Outcome:
    """One run; never raises for a failure of the system under test (it is the outcome)."""
    history = History()
    started = time.monotonic()
    run: Run | None = None
    try:
        async with contextlib.AsyncExitStack() as stack:
            handle = shared
            if handle is None or scenario.own_chain:
                handle = await asyncio.to_thread(start_chain, work / "chain")
                stack.callback(handle.chain.stop)
            data_dirs = {}
            if scenario.disk_region is not None:
                mount = stack.enter_context(tmpfs(work / f"disk-{scenario.disk_region}"))
                data_dirs[scenario.disk_region] = mount
            cluster = Cluster(work, handle, proxied=scenario.proxied)
            await stack.enter_async_context(cluster)
            run = Run(scenario, params, cluster, history, started=started)
            await cluster.start(scenario.regions, data_dirs)
            await _drive(run, stack)
    except Exception as exc:  # a scenario that could not finish is reported, not hidden
        error = _one_line(exc)
        traceback.print_exc()
        if run is not None:
            run.marks += run.cluster.log_tails()
        return Outcome(
            scenario=scenario.name, verdict=None, seconds=time.monotonic() - started,
            publish_errors=dict(history.publish_errors), stream_ends=dict(history.stream_ends),
            unacked=history.unacked, marks=run.marks if run else [], error=error,
        )  # fmt: skip
    return Outcome(
        scenario=scenario.name, verdict=judge(history), seconds=time.monotonic() - started,
        publish_errors=dict(history.publish_errors), stream_ends=dict(history.stream_ends),
        unacked=history.unacked, marks=run.marks,
    )  # fmt: skip


async def _drive(run: Run, stack: contextlib.AsyncExitStack) -> None:
    scenario, cluster, history, params = run.scenario, run.cluster, run.history, run.params
    run.mark("gateways up", ", ".join(cluster.gateways))
    run.topic = await cluster.open_topic(revokee=scenario.revokee_at is not None)
    run.mark("topic open", run.topic)
    topic = run.topic

    async def client(region: str, signer: object) -> GatewayClient:
        c = workload.client_for(cluster.listen(region), signer, topic)
        return await stack.enter_async_context(c)

    pub_client = await client(scenario.publish_at, cluster.publisher)
    publisher = workload.Publisher(
        pub_client, topic, history, events=params.events, batch=params.batch,
        rate=params.rate, pad=params.pad,
    )  # fmt: skip
    history.witnesses = [f"{r}/witness" for r in scenario.witnesses]
    async with asyncio.TaskGroup() as tg:
        consumers = []
        for region in scenario.witnesses:
            c = await client(region, cluster.reader)
            consumers.append(tg.create_task(
                workload.consume(c, topic, f"w-{topic}", f"{region}/witness", history)
            ))  # fmt: skip
        if scenario.revokee_at is not None:
            run.revokee_name = f"{scenario.revokee_at}/revoked"
            c = await client(scenario.revokee_at, cluster.revokee)
            run.probe = await client(scenario.revokee_at, cluster.revokee)
            consumers.append(tg.create_task(workload.consume(
                c, topic, f"r-{topic}", run.revokee_name, history,
                denied_is_final=lambda: run.revoke_sent,
            )))  # fmt: skip
        try:
            await workload.warm_up(pub_client, topic, history, history.witnesses, timeout=60)
            setup = time.monotonic() - run.started
            run.started = time.monotonic()
            run.mark("warm", f"every witness receives ({setup:.1f}s of set-up); publishing")
            fault_done = asyncio.Event()
            fault = tg.create_task(_fault(run, fault_done))
            await publisher.run(fault_done)
            run.mark("published", f"{len(history.acked)} acknowledged")
            await fault
            try:
                await run.wait_for(history.caught_up, timeout=params.catch_up_timeout,
                                   what="every acknowledged event at every witness")  # fmt: skip
                run.mark("caught up", "every witness has every acknowledged event")
            except TimeoutError as exc:
                run.mark("gave up", str(exc))  # the verdict counts what is missing as LOST
        finally:
            for task in consumers:
                task.cancel()


async def _fault(run: Run, done: asyncio.Event) -> None:
    try:
        await run.scenario.fault(run)
    finally:
        done.set()


def _one_line(exc: BaseException) -> str:
    """The innermost first error of a (nested) exception group, in one line."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if len(lines) < 2 else f"{lines[0]} ... {lines[-1]}"  # a log tail's last
    return f"{type(exc).__name__}: {text}"
