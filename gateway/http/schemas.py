"""Read access to the schema registry over HTTP, shaped like the xRegistry schema model.

Routes (no credentials: schemas live on chain; errors as every HTTP route's)::

    GET /schemagroups/{topic}/schemas                      the topic's mode and every type
    GET /schemagroups/{topic}/schemas/{type}               one type's versions (metadata)
    GET /schemagroups/{topic}/schemas/{type}/versions/{n}  the document itself

Version metadata: `{"versionid", "format", "self" (the dataschema URI), "accepted", "reason"}`;
`defaultversionid` is the newest accepted version (what an event without dataschema is
validated against). The document answers with its format's media type and the headers
`xRegistry-versionid`, `xRegistry-accepted` and `xRegistry-reason` (when not accepted).
An open gateway answers 404 (RegistryNotConfigured), an unknown topic, type or version 404.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.errors import TopicNotFound
from gateway.http.parts import HttpParts, parts_of
from gateway.http.responses import json_response
from gateway.schema_checks import SchemaListing
from gateway.schemas_rpc import listing
from policy.schemas.compatibility import Verdict
from policy.schemas.model import Format, schema_uri

MEDIA_TYPES = {
    Format.JSON: "application/schema+json",
    Format.AVRO: "application/vnd.apache.avro+json",
    Format.PROTOBUF: "application/json",  # meshgate's wrapper: message + base64 descriptor set
}


def _meta(topic: str, event_type: str, v: Verdict) -> dict[str, Any]:
    return {
        "versionid": str(v.version),
        "format": v.format.label if v.format is not None else "",
        "self": schema_uri(topic, event_type, v.version),
        "accepted": v.accepted,
        "reason": v.reason,
    }


def _schema(topic: str, event_type: str, found: SchemaListing) -> dict[str, Any]:
    versions = [v for t, v in found.versions if t == event_type]
    accepted = [v for v in versions if v.accepted]
    return {
        "schemaid": event_type,
        "versionscount": len(versions),
        "defaultversionid": str(accepted[-1].version) if accepted else None,
        "versions": {str(v.version): _meta(topic, event_type, v) for v in versions},
    }


async def list_types(request: web.Request) -> web.Response:
    topic = request.match_info["topic"]
    found = listing(parts_of(request).publishers, topic)
    types = sorted({t for t, _ in found.versions})
    return json_response(
        {
            "schemagroupid": topic,
            "compatibility": found.compatibility,
            "schemas": {t: _schema(topic, t, found) for t in types},
        }
    )


def _versions(request: web.Request) -> tuple[str, str, SchemaListing]:
    topic, event_type = request.match_info["topic"], request.match_info["type"]
    found = listing(parts_of(request).publishers, topic, event_type)
    if not found.versions:
        raise TopicNotFound(f"no schema for type {event_type!r} on {topic!r}")
    return topic, event_type, found


async def show_type(request: web.Request) -> web.Response:
    topic, event_type, found = _versions(request)
    body = _schema(topic, event_type, found)
    body["compatibility"] = found.compatibility
    return json_response(body)


async def show_version(request: web.Request) -> web.Response:
    topic, event_type, found = _versions(request)
    wanted = request.match_info["version"]
    verdict = next((v for _, v in found.versions if str(v.version) == wanted), None)
    if verdict is None:
        raise TopicNotFound(f"no version {wanted!r} of the schema of {event_type!r} on {topic!r}")
    headers = {"xRegistry-versionid": str(verdict.version)}
    headers["xRegistry-accepted"] = "true" if verdict.accepted else "false"
    if verdict.reason:
        reason = " ".join(verdict.reason.split())[:500]
        headers["xRegistry-reason"] = reason.encode("ascii", "backslashreplace").decode()
    media = MEDIA_TYPES.get(verdict.format, "application/octet-stream") if verdict.format else None
    return web.Response(
        body=verdict.document, content_type=media or "application/octet-stream", headers=headers
    )


def add_routes(app: web.Application, parts: HttpParts) -> None:
    app.router.add_get("/schemagroups/{topic}/schemas", list_types)
    app.router.add_get("/schemagroups/{topic}/schemas/{type}", show_type)
    app.router.add_get("/schemagroups/{topic}/schemas/{type}/versions/{version}", show_version)
