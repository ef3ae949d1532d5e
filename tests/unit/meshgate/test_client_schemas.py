"""ClientSchemas: fills `dataschema` before signing, validates, caches, and treats a gateway
without schemas as "no schemas"."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest
from cloudevents.core.v1.event import CloudEvent

from eventmodel import sdk
from meshgate.client.schemas import ClientSchemas
from policy.schemas.errors import DataInvalid, UnknownSchemaVersion
from policy.schemas.model import schema_uri
from proto import gateway_pb2

SCHEMA = {"type": "object", "properties": {"qty": {"type": "integer"}}, "required": ["qty"]}


def listing(*accepted: bool) -> gateway_pb2.ListSchemasResponse:
    return gateway_pb2.ListSchemasResponse(
        compatibility="BACKWARD",
        versions=[
            gateway_pb2.SchemaVersionInfo(
                topic="orders",
                type="created",
                version=i,
                format="json",
                document=json.dumps(SCHEMA).encode(),
                accepted=ok,
                reason="" if ok else "breaks BACKWARD",
            )
            for i, ok in enumerate(accepted, start=1)
        ],
    )


class Fetch:
    def __init__(self, answer: gateway_pb2.ListSchemasResponse | grpc.StatusCode) -> None:
        self.answer = answer
        self.calls = 0

    async def __call__(self, topic: str) -> gateway_pb2.ListSchemasResponse:
        self.calls += 1
        await asyncio.sleep(0)  # a real call yields: concurrent callers get to run
        if isinstance(self.answer, grpc.StatusCode):
            raise grpc.aio.AioRpcError(self.answer, grpc.aio.Metadata(), grpc.aio.Metadata(), "x")
        return self.answer


def pb(data: object, **attrs: object) -> object:
    return sdk.to_pb(CloudEvent({"type": "created", "source": "/s", "id": "e1", **attrs}, data))


async def test_dataschema_is_filled_with_the_newest_accepted_and_the_caller_keeps_its_event() -> (
    None
):
    now = [0.0]
    fetch = Fetch(listing(True, False))
    schemas = ClientSchemas(fetch, ttl=10, clock=lambda: now[0])
    original = pb({"qty": 1})
    (sent,) = await schemas.prepare("orders", [original])  # type: ignore[list-item]
    assert sent.attributes["dataschema"].ce_uri == schema_uri("orders", "created", 1)
    assert "dataschema" not in original.attributes  # type: ignore[attr-defined]
    await schemas.prepare("orders", [pb({"qty": 2})])  # type: ignore[list-item]
    assert fetch.calls == 1  # cached
    now[0] = 11.0
    await schemas.prepare("orders", [pb({"qty": 2})])  # type: ignore[list-item]
    assert fetch.calls == 2  # the ttl passed


async def test_bad_data_and_an_ignored_version_are_refused_before_sending() -> None:
    schemas = ClientSchemas(Fetch(listing(True, False)))
    with pytest.raises(DataInvalid, match="at /qty"):
        await schemas.prepare("orders", [pb({"qty": "x"})])  # type: ignore[list-item]
    with pytest.raises(UnknownSchemaVersion, match="not accepted"):
        named = pb({"qty": 1}, dataschema=schema_uri("orders", "created", 2))
        await schemas.prepare("orders", [named])  # type: ignore[list-item]


@pytest.mark.parametrize(
    "code",
    [grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.NOT_FOUND],
)
async def test_a_gateway_without_schemas_means_events_go_as_given(code: grpc.StatusCode) -> None:
    event = pb({"qty": "anything"})
    assert await ClientSchemas(Fetch(code)).prepare("orders", [event]) == [event]  # type: ignore[list-item]


async def test_other_errors_are_raised() -> None:
    with pytest.raises(grpc.aio.AioRpcError):
        await ClientSchemas(Fetch(grpc.StatusCode.UNAVAILABLE)).prepare("orders", [pb({})])  # type: ignore[list-item]


async def test_encrypted_and_other_types_pass_untouched() -> None:
    schemas = ClientSchemas(Fetch(listing(True)))
    sealed = pb(b"\x00" * 8)
    sealed.attributes["mgepoch"].ce_integer = 1  # type: ignore[attr-defined]
    other = sdk.to_pb(CloudEvent({"type": "else", "source": "/s", "id": "e2"}, {"qty": "x"}))
    assert await schemas.prepare("orders", [sealed, other]) == [sealed, other]  # type: ignore[list-item]


async def test_concurrent_publishes_share_one_lookup() -> None:
    fetch = Fetch(listing(True))
    schemas = ClientSchemas(fetch)
    await asyncio.gather(*(schemas.prepare("orders", [pb({"qty": i})]) for i in range(5)))  # type: ignore[list-item]
    assert fetch.calls == 1
