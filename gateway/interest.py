"""Local subscription interest: what this gateway's consumers want, for federation to advertise.

An `Interest` is (topic, filters). Open subscriptions that passed `check_subscribe` register
here while they stream; a revoke or an expiry ends them, and with them their interest.

Durable groups register too, and stay registered while the gateway runs (they will read
later), but only while they are *authorized*: the registry remembers which readers used each
group since this gateway started, and a group's interest counts only while at least one of
them may still read the topic (`may_read`, asked again on every `reevaluate()`, i.e.
whenever the access view changes). A group loaded from the store at start-up knows only the
anonymous reader (gateway/hub.py): on an open gateway it attracts as before; on a registry
gateway it attracts nothing until a granted reader subscribes to it again (a restart must not
revive the interest of a group whose only reader was revoked). With a `DurableProofs` store
(gateway/interest_file.py) the latest proof of each reader of a durable group is kept across
restarts: a restored group attracts again while one of those readers may still read and its
proof has not expired, so events published while this gateway was down still come; once the
proofs expired, nothing until a granted reader subscribes again.

Interest proofs: a reader whose sign-in names this region (`policy.identity`, the session's
`proof`) leaves that signed statement here. Each interest is advertised with the proofs of its
readers that are unexpired and may still read the topic, the latest-expiring
`MAX_PROOFS_PER_TOPIC` of them (one per reader), so other gateways can check them against
the chain. A proof outlives the stream that brought it until it expires: the reader signed
that this region may attract the topic until then. At most `MAX_READERS` proofs are kept per
interest (the earliest-expiring are dropped).

Each change bumps `version` and wakes `wait_changed` callers, so the federation layer can
re-advertise without polling; `next_expiry()` says when a proof runs out (re-evaluate then).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from eventmodel.filters import Filter
from federation.messages import MAX_PROOFS_PER_TOPIC
from gateway.access import Identity

# (reader, topic) -> may that reader still read that topic? Pure and cheap; no audit.
MayRead = Callable[[Identity, str], bool]
MAX_READERS = 64


@dataclass(frozen=True, slots=True)
class Interest:
    topic: str
    filters: tuple[Filter, ...] = ()  # empty = every event of the topic


@dataclass(frozen=True, slots=True)
class ReaderProof:
    """A reader's signed sign-in naming this region, as forwarded (see policy.identity)."""

    address: str
    message: str
    signature: bytes
    expires_at: float


def reader_proof(reader: Identity | None) -> ReaderProof | None:
    """The interest proof a signed-in reader carries (gateway.registry_access), if any."""
    statement = getattr(reader, "proof", None)
    if reader is None or reader.address is None or statement is None:
        return None
    expires_at = float(getattr(reader, "expires_at", 0.0))
    return ReaderProof(reader.address, statement.message, statement.signature, expires_at)


def _anyone(reader: Identity, topic: str) -> bool:
    return True


Snapshot = dict[Interest, tuple[ReaderProof, ...]]


class DurableProofs(Protocol):
    """Where durable groups' reader proofs outlive a restart (gateway/interest_file.py)."""

    def load(self) -> Sequence[tuple[Interest, ReaderProof]]: ...

    def save(self, entries: Sequence[tuple[Interest, ReaderProof]]) -> None: ...


class InterestRegistry:
    def __init__(
        self,
        may_read: MayRead = _anyone,
        clock: Callable[[], float] = time.time,
        durable_proofs: DurableProofs | None = None,
    ) -> None:
        self._counts: Counter[Interest] = Counter()
        self._durable: dict[Interest, set[Identity]] = {}  # interest -> readers since start
        self._proofs: dict[Interest, dict[str, ReaderProof]] = {}  # interest -> address -> proof
        self._may_read = may_read
        self._clock = clock
        self._store = durable_proofs
        self._restored: dict[Interest, list[ReaderProof]] | None = None
        self._published: frozenset[tuple[Interest, tuple[ReaderProof, ...]]] = frozenset()
        self._version = 0
        self._changed = asyncio.Event()
        self._pulses = 0  # reevaluate() calls: federation re-judges remote interest on each
        self._pulsed = asyncio.Event()

    @property
    def pulses(self) -> int:
        return self._pulses

    async def wait_pulse(self, seen: int, timeout: float | None) -> int:
        """Return the pulse count once it differs from `seen`, or after `timeout` seconds."""
        if self._pulses == seen:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._pulsed.wait()
        return self._pulses

    @property
    def version(self) -> int:
        return self._version

    def proven(self) -> Snapshot:
        """Every interest currently held, each with its live proofs (latest-expiring first)."""
        now = self._clock()
        held = set(self._counts) | {
            interest
            for interest, readers in self._durable.items()
            if any(self._may_read(r, interest.topic) for r in readers)
        }
        out: Snapshot = {}
        for interest in held:
            live = [
                p
                for p in self._proofs.get(interest, {}).values()
                if p.expires_at > now and self._may_read(Identity(p.address), interest.topic)
            ]
            live.sort(key=lambda p: (-p.expires_at, p.address))
            out[interest] = tuple(live[:MAX_PROOFS_PER_TOPIC])
        return out

    def snapshot(self) -> frozenset[Interest]:
        """Every interest currently held: open streams, and durable groups still authorized."""
        return frozenset(self.proven())

    def topics(self) -> frozenset[str]:
        return frozenset(i.topic for i in self.snapshot())

    def next_expiry(self) -> float | None:
        """When the earliest kept proof expires (unix s); None when none is kept."""
        times = [p.expires_at for ps in self._proofs.values() for p in ps.values()]
        return min(times) if times else None

    def add(self, interest: Interest, proof: ReaderProof | None = None) -> None:
        self._counts[interest] += 1
        self._keep(interest, proof)
        self.reevaluate()

    def remove(self, interest: Interest) -> None:
        self._counts[interest] -= 1
        if self._counts[interest] <= 0:
            del self._counts[interest]
        self.reevaluate()

    def add_durable(
        self, interest: Interest, reader: Identity | None = None, proof: ReaderProof | None = None
    ) -> None:
        """A durable group's interest; `reader` has just subscribed to it (None: no reader)."""
        readers = self._durable.setdefault(interest, set())
        if reader is not None:
            readers.add(Identity(reader.address))  # by address: not one entry per stream
        if self._keep(interest, proof) and reader is not None and self._store is not None:
            self._store.save(self._durable_proofs())
        self.reevaluate()

    def restore_durable(self, interest: Interest) -> None:
        """A durable group loaded at start: its kept readers' unexpired proofs count again."""
        if self._restored is None:
            self._restored = {}
            for i, p in self._store.load() if self._store is not None else ():
                self._restored.setdefault(i, []).append(p)
        readers = self._durable.setdefault(interest, set())
        readers.add(Identity())  # the anonymous reader: counts on an open gateway only
        now = self._clock()
        for proof in self._restored.get(interest, []):
            if proof.expires_at > now:
                readers.add(Identity(proof.address))
                self._keep(interest, proof)
        self.reevaluate()

    def _durable_proofs(self) -> list[tuple[Interest, ReaderProof]]:
        out: list[tuple[Interest, ReaderProof]] = []
        for interest, readers in self._durable.items():
            addresses = {r.address for r in readers}
            proofs = self._proofs.get(interest, {}).values()
            out.extend((interest, p) for p in proofs if p.address in addresses)
        return out

    def reevaluate(self) -> None:
        """Recompute (e.g. the access view changed); wake waiters if the interest changed."""
        self._pulses += 1
        self._pulsed.set()
        self._pulsed = asyncio.Event()
        now = self._clock()
        for proofs in self._proofs.values():
            for address in [a for a, p in proofs.items() if p.expires_at <= now]:
                del proofs[address]
        published = frozenset(self.proven().items())
        if published != self._published:
            self._published = published
            self._version += 1
            self._changed.set()
            self._changed = asyncio.Event()

    async def wait_changed(self, seen_version: int) -> int:
        """Return the new version once it differs from `seen_version`."""
        while self._version == seen_version:
            await self._changed.wait()
        return self._version

    def _keep(self, interest: Interest, proof: ReaderProof | None) -> bool:
        """Keep `proof` if it is its reader's latest; True when it was kept."""
        if proof is None:
            return False
        proofs = self._proofs.setdefault(interest, {})
        old = proofs.get(proof.address)
        if old is not None and old.expires_at >= proof.expires_at:
            return False
        proofs[proof.address] = proof
        while len(proofs) > MAX_READERS:
            earliest = min(proofs.values(), key=lambda p: p.expires_at)
            del proofs[earliest.address]
        return True
