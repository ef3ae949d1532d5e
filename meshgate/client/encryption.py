"""What a client does for encrypted topics (issue 12): seal before signing, open after checking.

`TopicEncryption` is shared by one `GatewayClient`'s publishes and subscriptions (its caches):

- `seal(topic, pbs, account)`: the events unchanged for a plaintext topic; for an encrypted
  one, copies sealed (eventmodel/encryption.py) under the chain's current epoch key. The
  caller signs the result (provenance covers the ciphertext and `mgepoch`).
- `open(pb, topic, account)`: the event unchanged for a plaintext topic; else the opened copy,
  or DecryptionError(reason) (the subscription acks, skips and reports it: never wedges).

Whether a topic is encrypted and its current epoch come from the chain (`Chain`, read through
`ledger`, only then imported); the gateway only carries key sets (GetKeySets), each checked
against the chain before use: the owner's signature, its hash recorded on chain under the epoch
it names (policy/key_sets.py `verify`). The client's own entry is opened with the X25519 key
derived from its Ethereum key (policy/encryption_keys.py), so no second secret exists.

Fail closed: a publish to an encrypted topic without a chain, with no usable key set, or when
the chain does not answer raises EncryptionUnavailable, and nothing is sent. Without a chain
the gateway is asked (its GetKeySets says a current epoch > 0) only to give that clear error
rather than send plaintext to an encrypted topic's gateway; with a chain the gateway is never
trusted about it.

Caches: "encrypted" is permanent once seen (the chain never turns it off); "not encrypted"
and the current epoch for `Chain.ttl` seconds (under the gateways' grace for an old epoch);
keys for ever; an epoch with no usable key set is not fetched again for `ttl` (see `key`).

Imports: `policy` (key sets, key derivation) and `ledger` (the chain) only once a topic turns
out to be encrypted, so `import meshgate.client` stays light.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from eventmodel.attributes import PbEvent
from eventmodel.encryption import epoch_of, open_event, seal_event, sealed_epoch
from eventmodel.errors import DecryptionError
from meshgate.client.provenance import Chain
from meshgate.errors import EncryptionUnavailable
from proto import gateway_pb2

KEY_SET_WAIT = 10.0  # s a client waits for a key set that is on chain but not yet at its gateway
KEY_SET_POLL = 0.25  # s between GetKeySets calls while it waits
FetchKeySets = Callable[[str, int], Awaitable[Sequence[gateway_pb2.KeySet]]]
GatewaySaysEncrypted = Callable[[str], Awaitable[bool]]


class ChainReads(Protocol):
    """The registry reads this module needs (ledger.registry.RegistryClient has them)."""

    def is_encrypted(self, topic: str) -> bool: ...
    def key_epoch_of(self, topic: str) -> int: ...
    def key_set_epoch_of(self, topic: str, key_set_hash: bytes) -> int: ...
    def owner_of(self, topic: str) -> str | None: ...


def registry_reads(chain: Chain) -> ChainReads:
    """A RegistryClient for `chain` (web3 is imported only here)."""
    from ledger.config import LedgerConfig
    from ledger.registry import RegistryClient

    return RegistryClient(LedgerConfig(rpc_url=chain.rpc_url, registry=chain.registry))


class TopicEncryption:
    """Per client: which topics are encrypted, their epochs, and the epoch keys it holds."""

    def __init__(
        self,
        *,
        chain: Chain | None,
        fetch: FetchKeySets,
        gateway_says_encrypted: GatewaySaysEncrypted,
        reads: ChainReads | None = None,
        key_set_wait: float = KEY_SET_WAIT,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.chain = chain
        self._fetch = fetch
        self._gateway_says = gateway_says_encrypted
        self._reads = reads
        self._clock = clock
        self._sleep = sleep
        self._wait = key_set_wait
        self._ttl = chain.ttl if chain is not None else 10.0
        self._cache: dict[tuple[str, str], tuple[Any, float]] = {}  # -> (value, until)
        self._read_locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._keys: dict[tuple[str, int], bytes] = {}
        self._missing: dict[tuple[str, int], tuple[str, float]] = {}  # -> (why, retry after)
        self._locks: dict[str, asyncio.Lock] = {}
        self._x25519: dict[str, Any] = {}  # address -> nacl PrivateKey

    # ---- the chain, cached -------------------------------------------------------------------

    async def _read(self, what: str, *args: Any) -> Any:
        if self._reads is None:
            assert self.chain is not None
            self._reads = await asyncio.to_thread(registry_reads, self.chain)
        try:
            return await asyncio.to_thread(getattr(self._reads, what), *args)
        except Exception as exc:  # ledger errors, web3 transport errors: fail closed
            raise EncryptionUnavailable(f"cannot ask the chain ({what}): {exc}") from exc

    async def _cached(
        self,
        what: str,
        topic: str,
        load: Callable[[], Awaitable[Any]],
        until: Callable[[Any, float], float],
    ) -> Any:
        """`load()`'s value, kept until `until(value, now)`. One load at a time per (what,
        topic): concurrent publishes at an expiry wait for it instead of each asking."""
        slot = (what, topic)
        hit = self._cache.get(slot)
        if hit is not None and hit[1] > self._clock():
            return hit[0]
        async with self._read_locks.setdefault(slot, asyncio.Lock()):
            hit = self._cache.get(slot)
            if hit is not None and hit[1] > self._clock():
                return hit[0]
            value = await load()
            self._cache[slot] = (value, until(value, self._clock()))
            return value

    async def is_encrypted(self, topic: str) -> bool:
        """The chain's flag; without a chain, what the gateway says (only to refuse early)."""

        async def load() -> bool:
            if self.chain is not None:
                return bool(await self._read("is_encrypted", topic))
            return await self._gateway_says(topic)

        def until(flag: bool, now: float) -> float:
            return float("inf") if flag else now + self._ttl  # never turned off on chain

        return bool(await self._cached("encrypted", topic, load, until))

    async def current_epoch(self, topic: str) -> int:
        async def load() -> int:
            return int(await self._read("key_epoch_of", topic))

        return int(await self._cached("epoch", topic, load, lambda _, now: now + self._ttl))

    async def _on_chain(self, topic: str, epoch: int) -> bool:
        """Has the chain reached `epoch` (read afresh: the cache may predate a rotation)?"""
        current = int(await self._read("key_epoch_of", topic))
        self._cache[("epoch", topic)] = (current, self._clock() + self._ttl)
        return epoch <= current

    async def _owner(self, topic: str) -> str:
        async def load() -> str:
            owner = await self._read("owner_of", topic)
            if owner is None:
                raise EncryptionUnavailable(f"topic {topic!r} is not registered on chain")
            return str(owner)

        return str(await self._cached("owner", topic, load, lambda _, now: now + self._ttl))

    # ---- keys ----------------------------------------------------------------------------------

    def _private(self, account: Any) -> Any:
        address = getattr(account, "address", None)
        key = getattr(account, "key", None)
        if address is None or key is None:
            raise EncryptionUnavailable(
                "an encrypted topic needs a signer with its private key (a key file) to derive "
                "its X25519 key from"
            )
        hit = self._x25519.get(address)
        if hit is None:
            from policy.encryption_keys import derive_x25519  # policy only for encrypted topics

            hit = self._x25519[address] = derive_x25519(bytes(key))
        return hit

    async def key(self, topic: str, epoch: int, account: Any) -> bytes:
        """The key of `epoch`, from a key set the chain vouches for. Raises
        DecryptionError('no_key') once a fetch found no set of `epoch` that opens for
        `account`: at once when the gateway holds sets of that epoch (none sealed to us, e.g.
        after our revoke) or the chain has not reached `epoch`; after `key_set_wait` of
        refetching when the chain has it and the gateway holds none (the owner records a set
        on chain before a gateway has it, and a set floods the mesh apart from the events).
        Then again without fetching until `ttl` has passed."""
        hit = self._keys.get((topic, epoch))
        if hit is not None:
            return hit
        private = self._private(account)
        lock = self._locks.setdefault(topic, asyncio.Lock())
        async with lock:
            hit = self._keys.get((topic, epoch))
            if hit is not None:
                return hit
            missing = self._missing.get((topic, epoch))
            if missing is not None and missing[1] > self._clock():
                raise DecryptionError("no_key", missing[0])
            deadline = self._clock() + self._wait
            while True:
                refusals, named = await self._load(topic, epoch, account.address, private)
                if (topic, epoch) in self._keys or named or self._clock() >= deadline:
                    break
                if not await self._on_chain(topic, epoch):
                    refusals.append(f"epoch {epoch} is not on chain")
                    break
                await self._sleep(KEY_SET_POLL)  # on chain, not yet here: in flight
            hit = self._keys.get((topic, epoch))
            if hit is not None:
                self._missing.pop((topic, epoch), None)
                return hit
            why = f"no key set for epoch {epoch} of {topic!r} opens for {account.address}"
            if refusals:
                why += " (" + "; ".join(refusals[:3]) + ")"
            self._missing[(topic, epoch)] = (why, self._clock() + self._ttl)
            raise DecryptionError("no_key", why)

    async def _load(
        self, topic: str, epoch: int, address: str, private: Any
    ) -> tuple[list[str], bool]:
        """Fetch key sets from `epoch` on; keep the key of every epoch whose set verifies and
        has our entry. Returns why the others were not used, and whether any set held names
        `epoch` (unverified: a gateway that lies about it can only withhold, as it can the
        events themselves)."""
        from policy import key_sets  # only a client of an encrypted topic needs them
        from policy.errors import KeySetError

        try:
            held = await self._fetch(topic, epoch)
        except Exception as exc:  # grpc errors: the reason names the call's status
            return [f"GetKeySets failed: {exc}"], False
        refusals: list[str] = []
        named = False
        for key_set in held:
            raw, signature = bytes(key_set.document), bytes(key_set.signature)
            try:
                doc = key_sets.decode(raw)
            except KeySetError as exc:
                refusals.append(str(exc))
                continue
            named = named or doc.epoch == epoch
            if doc.epoch < epoch or (topic, doc.epoch) in self._keys:
                continue
            if address.lower() not in doc.sealed:
                refusals.append(f"epoch {doc.epoch} is not sealed to {address}")
                continue
            try:
                recorded = await self._read("key_set_epoch_of", topic, key_sets.key_set_hash(raw))
                assert self.chain is not None
                key_sets.verify(
                    raw,
                    signature,
                    topic=topic,
                    owner=await self._owner(topic),
                    recorded_epoch=int(recorded),
                    registry=self.chain.registry,
                )
                self._keys[(topic, doc.epoch)] = key_sets.unseal(doc, address, private)
            except KeySetError as exc:
                refusals.append(str(exc))
        return refusals, named

    # ---- the data path -------------------------------------------------------------------------

    async def seal(self, topic: str, pbs: Sequence[PbEvent], account: Any) -> Sequence[PbEvent]:
        """`pbs` for a plaintext topic; sealed copies under the current epoch for an encrypted
        one. Raises EncryptionUnavailable (nothing must be sent then)."""
        if not pbs or not await self.is_encrypted(topic):
            return pbs
        if self.chain is None:
            raise EncryptionUnavailable(
                f"topic {topic!r} is encrypted: give the client a chain (chain=, or --rpc and "
                "--registry) to get and check its keys; nothing was sent"
            )
        epoch = await self.current_epoch(topic)
        if epoch < 1:
            raise EncryptionUnavailable(f"topic {topic!r} is encrypted but has no key epoch yet")
        try:
            key = await self.key(topic, epoch, account)
        except DecryptionError as exc:
            raise EncryptionUnavailable(
                f"cannot publish to encrypted topic {topic!r}: {exc.detail}"
            ) from exc
        return [seal_event(pb, topic, epoch, key) for pb in pbs]

    async def open(self, pb: PbEvent, topic: str, account: Any) -> PbEvent:
        """`pb` for a plaintext topic; else the opened copy. Raises DecryptionError."""
        if self.chain is None:
            if epoch_of(pb) is None:
                return pb  # we cannot know; a sealed-looking event is refused below
            raise DecryptionError(
                "no_key",
                f"event {pb.id!r} of {topic!r} is encrypted: subscribe with a chain (chain=, "
                "or --rpc and --registry) to read it",
            )
        try:
            if not await self.is_encrypted(topic):
                return pb
        except EncryptionUnavailable as exc:
            raise DecryptionError("unverifiable", str(exc)) from exc
        epoch = sealed_epoch(pb)  # DecryptionError('not_sealed'): plaintext on an encrypted topic
        try:
            key = await self.key(topic, epoch, account)
        except EncryptionUnavailable as exc:
            raise DecryptionError("no_key", str(exc)) from exc
        return open_event(pb, topic, key)
