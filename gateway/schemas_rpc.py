"""ListSchemas (proto/gateway.proto) and the listing both read doors share (gRPC, HTTP).

No credentials: schemas live on chain, which anyone can read. The answer is this gateway's
view: every version the owner added, each marked accepted or not with the reason
(policy/schemas/compatibility.py), so a client sees why a version it added is ignored.
An open gateway (no registry) has no schemas: RegistryNotConfigured (FAILED_PRECONDITION);
a topic the chain does not know: TopicNotFound (NOT_FOUND).
"""

from __future__ import annotations

from gateway.errors import RegistryNotConfigured, TopicNotFound
from gateway.publishers import PublisherRights
from gateway.schema_checks import SchemaListing, SchemaRules
from gateway.topics import check_topic_name
from policy.schemas.model import schema_uri
from proto import gateway_pb2

OPEN = "this gateway runs without a registry: it has no schemas"


def schema_rules_of(publishers: PublisherRights | None) -> SchemaRules:
    """The gateway's SchemaRules (a registry gateway's publisher rules hold it)."""
    rules = publishers.rules if publishers is not None else ()
    found = next((r for r in rules if isinstance(r, SchemaRules)), None)
    if found is None:
        raise RegistryNotConfigured(OPEN)
    return found


def listing(publishers: PublisherRights | None, topic: str, event_type: str = "") -> SchemaListing:
    found = schema_rules_of(publishers).listing(check_topic_name(topic), event_type)
    if found is None:
        raise TopicNotFound(f"no topic {topic!r} on chain")
    return found


def list_schemas(
    publishers: PublisherRights | None, request: gateway_pb2.ListSchemasRequest
) -> gateway_pb2.ListSchemasResponse:
    found = listing(publishers, request.topic, request.type)
    return gateway_pb2.ListSchemasResponse(
        compatibility=found.compatibility,
        versions=[
            gateway_pb2.SchemaVersionInfo(
                topic=request.topic,
                type=event_type,
                version=v.version,
                format=v.format.label if v.format is not None else "",
                document=v.document,
                uri=schema_uri(request.topic, event_type, v.version),
                accepted=v.accepted,
                reason=v.reason,
            )
            for event_type, v in found.versions
        ],
    )
