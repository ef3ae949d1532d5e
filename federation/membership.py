"""Membership: who is in the federation, whom to dial when, which of two links wins (sans-I/O).

The node's shell feeds it events (members learnt, a link up or down, a dial ended, the clock)
and carries out what it returns (`Dial`, `Register`, `Close`); it owns no task, socket or clock.

Rules:
- Members come from Hello and Members messages. The shell verifies each certificate against
  the federation's CA, then `vet` checks each member's address signature against the key its
  certificate binds (`member_statement`: region, address, version) and that its version is
  not older than the one we hold: a third party relaying a region's certificate cannot
  re-point that region's address (no key), nor replay an older signed address. `learn`
  trusts what passed.
- Dial targets: every seed address, and with `mesh` the address of every member whose region
  sorts after ours (the smaller region dials: one link per pair). A seed whose region is not
  known yet is probed: dialed without a TLS name check, its Hello names the region, the probe
  link is closed (PROBED) and the address is redialed at once as that region.
- At most one dial per address at a time; never our own address; none while the address's
  region is linked (by a dialed or an accepted link).
- Backoff, per address: a dial whose link never streamed (refused, TLS name check, wrong
  region, handshake timeout) waits `delay * U(0.5, 1.5)` before the next one, and the delay
  doubles up to `reconnect_max`. A link that streamed resets the delay to `reconnect_initial`.
- Duplicates: one registered link per region. When a second link to a region comes up, the one
  dialed by the smaller region wins, on both sides alike; the other is closed as DUPLICATE.
"""

from __future__ import annotations

import enum
import random
import struct
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from federation.messages import Member
from federation.protocol import CloseReason

L = TypeVar("L", bound=Hashable)  # the shell's link handle (a PeerLink)

MEMBER_DOMAIN = b"meshgate/member-address/v1\x00"


def member_statement(region: str, address: str, version: int) -> bytes:
    """The bytes a member's region key signs: domain, then length-prefixed region and
    address, then the version (8 bytes, big-endian)."""
    r, a = region.encode(), address.encode()
    return (
        MEMBER_DOMAIN
        + struct.pack(">H", len(r))
        + r
        + struct.pack(">H", len(a))
        + a
        + (struct.pack(">Q", version))
    )


def signed_member(member: Member, signing_seed: bytes, version: int) -> Member:
    """`member` with its address signed by the region key (`signing_seed`) at `version`."""
    statement = member_statement(member.region, member.peer_address, version)
    signature = SigningKey(signing_seed).sign(statement).signature
    return replace(member, address_version=version, address_signature=bytes(signature))


def address_signed(member: Member, verify_key: bytes) -> bool:
    """Is `member`'s address signed by `verify_key` (the key its verified certificate binds)?"""
    statement = member_statement(member.region, member.peer_address, member.address_version)
    try:
        VerifyKey(verify_key).verify(statement, member.address_signature)
    except (BadSignatureError, ValueError, TypeError):
        return False
    return True


@dataclass(frozen=True)
class Dial:
    """Open a link to `address`; `region` None: a probe (no TLS name check)."""

    address: str
    region: str | None


@dataclass(frozen=True)
class Register(Generic[L]):
    """`link` is now the link of `region`: route over it, advertise interest on it."""

    link: L
    region: str


@dataclass(frozen=True)
class Close(Generic[L]):
    link: L
    reason: CloseReason


class DialOutcome(enum.Enum):
    STREAMED = "streamed"  # the handshake completed (whatever ended the link later)
    PROBED = "probed"  # a probe learnt the region: redial now
    FAILED = "failed"  # never streamed: back off


@dataclass
class _Target:
    region: str | None
    delay: float
    next_at: float = 0.0
    dialing: bool = False


class Membership(Generic[L]):
    """Membership state of one gateway. Not thread-safe; owned by one event loop."""

    def __init__(
        self,
        *,
        local_region: str,
        seeds: Sequence[str],
        mesh: bool,
        reconnect_initial: float,
        reconnect_max: float,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.local_region = local_region
        self.local_address = ""
        self._mesh = mesh
        self._initial = reconnect_initial
        self._max = reconnect_max
        self._jitter = jitter
        self._seeds = frozenset(seeds)
        self._members: dict[str, Member] = {}
        self._regions: dict[str, str | None] = dict.fromkeys(seeds)  # address -> region
        self._targets: dict[str, _Target] = {
            s: _Target(None, reconnect_initial) for s in self._seeds
        }
        self._links: dict[str, tuple[L, bool]] = {}  # region -> (link, dialed by us)

    # ---- members --------------------------------------------------------------------------------

    def listening(self, me: Member, signing_seed: bytes | None = None, version: int = 0) -> None:
        """Our own member row, known once the peer server is bound; with our region's
        `signing_seed` its address is signed at `version` (newer than any earlier start's)."""
        if signing_seed is not None:
            me = signed_member(me, signing_seed, version)
        self.local_address = me.peer_address
        self._members[self.local_region] = me

    def members(self) -> tuple[Member, ...]:
        return tuple(self._members[r] for r in sorted(self._members))

    def member(self, region: str) -> Member | None:
        return self._members.get(region)

    def vet(self, member: Member, verify_key: bytes) -> str | None:
        """Why `member` (its certificate verified, binding `verify_key`) must be refused:
        `address_signature` (not signed by its region key) or `stale_address` (older than
        what we hold, or the same version naming another address); None: learn it."""
        if not address_signed(member, verify_key):
            return "address_signature"
        known = self._members.get(member.region)
        if known is not None and (
            member.address_version < known.address_version
            or (member.address_version == known.address_version and member != known)
        ):
            return "stale_address"
        return None

    def vet_all(
        self, verified: Sequence[tuple[Member, bytes]]
    ) -> tuple[list[tuple[Member, bytes]], list[tuple[str, str]]]:
        """Split certificate-verified (member, key) pairs into those to learn and
        (reason, one line saying why) refusals (see `vet`)."""
        ok: list[tuple[Member, bytes]] = []
        refused: list[tuple[str, str]] = []
        for m, key in verified:
            reason = self.vet(m, key)
            if reason is None:
                ok.append((m, key))
            else:
                refused.append(
                    (reason, f"ignoring member {m.region} at {m.peer_address}: {reason}")
                )
        return ok, refused

    def learn(self, members: Sequence[Member]) -> bool:
        """Add or update verified members; True when the member table changed (gossip it)."""
        changed = False
        for m in members:
            if m.region == self.local_region:
                continue
            if self._members.get(m.region) != m:
                self._members[m.region] = m
                changed = True
            address = m.peer_address
            if not address or self._regions.get(address) is not None:
                continue
            self._regions[address] = m.region
            if address in self._targets:
                self._targets[address].region = m.region
            elif self._mesh and self.local_region < m.region:
                self._targets[address] = _Target(m.region, self._initial)
        return changed

    def region_at(self, address: str) -> str | None:
        return self._regions.get(address)

    # ---- links ----------------------------------------------------------------------------------

    def linked(self) -> Mapping[str, L]:
        return {region: link for region, (link, _) in self._links.items()}

    def link_up(
        self, link: L, *, region: str, dialed: bool, address: str = "", probe: bool = False
    ) -> list[Register[L] | Close[L]]:
        """A link's handshake completed. Returns Register for the winner, Close for a loser."""
        if dialed and address:
            self._regions[address] = region
            if address in self._targets:
                self._targets[address].region = region
        if probe:
            return [Close(link, CloseReason.PROBED)]
        actions: list[Register[L] | Close[L]] = []
        existing = self._links.get(region)
        if existing is not None:
            old, old_dialed = existing
            we_dial = self.local_region < region  # the link the smaller region dialed wins
            if old_dialed == we_dial or dialed != we_dial:
                return [Close(link, CloseReason.DUPLICATE)]
            actions.append(Close(old, CloseReason.DUPLICATE))
        self._links[region] = (link, dialed)
        return [Register(link, region), *actions]

    def link_down(self, link: L) -> str | None:
        """`link` ended; returns its region if it was the registered one (routes withdraw)."""
        for region, (registered, _) in self._links.items():
            if registered == link:
                del self._links[region]
                return region
        return None

    # ---- dialing --------------------------------------------------------------------------------

    def due(self, now: float) -> list[Dial]:
        """Dials to start now (each target is marked dialing until `dial_ended`)."""
        out = []
        for address, target in sorted(self._targets.items()):
            if (
                target.dialing
                or address == self.local_address
                or (target.region is not None and target.region in self._links)
                or now < target.next_at
            ):
                continue
            target.dialing = True
            out.append(Dial(address, target.region))
        return out

    def next_due(self, now: float) -> float | None:
        """Seconds until a backed-off dial becomes due; None: nothing waits on the clock."""
        waits = [
            t.next_at - now
            for a, t in self._targets.items()
            if not t.dialing and a != self.local_address and t.region not in self._links
        ]
        return max(0.0, min(waits)) if waits else None

    def dial_ended(self, address: str, outcome: DialOutcome, now: float) -> None:
        target = self._targets[address]
        target.dialing = False
        if outcome is DialOutcome.PROBED:
            target.next_at = now
            return
        if outcome is DialOutcome.STREAMED:
            target.delay = self._initial
            target.next_at = now + self._initial * (0.5 + self._jitter())
            return
        target.next_at = now + target.delay * (0.5 + self._jitter())
        target.delay = min(self._max, target.delay * 2)

    def backoff(self, address: str) -> float:
        """The delay the next failure of `address` will wait (before jitter)."""
        return self._targets[address].delay
