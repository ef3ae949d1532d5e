"""`SchemaRules`: events of a (topic, type) that has schemas must match one (issue 16).

An `EventRule` (gateway/event_rules.py), run after the publisher checks at both doors that
store events. The versions come from this gateway's grant view (the chain's addSchema, in chain
order, each with the mode it was added under); `policy.schemas.compatibility.judge` decides
which are accepted, the same way in every region, and a refused one is ignored with its reason
(ListSchemas shows it). Verdicts are cached per (topic, type) until the view's versions change.

Client door (`check_publish`, all or nothing): each event whose type has accepted versions is
validated against the one its `dataschema` names or else the newest accepted; a failure raises
DataInvalid (INVALID_ARGUMENT naming the event, the version's URI and the failing path) or
UnknownSchemaVersion, and nothing of the request is stored. A dataschema naming a version this
view does not hold yet catches the view up to the chain head once before refusing.
Federation door (`admit`): the origin judged the event on its own view, which may be ahead of
or behind this one, so an event without dataschema passes if it matches any accepted version;
one naming a version newer than this view pauses the batch (AdmissionPaused, resent later).
Reasons: `schema_invalid`, `schema_unknown`.

Not validated here: encrypted events (an `mgepoch` attribute; gateways cannot read the data,
the client validates before sealing). Nothing is rewritten: `dataschema` is the client's to set
before it signs (meshgate/client/schemas.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from eventmodel.attributes import PbEvent
from eventmodel.encryption import EPOCH_ATTRIBUTE
from eventmodel.errors import UndecodableEvent
from eventmodel.sdk import JSON_VALUE_TYPE_URL
from federation.errors import AdmissionPaused
from federation.ports import InboundEvent
from gateway.view_catch_up import ViewCatchUp
from policy.grant_view import GrantView
from policy.schemas.compatibility import Verdict, judge
from policy.schemas.errors import DataInvalid, UnknownSchemaVersion
from policy.schemas.model import Mode, parse_schema_uri
from policy.schemas.payload import Payload, from_event
from policy.schemas.selection import select, validate


def payload_of(pb: PbEvent) -> Payload:
    """The event's data as schemas see it (a JSON value in an Any is its JSON text)."""
    return from_event(pb, json_value_type_url=JSON_VALUE_TYPE_URL)


def dataschema_of(pb: PbEvent) -> str | None:
    """A URI (`ce_uri`, or `ce_string` holding one: eventmodel/attributes.py validated it)."""
    value = pb.attributes.get("dataschema")
    return None if value is None else (value.ce_uri or value.ce_string)


@dataclass(frozen=True, slots=True)
class SchemaListing:
    """What ListSchemas and GET /schemagroups answer: the topic's mode and the versions."""

    compatibility: str
    versions: tuple[tuple[str, Verdict], ...]  # (type, verdict), by type then version


class SchemaRules:
    def __init__(self, view: Callable[[], GrantView], catch_up: ViewCatchUp | None = None) -> None:
        self._view = view
        self._catch_up = catch_up
        self._cache: dict[tuple[str, str], tuple[tuple[object, ...], tuple[Verdict, ...]]] = {}

    def verdicts(self, topic: str, event_type: str) -> tuple[Verdict, ...]:
        versions = self._view().schemas(topic, event_type)
        if not versions:
            return ()
        key = (topic, event_type)
        cached = self._cache.get(key)
        if cached is not None and cached[0] == versions:
            return cached[1]
        judged = judge(versions)
        self._cache[key] = (versions, judged)
        return judged

    def listing(self, topic: str, event_type: str = "") -> SchemaListing | None:
        """None for a topic this view does not know."""
        view = self._view()
        record = view.topic(topic)
        if record is None:
            return None
        types = [event_type] if event_type else view.schema_types(topic)
        rows = tuple((t, v) for t in types for v in self.verdicts(topic, t))
        return SchemaListing(_mode_name(record.compatibility), rows)

    # -- client door -----------------------------------------------------------------------

    async def check_publish(self, topic: str, events: Sequence[PbEvent]) -> None:
        if not self._view().schema_types(topic):
            return  # the common case: a topic without schemas costs one lookup per request
        chosen_for: dict[tuple[str, str | None], Verdict | None] = {}  # per request
        for pb in events:
            if EPOCH_ATTRIBUTE in pb.attributes:
                continue
            dataschema = dataschema_of(pb)
            key = (pb.type, dataschema)
            if key in chosen_for:
                chosen = chosen_for[key]
            else:
                chosen = chosen_for[key] = await self._chosen(topic, pb.type, dataschema)
            if chosen is not None:
                validate(chosen, payload_of(pb), topic=topic, event_type=pb.type, event_id=pb.id)

    async def _chosen(self, topic: str, event_type: str, dataschema: str | None) -> Verdict | None:
        verdicts = self.verdicts(topic, event_type)
        if not verdicts:
            return None
        try:
            return select(verdicts, topic, event_type, dataschema)
        except UnknownSchemaVersion:
            if self._catch_up is None or not self._is_ahead(verdicts, dataschema):
                raise
        await self._catch_up.wait()
        return select(self.verdicts(topic, event_type), topic, event_type, dataschema)

    @staticmethod
    def _is_ahead(verdicts: Sequence[Verdict], dataschema: str | None) -> bool:
        """Does `dataschema` name a version after every one this view holds?"""
        ref = parse_schema_uri(dataschema or "")
        return ref is not None and ref.version > max(v.version for v in verdicts)

    # -- federation door -------------------------------------------------------------------

    async def admit(self, events: Sequence[InboundEvent]) -> list[str | None]:
        out: list[str | None] = []
        caught_up = False
        with_schemas = {t for t in {ev.topic for ev in events} if self._view().schema_types(t)}
        for ev in events:
            if ev.topic not in with_schemas:
                out.append(None)  # the common case: no schema, nothing parsed
                continue
            try:
                pb = ev.message()
            except UndecodableEvent:
                out.append("invalid_event")
                continue
            if EPOCH_ATTRIBUTE in pb.attributes:
                out.append(None)
                continue
            verdicts = self.verdicts(ev.topic, pb.type)
            dataschema = dataschema_of(pb)
            if verdicts and self._is_ahead(verdicts, dataschema) and not caught_up:
                if self._catch_up is not None:
                    await self._catch_up.wait()
                caught_up = True
                verdicts = self.verdicts(ev.topic, pb.type)
            if verdicts and self._is_ahead(verdicts, dataschema):
                raise AdmissionPaused(f"{dataschema} is newer than this gateway's chain view")
            out.append(self._inbound_reason(ev.topic, pb, verdicts, dataschema))
        return out

    def _inbound_reason(
        self, topic: str, pb: PbEvent, verdicts: Sequence[Verdict], dataschema: str | None
    ) -> str | None:
        if not any(v.accepted for v in verdicts):
            return None
        payload = payload_of(pb)
        if dataschema:
            try:
                chosen = select(verdicts, topic, pb.type, dataschema)
            except UnknownSchemaVersion:
                return "schema_unknown"
            candidates = [] if chosen is None else [chosen]
        else:
            candidates = [v for v in verdicts if v.accepted]
        for verdict in candidates:
            try:
                validate(verdict, payload, topic=topic, event_type=pb.type, event_id=pb.id)
                return None
            except DataInvalid:
                continue
        return "schema_invalid"


def _mode_name(mode: int) -> str:
    try:
        return Mode(mode).name
    except ValueError:
        return f"UNKNOWN({mode})"
