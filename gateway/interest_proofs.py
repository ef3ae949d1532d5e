"""`ProofJudge`: federation's routing judge (`federation.routing.Judge`) on a registry gateway.

A remote region's topic interest counts here only while one of its proofs holds in THIS
gateway's view: the proof verifies (`policy.identity.verify_interest_proof`: EIP-4361 text,
EIP-191 signature, our chain id, unexpired), names the region the route is for and the
topic (or every topic), and its signer may read the topic now (`may_read`, the grant view,
so a revoke or a grant's expiry drops the route at the next re-judge). The answer keeps only
the valid proofs (latest-expiring first, at most MAX_PROOFS_PER_TOPIC) and holds until the
latest of them expires.

Cost bound: a proof's signer is recovered first (`statement_signer`, ~1 ms) and the proof is
parsed as EIP-4361 (tens of ms) only when that signer may read the topic here: a peer cannot
make this gateway parse proofs that are forged or signed by readers without a grant. Both
steps are cached by proof, bounded (LRU, `max_cached`); refusals that cannot turn valid later
(forged, malformed, wrong chain, expired) are cached too, so a peer re-sending the same bad
proofs costs a dictionary lookup. An open gateway (no registry)
uses no judge: it has no owner to protect and routes on any interest.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace

from federation.messages import MAX_PROOFS_PER_TOPIC, InterestProof, TopicInterest
from federation.routing import Judged
from gateway.access import Identity
from policy.errors import SignInNotYetValid, Unauthenticated
from policy.identity import ProvenInterest, statement_signer, verify_interest_proof

log = logging.getLogger(__name__)

# (address, topic) -> may that address read that topic now, in this gateway's view?
MayRead = Callable[[str, str], bool]


def access_reader(may_read: Callable[[Identity, str], bool]) -> MayRead:
    """Adapt an AccessControl's `may_read(identity, topic)` to (address, topic)."""
    return lambda address, topic: may_read(Identity(address), topic)


class ProofJudge:
    def __init__(
        self,
        *,
        chain_id: int,
        may_read: MayRead,
        clock: Callable[[], float] = time.time,
        max_cached: int = 4096,
    ) -> None:
        self._chain_id = chain_id
        self._may_read = may_read
        self._clock = clock
        self._max = max_cached
        self._cache: OrderedDict[InterestProof, ProvenInterest | None] = OrderedDict()
        self._signers: OrderedDict[InterestProof, str | None] = OrderedDict()

    def __call__(self, region: str, interest: TopicInterest) -> Judged | None:
        now = self._clock()
        valid: list[tuple[float, InterestProof]] = []
        for proof in interest.proofs:
            signer = self._signer(proof)
            if signer is None or not self._may_read(signer, interest.topic):
                continue  # forged, or no grant here: not worth parsing
            proven = self._verified(proof, now)
            if proven is None or not proven.covers(region, interest.topic, now):
                continue
            if self._may_read(proven.address, interest.topic):
                valid.append((proven.expires_at, proof))
        if not valid:
            return None
        valid.sort(key=lambda v: -v[0])
        kept = valid[:MAX_PROOFS_PER_TOPIC]
        return Judged(replace(interest, proofs=tuple(p for _, p in kept)), until=kept[0][0])

    def _signer(self, proof: InterestProof) -> str | None:
        if proof in self._signers:
            self._signers.move_to_end(proof)
            return self._signers[proof]
        signer = self._signers[proof] = statement_signer(proof.message, proof.signature)
        while len(self._signers) > self._max:
            self._signers.popitem(last=False)
        return signer

    def _verified(self, proof: InterestProof, now: float) -> ProvenInterest | None:
        if proof in self._cache:
            self._cache.move_to_end(proof)
            return self._cache[proof]
        try:
            proven: ProvenInterest | None = verify_interest_proof(
                proof.message, proof.signature, chain_id=self._chain_id, now=now
            )
        except SignInNotYetValid:
            return None  # may turn valid: not cached
        except Unauthenticated as exc:
            log.info("interest proof refused: %s", exc)
            proven = None
        self._cache[proof] = proven
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)
        return proven
