"""The client's side of topic schemas (issue 16): fill `dataschema`, validate before sending.

Registry gateways never rewrite an event (the publisher's signature covers every attribute),
so the client sets `dataschema` itself, before it seals and signs: for an event whose type has
accepted schema versions and no `dataschema`, the newest accepted version's URI. It validates
each such event against the version it names, so a bad event fails here with the same
DataInvalid / UnknownSchemaVersion (policy/schemas/errors.py) the gateway would answer, and
for an encrypted topic (whose data gateways cannot read) this is the only validation.

Versions come from the gateway's ListSchemas (its chain view, with each version's verdict),
cached per topic for `ttl` seconds. A gateway with no schemas to give (open: FAILED_PRECONDITION,
an old one: UNIMPLEMENTED, a topic not on chain: NOT_FOUND) means no schemas: events go as given.
policy.schemas (jsonschema-rs, fastavro) is imported only once a topic has schemas.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

import grpc

from eventmodel.attributes import PbEvent
from proto import gateway_pb2

if TYPE_CHECKING:
    from policy.schemas.compatibility import Verdict

DEFAULT_TTL = 10.0  # s: a version the owner adds reaches a publisher within this
NO_SCHEMAS = (
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.NOT_FOUND,
)
ENCRYPTED_ATTRIBUTE = "mgepoch"  # eventmodel/encryption.py EPOCH_ATTRIBUTE (not imported: nacl)

Fetch = Callable[[str], Awaitable[gateway_pb2.ListSchemasResponse]]


def _verdicts(response: gateway_pb2.ListSchemasResponse) -> dict[str, tuple[Verdict, ...]]:
    from policy.schemas.compatibility import Verdict, parse
    from policy.schemas.model import Format

    by_type: dict[str, list[Verdict]] = {}
    for info in response.versions:
        fmt = Format.from_label(info.format) if info.format else None
        schema = parse(fmt, info.document) if info.accepted and fmt is not None else None
        verdict = Verdict(info.version, fmt, info.document, schema is not None, info.reason, schema)
        by_type.setdefault(info.type, []).append(verdict)
    return {t: tuple(sorted(vs, key=lambda v: v.version)) for t, vs in by_type.items()}


class ClientSchemas:
    def __init__(
        self, fetch: Fetch, *, ttl: float = DEFAULT_TTL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[str, tuple[float, dict[str, tuple[Verdict, ...]]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def _for_topic(self, topic: str) -> dict[str, tuple[Verdict, ...]]:
        cached = self._fresh(topic)
        if cached is not None:
            return cached
        lock = self._locks.setdefault(topic, asyncio.Lock())
        async with lock:  # concurrent publishes share one ListSchemas call
            cached = self._fresh(topic)
            if cached is not None:
                return cached
            now = self._clock()
            verdicts = await self._fetched(topic)
            self._cache[topic] = (now, verdicts)
            return verdicts

    def _fresh(self, topic: str) -> dict[str, tuple[Verdict, ...]] | None:
        cached = self._cache.get(topic)
        if cached is not None and self._clock() - cached[0] < self._ttl:
            return cached[1]
        return None

    async def _fetched(self, topic: str) -> dict[str, tuple[Verdict, ...]]:
        try:
            response = await self._fetch(topic)
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in NO_SCHEMAS:
                raise
            response = gateway_pb2.ListSchemasResponse()
        return _verdicts(response) if response.versions else {}

    async def prepare(self, topic: str, pbs: Sequence[PbEvent]) -> Sequence[PbEvent]:
        """The events to send: copies with `dataschema` filled where it applies (see module),
        each validated; raises DataInvalid or UnknownSchemaVersion (nothing is sent)."""
        types = await self._for_topic(topic)
        if not types:
            return pbs
        from eventmodel.sdk import JSON_VALUE_TYPE_URL
        from policy.schemas.model import schema_uri
        from policy.schemas.payload import from_event
        from policy.schemas.selection import select, validate

        out: list[PbEvent] = []
        chosen_for: dict[tuple[str, str | None], Verdict | None] = {}
        for pb in pbs:
            verdicts = types.get(pb.type, ())
            if not verdicts or ENCRYPTED_ATTRIBUTE in pb.attributes:
                out.append(pb)
                continue
            named = pb.attributes.get("dataschema")
            dataschema = (named.ce_uri or named.ce_string) if named is not None else None
            key = (pb.type, dataschema)
            if key not in chosen_for:
                chosen_for[key] = select(verdicts, topic, pb.type, dataschema)
            chosen = chosen_for[key]
            if chosen is None:
                out.append(pb)
                continue
            payload = from_event(pb, json_value_type_url=JSON_VALUE_TYPE_URL)
            validate(chosen, payload, topic=topic, event_type=pb.type, event_id=pb.id)
            if dataschema is None:
                original, pb = pb, type(pb)()
                pb.CopyFrom(original)  # the caller's stays as given
                pb.attributes["dataschema"].ce_uri = schema_uri(topic, pb.type, chosen.version)
            out.append(pb)
        return out
