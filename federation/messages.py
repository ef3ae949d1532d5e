"""Value types of the link protocol: what `federation.codec` maps to and from `PeerMessage`.

The cores (`protocol`, `routing`, `signing`) work on these frozen values only, never on pb2.
A CloudEvent travels as its canonical bytes (deterministic protobuf serialisation of
`io.cloudevents.v1.CloudEvent`): that is what the origin signs and what relays forward unchanged.
Interest filters are the one filter model, `eventmodel.filters`.

Interest proofs: each `TopicInterest` carries up to MAX_PROOFS_PER_TOPIC `InterestProof`s,
readers' signed statements (EIP-4361 text + signature, see `policy.identity`) that name the
region the interest is for, the topic and an expiry. Federation carries them opaque; the
host's judge (`routing.Judge`) decides which count. A Member carries its own signature over
(region, address, version), made with the region key its certificate binds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from eventmodel.filters import Filter, matches_all

PROTOCOL_VERSION = 1
# The sender keeps the latest-expiring proofs of each topic interest; more is a violation.
MAX_PROOFS_PER_TOPIC = 4
MAX_PROOF_BYTES = 4096
# Key sets per KeySets message and bytes per set (a set sealed to ~5,000 readers fits).
MAX_KEY_SETS_PER_MESSAGE = 64
MAX_KEY_SET_BYTES = 1024 * 1024


# ---- interest and membership -----------------------------------------------------------------


@dataclass(frozen=True)
class InterestProof:
    """A reader's signed statement of interest (opaque here; the host's judge reads it)."""

    message: str
    signature: bytes


@dataclass(frozen=True)
class TopicInterest:
    """One subscription's wish: every event of `topic` passing all `filters` (none = all),
    with the readers' proofs that it may be routed (at most MAX_PROOFS_PER_TOPIC)."""

    topic: str
    filters: tuple[Filter, ...] = ()
    proofs: tuple[InterestProof, ...] = ()

    def wants(self, topic: str, attributes: dict[str, str]) -> bool:
        return topic == self.topic and matches_all(self.filters, attributes)


@dataclass(frozen=True)
class RegionInterest:
    region: str
    distance: int
    topics: tuple[TopicInterest, ...]


@dataclass(frozen=True)
class Member:
    """A gossiped member: `address_signature` is the region key's signature over (region,
    peer_address, address_version) (`membership.member_statement`); newer versions win."""

    region: str
    peer_address: str
    certificate_pem: bytes
    address_version: int = 0
    address_signature: bytes = b""


# ---- events ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class OriginSignature:
    merkle_root: bytes
    signature: bytes
    leaf_index: int
    leaf_count: int
    proof: tuple[bytes, ...]


@dataclass(frozen=True)
class ReplicatedEvent:
    """An event on its way between regions; `attributes` is derived from `event` for filtering."""

    topic: str
    event: bytes
    origin_region: str
    origin_offset: int
    path: tuple[str, ...]
    destinations: tuple[str, ...]
    hop_limit: int
    signature: OriginSignature | None
    attributes: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


# ---- link messages ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Hello:
    protocol_version: int
    region: str
    members: tuple[Member, ...]


@dataclass(frozen=True)
class Interest:
    version: int
    regions: tuple[RegionInterest, ...]


@dataclass(frozen=True)
class EventBatch:
    seq: int
    events: tuple[ReplicatedEvent, ...]


@dataclass(frozen=True)
class BatchAck:
    seq: int
    credits: int


@dataclass(frozen=True)
class Members:
    members: tuple[Member, ...]


@dataclass(frozen=True)
class TopicKeySet:
    """An owner-signed key set of an encrypted topic (issue 12), opaque here: the host checks
    it against the chain (federation/key_set_flood.py floods only what the host accepted)."""

    topic: str
    document: bytes
    signature: bytes


@dataclass(frozen=True)
class KeySets:
    sets: tuple[TopicKeySet, ...]


@dataclass(frozen=True)
class Ping:
    nonce: int


@dataclass(frozen=True)
class Pong:
    nonce: int


PeerMessage = Hello | Interest | EventBatch | BatchAck | Members | KeySets | Ping | Pong
