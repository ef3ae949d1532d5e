"""`PublishDoor`: the checks every gRPC publish passes, for Publish and PublishStream alike.

One request (a topic and a batch of events) is admitted in this order, the same at both RPCs
(and as the HTTP ingress, gateway/http/ingress.py, does with its own request shape):

1. the topic name, then a non-empty batch (INVALID_ARGUMENT);
2. the caller: `identity()` (Publish authenticates its credentials; a PublishStream request
   without credentials reuses its stream's), `wait_current`, `check_publish` (NOT_FOUND,
   PERMISSION_DENIED, UNAVAILABLE while the view is stale; a session past its expiry or
   outside its topics is refused here on every request);
3. each event through `gateway.events.validate`, then on a registry gateway the publisher
   checks and the EventRules (`PublisherRights.check_publish`): all or nothing.

`admit` returns the staged events (canonical bytes); nothing is stored here. The caller
appends them and calls `count` with the results once they are durable.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence

from eventmodel import event_spans
from eventmodel.attributes import PbEvent
from gateway import events
from gateway.access import AccessControl, Identity, enforce
from gateway.config import GatewayConfig
from gateway.errors import InvalidRequest
from gateway.metrics import GatewayMetrics
from gateway.publishers import PublisherRights
from gateway.store import AppendResult, NewEvent
from gateway.topics import check_topic_name


class PublishDoor:
    def __init__(
        self,
        config: GatewayConfig,
        access: AccessControl,
        metrics: GatewayMetrics,
        publishers: PublisherRights | None,
    ) -> None:
        self.config = config
        self.access = access
        self.metrics = metrics
        self.publishers = publishers

    async def admit(
        self,
        topic: str,
        pbs: Sequence[PbEvent],
        identity: Callable[[], Awaitable[Identity]],
    ) -> tuple[str, list[NewEvent]]:
        """Check one publish (see the module docstring); raise the error its caller gets."""
        topic = check_topic_name(topic)
        if not pbs:
            raise InvalidRequest("publish carries no events")
        caller = await identity()
        await self.access.wait_current(caller, topic, publish=True)
        enforce(self.access.check_publish(caller, topic), "publish to", topic)
        for pb in pbs:
            events.validate(pb, self.config.max_event_bytes)
        if self.publishers is not None:  # before anything is stored (gateway/publishers.py)
            await self.publishers.check_publish(topic, pbs)
        if event_spans.ON:  # issue 16: an open gateway gives an event its trace context once
            event_spans.ingest(topic, pbs, stamp=self.publishers is None)
        return topic, [
            NewEvent(pb.source, pb.id, pb.type, pb.SerializeToString(deterministic=True))
            for pb in pbs
        ]

    def count(self, topic: str, results: Sequence[AppendResult], started: float) -> None:
        """Metrics of one answered publish (`started`: its `time.perf_counter()` at arrival)."""
        fresh = sum(1 for r in results if not r.duplicate)
        self.metrics.events_in.labels(topic).inc(fresh)
        if fresh != len(results):
            self.metrics.duplicates.labels(topic).inc(len(results) - fresh)
        self.metrics.publish_latency.observe(time.perf_counter() - started)
