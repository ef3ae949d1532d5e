"""The owner's side of an encrypted topic (issue 12): epoch keys, who gets them, key sets.

Theory of operation:

- **An epoch key is 32 fresh random bytes** (`os.urandom`), never derived from an earlier
  one: a revoked reader holding epoch N learns nothing about N+1.
- **A new epoch** (`rotate`: `owner register --encrypted`, `owner rotate`, and after every
  revoke and deny-publisher) seals its key to the owner, every unexpired grantee and every
  allowed publisher that announced an X25519 key on chain (`choose_recipients`; the others
  are reported as skipped, with why). The owner signs the key-set document, records its hash
  on chain as epoch current+1 (`publishKeySet`), and only then hands it to a gateway
  (`PutKeySet`: a gateway takes only what the chain recorded), which floods it to the mesh.
- **A re-issue** (`reissue`: after a grant or allow-publisher) seals the same key of the
  current epoch to the current recipients again, the new one included, recording the new
  document under the same epoch; with `history` every earlier epoch is re-issued too, to
  its earlier holders plus the new grantee only (`reissue_epochs`, `merged_recipients`):
  another reader granted without history gets no history from someone else's grant.
- **The owner keeps no key file of epoch keys**: it recovers them from its own sealed entry
  in the key sets a gateway holds (`recover`), each verified against the chain first (owner
  signature, hash recorded for that epoch), so a gateway cannot hand it a forged key.

Ordering and failure: the chain records a key set before any gateway holds it. If the
delivery then fails, the epoch is current on chain but nobody but this process ever held its
key: the error says so, and `owner rotate` (a fresh epoch) is the fix.

Decisions are plain functions (tested in tests/unit/meshgate/test_key_custody.py); the chain
(`ledger.registry.RegistryClient`) and the gateway (`KeySetPort`, meshgate/key_set_port.py)
are at the edges, in `KeyCustody`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from eth_account.signers.local import LocalAccount

from ledger.registry import RegistryClient, TopicInfo, TxResult
from meshgate.errors import KeyCustodyError
from meshgate.key_set_port import KeySetPort, target_of
from policy import key_sets
from policy.encryption_keys import derive_x25519
from policy.errors import KeySetError

EPOCH_KEY_BYTES = 32


# ---- decisions (pure) ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Skipped:
    """A member of the topic that gets no key in this key set, and why."""

    address: str
    role: str  # "reader" | "publisher"
    reason: str


@dataclass(frozen=True, slots=True)
class Recipients:
    """Who a key set is sealed to: address (lower-case) -> announced X25519 public key."""

    keys: Mapping[str, bytes]
    roles: Mapping[str, str]  # address -> "owner" | "reader" | "publisher"
    skipped: tuple[Skipped, ...] = ()


def choose_recipients(
    info: TopicInfo, announced: Mapping[str, bytes | None], now: int
) -> Recipients:
    """The owner, every grantee whose grant has not expired at chain time `now`, and every
    allowed publisher; each only with an X25519 key announced on chain (`announced`, keyed
    by lower-case address). Raises KeyCustodyError when the owner itself has no key."""
    owner = info.owner.lower()
    owner_key = announced.get(owner)
    if owner_key is None:
        raise KeyCustodyError(
            f"the owner {info.owner} has no X25519 key on chain: run `meshgate keys announce`"
        )
    keys: dict[str, bytes] = {owner: owner_key}
    roles: dict[str, str] = {owner: "owner"}
    skipped: list[Skipped] = []
    members: list[tuple[str, str, int]] = [(g.reader, "reader", g.expires_at) for g in info.grants]
    members += [(p, "publisher", 0) for p in info.publishers]
    for address, role, expires_at in members:
        addr = address.lower()
        if addr in roles:
            continue  # the owner, or a reader who also publishes: one entry
        if expires_at and expires_at <= now:
            skipped.append(Skipped(address, role, f"grant expired at {expires_at}"))
            continue
        key = announced.get(addr)
        if key is None:
            skipped.append(Skipped(address, role, "no X25519 key announced on chain"))
            continue
        keys[addr], roles[addr] = key, role
    return Recipients(keys=keys, roles=roles, skipped=tuple(skipped))


def members_of(info: TopicInfo) -> list[str]:
    """Every address whose announced key `choose_recipients` may need."""
    seen = dict.fromkeys([info.owner, *(g.reader for g in info.grants), *info.publishers])
    return list(seen)


def reissue_epochs(current: int, *, history: bool) -> list[int]:
    """Which epochs a re-issue covers: the current one, or with `history` all of them."""
    if current < 1:
        raise KeyCustodyError("the topic has no key epoch yet: run `meshgate owner rotate`")
    return list(range(1, current + 1)) if history else [current]


def merged_recipients(earlier: Iterable[str], added: str, now: Recipients) -> set[str]:
    """Who an earlier epoch's re-issue is sealed to: whoever held it (an earlier holder keeps
    its entry: a client may fetch only the newest set of an epoch), plus `added` if it is one
    of today's recipients (it has a key and its grant holds)."""
    out = {a.lower() for a in earlier}
    if added.lower() in now.keys:
        out.add(added.lower())
    return out


def epochs_to_give(
    grantee: str, epochs: Iterable[int], holders: Mapping[int, Iterable[str]]
) -> list[int]:
    """The epochs among `epochs` whose key sets have no entry for `grantee` yet."""
    me = grantee.lower()
    return [e for e in epochs if me not in {a.lower() for a in holders.get(e, ())}]


def holders_per_epoch(docs: Sequence[key_sets.KeySetDocument]) -> dict[int, list[str]]:
    """Every address sealed to in any verified document of each epoch."""
    out: dict[int, set[str]] = {}
    for doc in docs:
        out.setdefault(doc.epoch, set()).update(a.lower() for a in doc.sealed)
    return {epoch: sorted(addrs) for epoch, addrs in out.items()}


# ---- the owner's flows (chain + gateway) ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Issued:
    """One key set the owner made, recorded on chain and delivered."""

    topic: str
    epoch: int
    recipients: Mapping[str, str]  # address -> role
    skipped: tuple[Skipped, ...]
    tx: TxResult
    key_set_hash: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Reissue:
    """What a re-issue for one grantee did: the key sets made, or why none was."""

    issued: tuple[Issued, ...]
    skipped: Skipped | None  # the grantee gets no key (no announced key, grant expired)
    already: tuple[int, ...]  # epochs whose key sets already had its entry


@dataclass(frozen=True, slots=True)
class Registered:
    register_tx: TxResult
    announce_tx: TxResult | None
    first: Issued


class KeyCustody:
    """One owner's key lifecycle: `registry` signs as the owner, `port` reaches a gateway.

    Raises KeyCustodyError (not the owner, not encrypted, a gateway refusal, a key set that
    does not verify), and the `ledger.errors` of the transactions."""

    def __init__(
        self,
        registry: RegistryClient,
        signer: LocalAccount,
        port: KeySetPort,
        *,
        clock: Callable[[], float] = time.time,
        random_key: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.registry = registry
        self.signer = signer
        self.port = port
        self._clock = clock
        self._random_key = random_key
        self._x25519 = derive_x25519(bytes(signer.key))
        self.public_key = bytes(self._x25519.public_key)
        self._chain_id: int | None = None

    # -- flows --

    def announce_if_missing(self) -> TxResult | None:
        """Announce this owner's X25519 key unless the chain already holds exactly it."""
        if self.registry.encryption_key_of(self.signer.address) == self.public_key:
            return None
        return self.registry.announce_key(self.public_key)

    def register_encrypted(self, topic: str) -> Registered:
        """Register `topic` encrypted, announce the owner's key if needed, make epoch 1."""
        register_tx = self.registry.register(topic, encrypted=True)
        announce_tx = self.announce_if_missing()
        return Registered(register_tx, announce_tx, self.rotate(topic))

    def rotate(self, topic: str) -> Issued:
        """A new epoch with a fresh key, sealed to today's recipients (module docstring)."""
        info = self._owned(topic)
        recipients = self._recipients(info)
        key = self._random_key(EPOCH_KEY_BYTES)
        return self._issue(info, info.key_epoch + 1, key, recipients, set(recipients.keys))

    def reissue(self, topic: str, grantee: str, *, history: bool = False) -> Reissue:
        """Give `grantee` the current epoch's key (with `history` every earlier one too) by
        sealing it again: the current epoch to today's recipients, an earlier one to its
        earlier holders plus `grantee`. Nothing is issued for a grantee without a key or
        whose grant does not hold (`Reissue.skipped` says why), nor for an epoch it holds."""
        info = self._owned(topic)
        epochs = reissue_epochs(info.key_epoch, history=history)
        recipients = self._recipients(info)
        if grantee.lower() not in recipients.keys:
            why = next(
                (s for s in recipients.skipped if s.address.lower() == grantee.lower()), None
            )
            return Reissue((), why or Skipped(grantee, "member", "not a reader or publisher"), ())
        docs = self._verified(topic, info.owner)
        keys = self._unseal_all(docs)
        holders = holders_per_epoch(docs)
        todo = epochs_to_give(grantee, epochs, holders)
        issued = []
        for epoch in todo:
            if epoch not in keys:
                raise KeyCustodyError(
                    f"no key set of {topic!r} epoch {epoch} sealed to the owner at gateway "
                    f"{target_of(self.port)}: cannot re-issue it (`owner rotate` makes a new epoch)"
                )
            to = set(recipients.keys)
            if epoch != info.key_epoch:
                to = merged_recipients(holders.get(epoch, ()), grantee, recipients)
            issued.append(self._issue(info, epoch, keys[epoch], recipients, to))
        already = tuple(e for e in epochs if e not in todo)
        return Reissue(tuple(issued), None, already)

    def recover(self, topic: str) -> dict[int, bytes]:
        """Every epoch key of `topic` the owner can unseal from verified key sets."""
        info = self._owned(topic)
        return self._unseal_all(self._verified(topic, info.owner))

    # -- steps --

    def _owned(self, topic: str) -> TopicInfo:
        info = self.registry.topic_info(topic)
        if info is None:
            raise KeyCustodyError(f"unknown topic {topic!r}")
        if not info.encrypted:
            raise KeyCustodyError(f"topic {topic!r} is not encrypted: it has no keys")
        if info.owner.lower() != self.signer.address.lower():
            raise KeyCustodyError(
                f"{self.signer.address} is not the owner of {topic!r} (owner {info.owner})"
            )
        return info

    def _recipients(self, info: TopicInfo) -> Recipients:
        announced = {a.lower(): self.registry.encryption_key_of(a) for a in members_of(info)}
        if announced.get(info.owner.lower()) != self.public_key:
            raise KeyCustodyError(
                f"the owner's X25519 key on chain is not the one its key file derives: run "
                f"`meshgate keys announce --key-file ...` as {info.owner}"
            )
        return choose_recipients(info, announced, self.registry.chain_time())

    def _issue(
        self,
        info: TopicInfo,
        epoch: int,
        key: bytes,
        recipients: Recipients,
        to: set[str],
    ) -> Issued:
        keys: dict[str, bytes] = {}
        for address in sorted(to):
            pub = recipients.keys.get(address) or self.registry.encryption_key_of(address)
            if pub is not None:
                keys[address] = pub
        doc = key_sets.build(
            info.name,
            epoch,
            key,
            keys,
            chain_id=self.chain_id,
            registry=self.registry.address,
            owner=info.owner,
            issued_at=int(self._clock()),
        )
        raw = key_sets.encode(doc)
        signature = key_sets.sign(raw, self.signer)
        digest = key_sets.key_set_hash(raw)
        tx = self.registry.publish_key_set(info.name, epoch, digest)
        try:
            self.port.put(info.name, raw, signature)
        except KeyCustodyError as exc:
            raise KeyCustodyError(
                f"{exc} (epoch {epoch} is recorded on chain in tx {tx.tx_hash} but no gateway "
                f"holds its key set: run `meshgate owner rotate {info.name}`)"
            ) from exc
        roles = {a: recipients.roles.get(a, "earlier holder") for a in keys}
        return Issued(info.name, epoch, roles, recipients.skipped, tx, digest)

    def _verified(self, topic: str, owner: str) -> list[key_sets.KeySetDocument]:
        """The key sets a gateway holds, each checked against the chain: a set that fails is
        an error naming why, except one an earlier owner made (before a transfer: stale, not
        forged; readers refuse it too), which is left out."""
        docs = []
        for raw, signature in self.port.get(topic):
            try:
                named = key_sets.decode(raw).owner
            except KeySetError:
                named = owner.lower()  # verify below names what is wrong with it
            if named != owner.lower():
                continue
            recorded = self.registry.key_set_epoch_of(topic, key_sets.key_set_hash(raw))
            try:
                doc = key_sets.verify(
                    raw,
                    signature,
                    topic=topic,
                    owner=owner,
                    recorded_epoch=recorded,
                    chain_id=self.chain_id,
                    registry=self.registry.address,
                )
            except KeySetError as exc:
                raise KeyCustodyError(
                    f"gateway {target_of(self.port)} holds a key set of {topic!r} that does not "
                    f"verify: {exc}"
                ) from exc
            docs.append(doc)
        return docs

    def _unseal_all(self, docs: Sequence[key_sets.KeySetDocument]) -> dict[int, bytes]:
        keys: dict[int, bytes] = {}
        me = self.signer.address.lower()
        for doc in docs:
            if me in {a.lower() for a in doc.sealed}:
                keys[doc.epoch] = key_sets.unseal(doc, self.signer.address, self._x25519)
        return keys

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(self.registry.w3.eth.chain_id)
        return self._chain_id
