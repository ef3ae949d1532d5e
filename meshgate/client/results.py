"""What the client's calls return: publish results, received events, skipped events."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import NamedTuple

from cloudevents.core.v1.event import CloudEvent

from eventmodel import provenance

log = logging.getLogger("meshgate.client.gateway_client")


@dataclass(frozen=True, slots=True)
class PublishResult:
    offset: int
    duplicate: bool


class Received(NamedTuple):
    offset: int
    event: CloudEvent

    @property
    def publisher(self) -> str | None:
        """Who signed the event (verified unless the subscription has verify=False); None
        for an unsigned event."""
        value = self.event.get_extension(provenance.PUBLISHER)
        return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class Undecodable:
    """A delivered event no CloudEvent could be made of, whose publisher check failed, or that
    does not open (an encrypted topic: `reason` starts `cannot decrypt:`); it was acked and
    skipped."""

    offset: int
    reason: str
    raw: bytes


def log_undecodable(bad: Undecodable) -> None:
    log.warning("skipped undecodable event at offset %d: %s", bad.offset, bad.reason)
