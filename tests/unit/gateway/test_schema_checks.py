"""SchemaRules over a real GrantView: both doors, the version an event names, encrypted events
skipped, a version newer than the view caught up (client door) or paused (federation door)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cloudevents.core.v1.event import CloudEvent

from eventmodel import sdk
from eventmodel.attributes import PbEvent
from federation.errors import AdmissionPaused
from federation.ports import InboundEvent
from gateway.schema_checks import SchemaRules, payload_of
from policy.grant_view import CompatibilitySet, GrantView, SchemaVersionAdded, TopicRegistered
from policy.schemas.errors import DataInvalid, UnknownSchemaVersion
from policy.schemas.model import schema_uri

OWNER = "0x" + "11" * 20
V1 = {"type": "object", "properties": {"qty": {"type": "integer"}}, "required": ["qty"]}
V2_BREAKING = {**V1, "required": ["qty", "sku"]}


def view_with(*docs: Any, topic: str = "orders") -> GrantView:
    view = GrantView()
    view.apply(TopicRegistered(topic=topic, owner=OWNER, block=1))
    for i, doc in enumerate(docs, start=1):
        add(view, i, doc, topic=topic)
    return view


def add(view: GrantView, version: int, doc: Any, *, topic: str = "orders", fmt: int = 1) -> None:
    view.apply(
        SchemaVersionAdded(
            topic=topic,
            event_type="order.created",
            version=version,
            format=fmt,
            document=json.dumps(doc).encode(),
            block=1 + version,
        )
    )


def pb(data: Any, *, id: str = "e1", type: str = "order.created", **attrs: Any) -> PbEvent:
    return sdk.to_pb(CloudEvent({"type": type, "source": "/s", "id": id, **attrs}, data))


class CountingCatchUp:
    """A ViewCatchUp stand-in that applies `then` (the chain moving on) when waited on."""

    def __init__(self, then: Any = None) -> None:
        self.waits = 0
        self.then = then

    async def wait(self) -> None:
        self.waits += 1
        if self.then is not None:
            self.then()


async def test_matching_data_passes_and_bad_data_is_refused_with_the_path() -> None:
    rules = SchemaRules(lambda: view_with(V1))
    await rules.check_publish("orders", [pb({"qty": 2})])
    await rules.check_publish("orders", [pb({"anything": 1}, type="other.type")])  # no schema
    await rules.check_publish("elsewhere", [pb({"qty": "x"})])  # unknown topic: no schema
    with pytest.raises(DataInvalid) as caught:
        await rules.check_publish("orders", [pb({"qty": 1}, id="ok"), pb({"qty": "x"}, id="bad")])
    uri = schema_uri("orders", "order.created", 1)
    assert (
        str(caught.value)
        == f'event \'bad\' does not match {uri} at /qty: "x" is not of type "integer"'
    )


async def test_a_breaking_version_is_ignored_and_the_named_version_applies() -> None:
    view = view_with(V1, V2_BREAKING, {"type": "object"})
    rules = SchemaRules(lambda: view)
    listed = rules.listing("orders")
    assert listed is not None and listed.compatibility == "BACKWARD"
    assert [(v.version, v.accepted) for _, v in listed.versions] == [
        (1, True),
        (2, False),
        (3, True),
    ]
    assert "property 'sku' is required by the reader" in listed.versions[1][1].reason
    await rules.check_publish("orders", [pb({"qty": "x"})])  # newest accepted (3) takes anything
    v1 = schema_uri("orders", "order.created", 1)
    with pytest.raises(DataInvalid, match="versions/1 at /qty"):
        await rules.check_publish("orders", [pb({"qty": "x"}, dataschema=v1)])
    with pytest.raises(UnknownSchemaVersion, match="is not accepted"):
        await rules.check_publish(
            "orders", [pb({"qty": 1}, dataschema=schema_uri("orders", "order.created", 2))]
        )


async def test_a_version_set_after_none_stays_accepted() -> None:
    view = view_with(V1)
    view.apply(CompatibilitySet(topic="orders", mode=0, block=5))
    add(view, 2, V2_BREAKING)
    view.apply(CompatibilitySet(topic="orders", mode=1, block=7))
    rules = SchemaRules(lambda: view)
    with pytest.raises(DataInvalid, match='versions/2 at /: "sku" is a required property'):
        await rules.check_publish("orders", [pb({"qty": 1})])


async def test_encrypted_events_are_not_validated() -> None:
    rules = SchemaRules(lambda: view_with(V1))
    sealed = pb(b"\x00" * 40)
    sealed.attributes["mgepoch"].ce_integer = 1
    await rules.check_publish("orders", [sealed])
    assert await rules.admit([InboundEvent("orders", sealed.SerializeToString(), b"", "eu")]) == [
        None
    ]


async def test_a_newer_named_version_catches_the_view_up_first() -> None:
    view = view_with(V1)
    catch_up = CountingCatchUp(then=lambda: add(view, 2, {**V1, "properties": {"qty": {}}}))
    rules = SchemaRules(lambda: view, catch_up)  # type: ignore[arg-type]
    v2 = schema_uri("orders", "order.created", 2)
    await rules.check_publish("orders", [pb({"qty": "x"}, dataschema=v2)])
    assert catch_up.waits == 1
    with pytest.raises(UnknownSchemaVersion, match="no such version"):
        await rules.check_publish(
            "orders", [pb({"qty": 1}, dataschema=schema_uri("orders", "order.created", 9))]
        )


async def test_the_federation_door_judges_on_any_accepted_version_and_pauses_on_newer() -> None:
    view = view_with(V1, {"type": "object", "properties": {"qty": {"type": "number"}}})
    rules = SchemaRules(lambda: view, CountingCatchUp())  # type: ignore[arg-type]

    def inbound(event: PbEvent) -> InboundEvent:
        return InboundEvent("orders", event.SerializeToString(), b"", "eu")

    verdicts = await rules.admit(
        [
            inbound(pb({"qty": 1})),
            inbound(pb({"qty": 1.5})),  # only version 2 takes it: still admitted
            inbound(pb({"qty": "x"})),
            inbound(pb({"qty": 1.5}, dataschema=schema_uri("orders", "order.created", 1))),
            inbound(pb({"qty": 1}, dataschema="https://example.com/x")),
        ]
    )
    assert verdicts == [None, None, "schema_invalid", "schema_invalid", "schema_unknown"]
    with pytest.raises(AdmissionPaused, match="newer than this gateway's chain view"):
        await rules.admit(
            [inbound(pb({"qty": 1}, dataschema=schema_uri("orders", "order.created", 3)))]
        )


def test_payload_of_maps_each_data_form() -> None:
    assert payload_of(pb({"a": 1})).text == '{"a":1}' or json.loads(
        payload_of(pb({"a": 1})).text or ""
    ) == {"a": 1}
    assert payload_of(pb(b"\x01")).binary == b"\x01"
    assert payload_of(pb("hi", datacontenttype="text/plain")).text == "hi"
    empty = payload_of(pb(None))
    assert (empty.binary, empty.text, empty.proto) == (None, None, None)


async def test_avro_binary_and_protobuf_binary_events() -> None:
    import io

    import fastavro
    from google.protobuf import descriptor_pb2

    from policy.schemas import protobuf

    view = view_with()
    avro_schema = {"type": "record", "name": "Order", "fields": [{"name": "qty", "type": "int"}]}
    view.apply(
        SchemaVersionAdded(
            topic="orders",
            event_type="order.created",
            version=1,
            format=2,
            document=json.dumps(avro_schema).encode(),
            block=2,
        )
    )
    fdp = descriptor_pb2.FileDescriptorProto(name="o.proto", package="shop", syntax="proto3")
    fdp.message_type.add(name="Paid").field.add(name="qty", number=1, type=5, label=1)
    raw_set = descriptor_pb2.FileDescriptorSet(file=[fdp]).SerializeToString()
    view.apply(
        SchemaVersionAdded(
            topic="orders",
            event_type="order.paid",
            version=1,
            format=3,
            document=protobuf.document(raw_set, "shop.Paid"),
            block=3,
        )
    )
    rules = SchemaRules(lambda: view)
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(avro_schema), {"qty": 7})
    await rules.check_publish("orders", [pb(out.getvalue())])
    with pytest.raises(DataInvalid, match="not Avro binary"):
        await rules.check_publish("orders", [pb(b"\xff")])
    await rules.check_publish("orders", [pb(b"\x08\x07", type="order.paid")])
    with pytest.raises(DataInvalid, match="field number 2"):
        await rules.check_publish("orders", [pb(b"\x10\x07", type="order.paid")])


async def test_topics_without_schemas_are_not_parsed_at_the_federation_door() -> None:
    rules = SchemaRules(lambda: view_with(V1))
    junk = InboundEvent("elsewhere", b"\xff not a cloudevent", b"", "eu")
    assert await rules.admit([junk]) == [None]
    assert await rules.admit([InboundEvent("orders", b"\xff", b"", "eu")]) == ["invalid_event"]
