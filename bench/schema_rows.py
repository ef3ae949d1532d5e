"""Publish with a JSON Schema on the topic beside the same publish without one (issue 16).

Rows (meshgate-only, registered through bench/families.py, on the `east` registry gateway,
access control on, every event publisher-signed):

- `publish_json_none`: batches of 100 JSON events (10 fields, `datacontenttype:
  application/json`) to a topic with no schema; beside `publish_batched`.
- `publish_json_schema`: the same events to a topic whose owner added a JSON Schema for their
  type (10 typed fields, required, closed); beside `publish_json_none`, so the ratio is the
  cost of schemas alone (issue 16 aims at >= 90 %).

What the schema row pays, and only that: the gateway validates every event against the
version (gateway/schema_checks.py, jsonschema-rs), and the client looks the schema up once
(ListSchemas, cached), fills `dataschema` and validates each event before signing
(meshgate/client/schemas.py) when its hook is wired. Per run a fresh topic (registered,
publisher allowed, reader granted); before the window the row waits until the gateway lists
the version as accepted and checks that it refuses a non-matching event (INVALID_ARGUMENT),
so the figure is never of a gateway that does not validate.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import grpc

from bench.drivers import Target
from bench.families import WINDOW, Family, RowContext, publish_throughput, register
from bench.meshgate_workloads import (
    GRANT_VISIBLE_TIMEOUT,
    MeshgateTarget,
    meshgate_target,
    new_topic,
)
from bench.procs import BenchError
from policy.schemas.errors import DataInvalid
from proto import cloudevents_pb2, gateway_pb2

EVENT_TYPE = "dev.meshgate.bench.order"
REGION = "east"
NONE_ROW, SCHEMA_ROW = "publish_json_none", "publish_json_schema"
FIELDS = {
    "id": {"type": "string", "minLength": 1},
    "customer": {"type": "string"},
    "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]+$"},
    "qty": {"type": "integer", "minimum": 1},
    "price": {"type": "number", "minimum": 0},
    "currency": {"enum": ["EUR", "USD", "JPY"]},
    "express": {"type": "boolean"},
    "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 8},
    "created": {"type": "integer"},
    "stamp": {"type": "string"},
}
SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": FIELDS,
    "required": sorted(FIELDS),
    "additionalProperties": False,
}
SCHEMA_DOCUMENT = json.dumps(SCHEMA, sort_keys=True).encode()


def order_event(payload: bytes) -> cloudevents_pb2.CloudEvent:
    """A 10-field JSON order carrying the driver's payload (hex) in `stamp`."""
    document = {
        "id": uuid.uuid4().hex,
        "customer": "c-42",
        "sku": "ABC-123",
        "qty": 3,
        "price": 9.5,
        "currency": "EUR",
        "express": False,
        "tags": ["bench", "json"],
        "created": 1_700_000_000,
        "stamp": payload.hex(),
    }
    pb = cloudevents_pb2.CloudEvent(
        id=uuid.uuid4().hex,
        source="/bench/schemas",
        spec_version="1.0",
        type=EVENT_TYPE,
        text_data=json.dumps(document, separators=(",", ":")),
    )
    pb.attributes["datacontenttype"].ce_string = "application/json"
    return pb


@dataclass
class JsonTarget(MeshgateTarget):
    """A MeshgateTarget that publishes JSON orders instead of binary payloads."""

    async def publish(self, payloads: Sequence[bytes]) -> None:
        await self.publish_events([order_event(p) for p in payloads])

    async def publish_events(self, events: list[cloudevents_pb2.CloudEvent]) -> None:
        deadline = time.monotonic() + GRANT_VISIBLE_TIMEOUT
        while True:
            try:
                await self.publisher.publish_pb(self.topic, events)
            except grpc.aio.AioRpcError as exc:
                retry = (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAVAILABLE)
                if self._warm or exc.code() not in retry or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)
                continue
            self._warm = True
            return


def _chain(ctx: RowContext) -> Any:
    if ctx.chain is None:
        raise BenchError("the schema rows need the bench chain (policy on)")
    return ctx.chain


def _open_topic(chain: Any, topic: str, with_schema: bool) -> None:
    chain.open_topic(topic)
    if with_schema:
        chain.owner_client().add_schema(topic, EVENT_TYPE, 1, SCHEMA_DOCUMENT)


async def _wait_enforced(target: JsonTarget) -> None:
    """The gateway lists the version as accepted and refuses an order that breaks it."""
    request = gateway_pb2.ListSchemasRequest(topic=target.topic, type=EVENT_TYPE)
    deadline = time.monotonic() + GRANT_VISIBLE_TIMEOUT
    while True:
        try:
            listed = await target.publisher.stub.ListSchemas(request, timeout=30)
        except grpc.aio.AioRpcError as exc:
            raise BenchError(f"the gateway does not list schemas: {exc.code().name}") from exc
        if any(v.accepted for v in listed.versions):
            break
        if time.monotonic() > deadline:
            raise BenchError("the gateway did not list the schema within 30 s")
        await asyncio.sleep(0.1)
    await target.publish([b"warm"])
    bad = order_event(b"bad")
    bad.text_data = bad.text_data.replace('"qty":3', '"qty":0')
    try:
        await target.publish_events([bad])
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
            return
        raise
    except DataInvalid:  # the client's own check refused it first: as good a proof
        return
    raise BenchError("the gateway stored an order its schema refuses: not validating")


@asynccontextmanager
async def schema_target(ctx: RowContext, family: Family) -> AsyncIterator[Target]:
    chain = _chain(ctx)
    topic = new_topic("schema")
    with_schema = family.name == SCHEMA_ROW
    await asyncio.to_thread(_open_topic, chain, topic, with_schema)
    addr = ctx.addr(REGION)
    async with meshgate_target(
        addr, addr, window=WINDOW, topic=topic, publisher=chain.publisher, reader=chain.reader
    ) as base:
        target = JsonTarget(base.publisher, base.subscriber, topic, WINDOW)
        if with_schema:
            await _wait_enforced(target)
        yield target


def _row(name: str, title: str, baseline: str) -> Family:
    return Family(
        name=name,
        title=title,
        driver=publish_throughput,
        cross_region=False,
        compare=False,
        baseline=baseline,
        headline=("events_per_s",),
        concurrency=4,
        batch=100,
        target=schema_target,
        processes=(REGION,),
    )


register(
    _row(
        NONE_ROW,
        "persisted publish of 10-field JSON events, batches of 100, access control on, no schema",
        "publish_batched",
    )
)
register(
    _row(
        SCHEMA_ROW,
        "the same with a JSON Schema on the topic (validated by client and gateway)",
        NONE_ROW,
    )
)
