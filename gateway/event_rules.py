"""`EventRule`: a per-topic rule every stored event must pass, beside its publisher's rights.

Registry gateways judge each event at both doors that store one (issue 11): the client door
(gRPC Publish, PublishStream, HTTP ingress: `check_publish` raises, all or nothing) and the
federation door (`admit`: a reason per refused event, or AdmissionPaused to be resent later).
`PublisherRights` runs its provenance checks first, then every rule in order, so a rule only
ever sees events whose publisher is known and allowed. Rules decide from this gateway's view
of the chain (policy), never from what a peer claims.

Rules so far: encrypted topics (issue 12) and schemas (issue 16).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from eventmodel.attributes import PbEvent
from federation.ports import InboundEvent


class EventRule(Protocol):
    async def check_publish(self, topic: str, events: Sequence[PbEvent]) -> None:
        """Raise the error the client should see (eventmodel/policy/gateway errors)."""

    async def admit(self, events: Sequence[InboundEvent]) -> Sequence[str | None]:
        """Per inbound event: None to store it, or a short reason (a metric label) to refuse it.

        Raise federation.errors.AdmissionPaused when this view cannot decide yet."""
