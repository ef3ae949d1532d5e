"""`PublisherRights`: a registry gateway stores only events an allowed publisher signed.

Every door that stores an event asks this part first (issue 11): gRPC Publish (origin), and
the federation inbound path (relay, destination) through `admit`, the federation's
`EventAdmission` port. Two checks, both in this gateway's own view:

1. the publisher signature (eventmodel/provenance.py): signed for this chain, this registry
   and this topic, by the account the event names;
2. that account is the topic's owner or an allowed publisher (policy.decide_publish), the same
   rule as for the caller. A would-be Deny first catches the view up to the chain head
   (gateway/view_catch_up.py), so a publisher added a block ago is not refused by a view one
   block behind.

Outcomes: Publish raises ProvenanceError (INVALID_ARGUMENT: "unsigned: ...", "bad proof: ...",
"bad signature: ...") or AccessDenied (PERMISSION_DENIED: "publisher 0x.. may not publish to
'orders' at block N") or AccessPaused (UNAVAILABLE, the view is stale): all or nothing, one
line. `admit` answers a reason per event (`unsigned`, `bad_proof`, `bad_signature`,
`not_publisher`) or raises AdmissionPaused while the view is stale (the batch is resent later).

Open gateways (no registry) have no PublisherRights: they accept unsigned events. Events
stored before signatures existed stay readable: nothing here runs on reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from eventmodel.attributes import PbEvent
from eventmodel.errors import ProvenanceError, UndecodableEvent
from eventmodel.provenance import Binding, ProvenanceVerifier
from federation.errors import AdmissionPaused
from federation.ports import InboundEvent
from gateway.event_rules import EventRule
from gateway.view_catch_up import ViewCatchUp
from policy import decision as policy_decision
from policy.access_policy import AccessPolicy
from policy.errors import AccessDenied, AccessPaused


class PublisherRights:
    def __init__(
        self,
        *,
        binding: Binding,
        policy: AccessPolicy,
        catch_up: ViewCatchUp | None = None,
        clock: Callable[[], float] = time.time,
        rules: Sequence[EventRule] = (),
    ) -> None:
        self.binding = binding
        self.rules = tuple(rules)  # run after the publisher checks (gateway/event_rules.py)
        self._policy = policy
        self._catch_up = catch_up
        self._clock = clock
        self.verifier = ProvenanceVerifier(binding)

    def _decide(self, address: str, topic: str) -> policy_decision.Decision:
        return policy_decision.decide_publish(
            self._policy.view,
            address.lower(),
            topic,
            self._clock(),
            self._policy.config.decision,
        )

    async def _decide_current(self, address: str, topic: str) -> policy_decision.Decision:
        decision = self._decide(address, topic)
        if isinstance(decision, policy_decision.Deny) and self._catch_up is not None:
            await self._catch_up.wait()
            decision = self._decide(address, topic)
        return decision

    async def check_publish(self, topic: str, events: Sequence[PbEvent]) -> None:
        """Before a publish is stored: every event signed, every signer allowed (see module)."""
        signers: dict[str, None] = {}
        for pb in events:
            signers[self.verifier.verify(pb, topic).publisher] = None
        for signer in signers:
            decision = await self._decide_current(signer, topic)
            if isinstance(decision, policy_decision.Deny):
                detail = decision.detail
                if decision.reason == policy_decision.DenyReason.NOT_PUBLISHER:
                    # "0x.. may not publish to 'orders' at block N", with the checksummed signer
                    detail = f"publisher {signer} {detail.split(' ', 1)[1]}"
                raise AccessDenied(str(decision.reason), detail)
            if isinstance(decision, policy_decision.Pause):
                raise AccessPaused(str(decision.reason), decision.detail)
        for rule in self.rules:
            await rule.check_publish(topic, events)

    async def admit(self, events: Sequence[InboundEvent]) -> list[str | None]:
        """Per replicated event: None to store it, or why it is refused (see module). Each
        signer is decided once per batch (a rogue batch costs one catch-up, not one each)."""
        signers: list[str | None] = []
        out: list[str | None] = []
        for ev in events:
            try:
                signers.append(self.verifier.verify(ev.message(), ev.topic).publisher)
                out.append(None)
            except ProvenanceError as exc:
                signers.append(None)
                out.append(exc.reason)
            except UndecodableEvent:
                signers.append(None)
                out.append("invalid_event")
        decided: dict[tuple[str, str], str | None] = {}
        for i, (ev, signer) in enumerate(zip(events, signers, strict=True)):
            if signer is None:
                continue
            key = (signer, ev.topic)
            if key not in decided:
                decision = await self._decide_current(signer, ev.topic)
                if isinstance(decision, policy_decision.Pause):
                    raise AdmissionPaused(
                        f"cannot decide publishers of {ev.topic!r}: {decision.detail}"
                    )
                denied = isinstance(decision, policy_decision.Deny)
                decided[key] = "not_publisher" if denied else None
            out[i] = decided[key]
        for rule in self.rules:
            passed = [i for i, reason in enumerate(out) if reason is None]
            if not passed:
                break
            verdicts = await rule.admit([events[i] for i in passed])
            for i, reason in zip(passed, verdicts, strict=True):
                out[i] = reason
        return out
