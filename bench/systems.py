"""Systems under test, as the runner sees them: a name, a fresh `Target` per run, and the pids
whose CPU and memory a run reports.

Compared families run on the four systems of `COMPARED`, paired at equal durability by
`PAIRS`; meshgate-only families run on `MESHGATE_FSYNC` alone. Core NATS (at-most-once,
nothing stored) is an opt-in ceiling (`bench.run --core`).

`skip_reason` says plainly why a family cannot be measured on a system; `unavailable` is set
when a whole system cannot run (e.g. meshgate `os` before the gateway has `--durability`),
and the report prints it in every cell of that system.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol

from bench.drivers import Target
from bench.families import WINDOW, Family
from bench.nats_cluster import NatsSuperCluster
from bench.nats_workloads import core_target, jetstream_target

MESHGATE_FSYNC = "meshgate fsync"
MESHGATE_OS = "meshgate os"
JETSTREAM_ALWAYS = "JetStream always"
JETSTREAM_DEFAULT = "JetStream default"
CORE_NATS = "core NATS"
COMPARED = (MESHGATE_FSYNC, JETSTREAM_ALWAYS, MESHGATE_OS, JETSTREAM_DEFAULT)
# (meshgate, JetStream) at equal durability: answer after fsync; answer once in the OS
PAIRS = ((MESHGATE_FSYNC, JETSTREAM_ALWAYS), (MESHGATE_OS, JETSTREAM_DEFAULT))


class System(Protocol):
    name: str
    unavailable: str | None

    def skip_reason(self, family: Family) -> str | None: ...

    def target(self, family: Family) -> AbstractAsyncContextManager[Target]: ...

    def processes(self, family: Family) -> dict[str, int]: ...


def _nats_processes(cluster: NatsSuperCluster, family: Family) -> dict[str, int]:
    regions = ("east", "west") if family.cross_region else ("east",)
    return {f"nats {r}": cluster.pid(r) for r in regions}


class JetStreamSystem:
    def __init__(self, cluster: NatsSuperCluster, *, name: str) -> None:
        self.cluster = cluster
        self.name = name
        self.unavailable: str | None = None

    def skip_reason(self, family: Family) -> str | None:
        return None if family.compare else "meshgate-only row"

    def target(self, family: Family) -> AbstractAsyncContextManager[Target]:
        return jetstream_target(self.cluster, cross_region=family.cross_region, window=WINDOW)

    def processes(self, family: Family) -> dict[str, int]:
        return _nats_processes(self.cluster, family)


class CoreNatsSystem:
    name = CORE_NATS

    def __init__(self, cluster: NatsSuperCluster) -> None:
        self.cluster = cluster
        self.unavailable: str | None = None

    def skip_reason(self, family: Family) -> str | None:
        if not family.compare:
            return "meshgate-only row"
        if family.persisted_only:
            return "core NATS persists nothing"
        return None

    def target(self, family: Family) -> AbstractAsyncContextManager[Target]:
        return core_target(self.cluster, cross_region=family.cross_region)

    def processes(self, family: Family) -> dict[str, int]:
        return _nats_processes(self.cluster, family)
