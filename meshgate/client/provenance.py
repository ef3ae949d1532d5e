"""What a subscriber checks of each event's publisher, without trusting its gateway (issue 11).

`EventCheck.verify(pb, topic)` returns who signed the event or raises ProvenanceError;
`failure(pb, topic)` is what a subscription asks: None to deliver, else a one-line reason.

1. always: a signed event's publisher signature and inclusion proof
   (eventmodel/provenance.py). Without a chain an unsigned event is delivered (publisher
   None): an open gateway's events, or ones stored before signing existed;
2. with a `Chain` (the client's own view of the registry) an unsigned event is refused
   (`unsigned`), so a gateway cannot slip one in; the proof must name that registry, and the
   signer must be the topic's owner or an allowed publisher (`canPublish`, a view call through
   `ledger`, imported only then), cached per (topic, signer) for `ttl` seconds so a batch
   costs one call. Without a chain, only the signature is checked: the signer is named, its
   right is not (say so to users: `meshgate subscribe` prints it in its help).

A chain that does not answer raises ProvenanceError(`unverifiable`): fail closed.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from eventmodel.attributes import PbEvent
from eventmodel.errors import ProvenanceError
from eventmodel.provenance import ProvenanceVerifier, is_signed

DEFAULT_TTL = 10.0  # s; a revoked publisher's events are refused within this


@dataclass(frozen=True, slots=True, kw_only=True)
class Chain:
    """Where a client checks publishers' rights itself."""

    rpc_url: str
    registry: str
    ttl: float = DEFAULT_TTL


class EventCheck:
    def __init__(self, chain: Chain | None = None) -> None:
        self.chain = chain
        self._signatures = ProvenanceVerifier(None)
        self._rights: dict[tuple[str, str], tuple[bool, float]] = {}
        self._registry: Any = None  # ledger.registry.RegistryClient, made on first use

    async def failure(self, pb: PbEvent, topic: str) -> str | None:
        """None when `pb` may be delivered, else why not (one line)."""
        if self.chain is None and not is_signed(pb):
            return None
        try:
            await self.verify(pb, topic)
        except ProvenanceError as exc:
            return f"publisher check failed: {exc}"
        return None

    async def verify(self, pb: PbEvent, topic: str) -> str:
        """The signer's checksummed address; raises ProvenanceError (see module)."""
        got = self._signatures.verify(pb, topic)
        if self.chain is None:
            return got.publisher
        if got.binding.registry_hex.lower() != self.chain.registry.lower():
            raise ProvenanceError(
                "bad_signature",
                f"event {pb.id!r} is signed for registry {got.binding.registry_hex}, "
                f"not {self.chain.registry}",
            )
        if not await self._may_publish(topic, got.publisher):
            raise ProvenanceError(
                "not_publisher", f"{got.publisher} may not publish to {topic!r} on chain"
            )
        return got.publisher

    async def _may_publish(self, topic: str, publisher: str) -> bool:
        assert self.chain is not None
        now = time.monotonic()
        hit = self._rights.get((topic, publisher))
        if hit is not None and hit[1] > now:
            return hit[0]
        try:
            allowed = await asyncio.to_thread(self._can_publish, topic, publisher)
        except Exception as exc:  # ledger errors, web3 transport errors: fail closed
            raise ProvenanceError("unverifiable", f"cannot ask the chain: {exc}") from exc
        self._rights[(topic, publisher)] = (allowed, now + self.chain.ttl)
        return allowed

    def _can_publish(self, topic: str, publisher: str) -> bool:
        assert self.chain is not None
        if self._registry is None:
            from ledger.config import LedgerConfig  # only a client given a chain needs web3
            from ledger.registry import RegistryClient

            config = LedgerConfig(rpc_url=self.chain.rpc_url, registry=self.chain.registry)
            self._registry = RegistryClient(config)
        return bool(self._registry.can_publish(topic, publisher))
