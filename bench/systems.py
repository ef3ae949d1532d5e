"""Systems under test, as the runner sees them: a name, and a fresh `Target` per run.

`skip_reason` says plainly why a family cannot be measured on a system (a layer not built
yet, or a workload that has no meaning there); the report prints it instead of a figure.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol

from bench.drivers import Target
from bench.families import WINDOW, Family
from bench.nats_cluster import NatsSuperCluster
from bench.nats_workloads import core_target, jetstream_target

NO_ACCESS_CONTROL = "meshgate-only row (the cost of access control); NATS runs without auth"
NO_HTTP_INGRESS = "meshgate-only row (its CloudEvents HTTP edge); NATS has no HTTP ingress"
NO_PROVENANCE = "meshgate-only row (provenance off: its baseline); NATS has no publisher signatures"


class System(Protocol):
    name: str

    def skip_reason(self, family: Family) -> str | None: ...

    def target(self, family: Family) -> AbstractAsyncContextManager[Target]: ...


class JetStreamSystem:
    name = "NATS JetStream"

    def __init__(self, cluster: NatsSuperCluster) -> None:
        self.cluster = cluster

    def skip_reason(self, family: Family) -> str | None:
        if family.signed:
            return NO_ACCESS_CONTROL
        if family.http:
            return NO_HTTP_INGRESS
        if family.open_mesh:
            return NO_PROVENANCE
        return None

    def target(self, family: Family) -> AbstractAsyncContextManager[Target]:
        return jetstream_target(self.cluster, cross_region=family.cross_region, window=WINDOW)


class CoreNatsSystem:
    name = "core NATS"

    def __init__(self, cluster: NatsSuperCluster) -> None:
        self.cluster = cluster

    def skip_reason(self, family: Family) -> str | None:
        if family.persisted_only:
            return "core NATS persists nothing"
        if family.signed:
            return NO_ACCESS_CONTROL
        if family.http:
            return NO_HTTP_INGRESS
        if family.open_mesh:
            return NO_PROVENANCE
        return None

    def target(self, family: Family) -> AbstractAsyncContextManager[Target]:
        return core_target(self.cluster, cross_region=family.cross_region)
