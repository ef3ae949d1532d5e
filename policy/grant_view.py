"""A local, sans-I/O view of the registry: who owns, who may read, who may publish each topic.

Theory of operation: the ledger follower reads registry changes block by block; the gateway
adapter turns each into one of the frozen change records below and calls `GrantView.apply`.
After each block range it calls `GrantView.checkpoint` with the block it has synced to and the
wall time at which it last heard from the chain node. Decisions (`policy.decision`) read the
view only; no chain call happens per event.

Invariants:
- addresses are stored lower-case (`policy.address.normalize_address`);
- a revoked grant stays in the view, marked revoked, so a denial can say "revoked" rather
  than "no grant"; a later grant to the same address clears the mark;
- each change to a topic bumps that topic's `version` by one;
- changes for topics never registered are counted in `statistics()` and otherwise ignored
  (the registry contract does not emit them; the view must not invent owners);
- freshness only moves forward: a checkpoint for an older block than the last one is ignored
  for the block fields but still refreshes `observed_at` (the node answered);
- `rewind(block)` (the chain no longer holds what came after `block`) leaves the view exactly
  as if only the changes up to `block` had been applied (it replays them: rewinds are rare,
  registry changes few) and never synced: stale until the next checkpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from policy.address import normalize_address

# ---- input: registry changes -------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicRegistered:
    topic: str
    owner: str
    block: int
    encrypted: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class OwnerChanged:
    topic: str
    owner: str
    block: int


@dataclass(frozen=True, slots=True, kw_only=True)
class GrantSet:
    """Read access for `grantee`; `expires_at` is unix seconds, None for no expiry."""

    topic: str
    grantee: str
    expires_at: int | None
    block: int


@dataclass(frozen=True, slots=True, kw_only=True)
class GrantRevoked:
    topic: str
    grantee: str
    block: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PublisherAdded:
    topic: str
    publisher: str
    block: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PublisherRemoved:
    topic: str
    publisher: str
    block: int


@dataclass(frozen=True, slots=True, kw_only=True)
class KeySetRecorded:
    """An owner-signed key set recorded on chain; `seen_at` is when this view learnt of it
    (wall clock, set by the feed), the start of an epoch's grace for older epochs."""

    topic: str
    epoch: int
    key_set_hash: str  # 0x-hex keccak256
    block: int
    seen_at: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class SchemaVersionAdded:
    topic: str
    event_type: str
    version: int  # 1-based
    format: int  # 1 JSON Schema, 2 Avro, 3 Protobuf descriptor set
    document: bytes
    block: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CompatibilitySet:
    topic: str
    mode: int
    block: int


RegistryChange = (
    TopicRegistered
    | OwnerChanged
    | GrantSet
    | GrantRevoked
    | PublisherAdded
    | PublisherRemoved
    | KeySetRecorded
    | SchemaVersionAdded
    | CompatibilitySet
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Checkpoint:
    """The view holds every change up to `block`; the node was last heard at `observed_at`."""

    block: int
    block_timestamp: int
    observed_at: float


# ---- output: read-only records --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GrantRecord:
    expires_at: int | None
    revoked: bool
    block: int


@dataclass(frozen=True, slots=True)
class KeyEpoch:
    """An encrypted topic's newest epoch and when this view learnt of it."""

    epoch: int
    seen_at: float


@dataclass(frozen=True, slots=True)
class SchemaVersion:
    version: int
    format: int
    document: bytes
    # the topic's compatibility mode when this version was added: what it is judged under
    # (policy/schemas/compatibility.py), so a mode set later does not void earlier versions
    mode: int = 1


@dataclass(frozen=True, slots=True)
class TopicRecord:
    name: str
    owner: str
    version: int
    grants: Mapping[str, GrantRecord]
    publishers: frozenset[str]
    encrypted: bool = False
    key_epoch: KeyEpoch | None = None  # encrypted topics, once the first key set is on chain
    key_sets: Mapping[str, int] = field(default_factory=dict)  # hash -> epoch
    compatibility: int = 1  # schema compatibility mode (ledger.changes.SchemaCompatibilitySet)


@dataclass(frozen=True, slots=True)
class Freshness:
    synced_block: int
    block_timestamp: int
    observed_at: float

    def age(self, now: float) -> float:
        """Seconds since the chain node was last heard from (negative clocks count as 0)."""
        return max(0.0, now - self.observed_at)


@dataclass(frozen=True, slots=True)
class ViewStatistics:
    topics: int
    grants: int
    changes_applied: int
    changes_ignored: int
    synced_block: int | None


@dataclass(slots=True)
class _TopicState:
    owner: str
    version: int = 0
    grants: dict[str, GrantRecord] = field(default_factory=dict)
    publishers: set[str] = field(default_factory=set)
    encrypted: bool = False
    key_epoch: KeyEpoch | None = None
    key_sets: dict[str, int] = field(default_factory=dict)
    schemas: dict[str, list[SchemaVersion]] = field(default_factory=dict)
    compatibility: int = 1


class GrantView:
    """The registry's current state as seen by this gateway. Not thread-safe; one owner."""

    def __init__(self) -> None:
        self._topics: dict[str, _TopicState] = {}
        self._freshness: Freshness | None = None
        self._applied = 0
        self._ignored = 0
        self._history: list[RegistryChange] = []  # every change fed, in order, for rewind()

    # -- feeding ---------------------------------------------------------------------------

    def apply(self, change: RegistryChange) -> str | None:
        """Apply one change; return the topic it changed, or None if it was ignored."""
        self._history.append(change)
        return self._apply(change)

    def rewind(self, block: int) -> set[str]:
        """Forget every change after `block` and the freshness; return the topics that changed.

        The view is stale afterwards (`freshness` None) until the next `checkpoint`.
        """
        kept = [c for c in self._history if c.block <= block]
        dropped = {c.topic for c in self._history if c.block > block}
        self._topics, self._applied, self._ignored = {}, 0, 0
        self._history = []
        self._freshness = None
        for change in kept:
            self.apply(change)
        return dropped

    def _apply(self, change: RegistryChange) -> str | None:
        if isinstance(change, TopicRegistered):
            self._topics[change.topic] = _TopicState(
                owner=normalize_address(change.owner), encrypted=change.encrypted
            )
            return self._bump(change.topic)
        state = self._topics.get(change.topic)
        if state is None:
            self._ignored += 1
            return None
        if isinstance(change, OwnerChanged):
            state.owner = normalize_address(change.owner)
        elif isinstance(change, GrantSet):
            state.grants[normalize_address(change.grantee)] = GrantRecord(
                expires_at=change.expires_at, revoked=False, block=change.block
            )
        elif isinstance(change, GrantRevoked):
            grantee = normalize_address(change.grantee)
            previous = state.grants.get(grantee)
            state.grants[grantee] = GrantRecord(
                expires_at=previous.expires_at if previous else None,
                revoked=True,
                block=change.block,
            )
        elif isinstance(change, PublisherAdded):
            state.publishers.add(normalize_address(change.publisher))
        elif isinstance(change, PublisherRemoved):
            state.publishers.discard(normalize_address(change.publisher))
        elif isinstance(change, KeySetRecorded):
            state.key_sets[change.key_set_hash.lower()] = change.epoch
            if state.key_epoch is None or change.epoch > state.key_epoch.epoch:
                state.key_epoch = KeyEpoch(change.epoch, change.seen_at)
        elif isinstance(change, SchemaVersionAdded):
            versions = state.schemas.setdefault(change.event_type, [])
            versions.append(
                SchemaVersion(change.version, change.format, change.document, state.compatibility)
            )
        else:
            state.compatibility = change.mode
        return self._bump(change.topic)

    def checkpoint(self, checkpoint: Checkpoint) -> None:
        """Record that the view is complete up to `checkpoint.block`."""
        current = self._freshness
        if current is not None and checkpoint.block < current.synced_block:
            self._freshness = Freshness(
                current.synced_block,
                current.block_timestamp,
                max(current.observed_at, checkpoint.observed_at),
            )
            return
        observed = checkpoint.observed_at
        if current is not None:
            observed = max(observed, current.observed_at)
        self._freshness = Freshness(checkpoint.block, checkpoint.block_timestamp, observed)

    # -- reading ---------------------------------------------------------------------------

    @property
    def freshness(self) -> Freshness | None:
        """None until the first checkpoint: a view that never synced is never fresh."""
        return self._freshness

    def is_stale(self, now: float, bound: float) -> bool:
        fresh = self._freshness
        return fresh is None or fresh.age(now) > bound

    def topic(self, name: str) -> TopicRecord | None:
        state = self._topics.get(name)
        if state is None:
            return None
        return TopicRecord(
            name=name,
            owner=state.owner,
            version=state.version,
            grants=MappingProxyType(dict(state.grants)),
            publishers=frozenset(state.publishers),
            encrypted=state.encrypted,
            key_epoch=state.key_epoch,
            key_sets=MappingProxyType(dict(state.key_sets)),
            compatibility=state.compatibility,
        )

    def schemas(self, name: str, event_type: str) -> tuple[SchemaVersion, ...]:
        """Every schema version on chain for (topic, type), oldest first."""
        state = self._topics.get(name)
        return () if state is None else tuple(state.schemas.get(event_type, ()))

    def schema_types(self, name: str) -> list[str]:
        state = self._topics.get(name)
        return [] if state is None else sorted(state.schemas)

    def owner(self, name: str) -> str | None:
        state = self._topics.get(name)
        return None if state is None else state.owner

    def grant(self, name: str, address: str) -> GrantRecord | None:
        state = self._topics.get(name)
        if state is None:
            return None
        return state.grants.get(normalize_address(address))

    def is_publisher(self, name: str, address: str) -> bool:
        state = self._topics.get(name)
        return state is not None and normalize_address(address) in state.publishers

    def topics(self) -> list[str]:
        return sorted(self._topics)

    def statistics(self) -> ViewStatistics:
        return ViewStatistics(
            topics=len(self._topics),
            grants=sum(len(t.grants) for t in self._topics.values()),
            changes_applied=self._applied,
            changes_ignored=self._ignored,
            synced_block=None if self._freshness is None else self._freshness.synced_block,
        )

    def _bump(self, topic: str) -> str:
        self._topics[topic].version += 1
        self._applied += 1
        return topic
