"""Which accepted version an event is validated against, and the validation itself (pure).

An event whose (topic, type) has no accepted version is not validated. Otherwise its
`dataschema`, when present, must name an accepted version of that (topic, type) by its
meshgate URI (policy/schemas/model.py); absent, the newest accepted version applies.
"""

from __future__ import annotations

from collections.abc import Sequence

from policy.schemas.compatibility import Verdict
from policy.schemas.errors import DataInvalid, UnknownSchemaVersion
from policy.schemas.model import parse_schema_uri, schema_uri
from policy.schemas.payload import Payload


def newest_accepted(verdicts: Sequence[Verdict]) -> Verdict | None:
    return next((v for v in reversed(verdicts) if v.accepted), None)


def select(
    verdicts: Sequence[Verdict], topic: str, event_type: str, dataschema: str | None
) -> Verdict | None:
    """The version to validate against, None when there is none; UnknownSchemaVersion when
    `dataschema` names something else than an accepted version of this (topic, type)."""
    newest = newest_accepted(verdicts)
    if newest is None:
        return None
    if not dataschema:
        return newest
    ref = parse_schema_uri(dataschema)
    if ref is None or ref.topic != topic or ref.event_type != event_type:
        expected = schema_uri(topic, event_type, newest.version)
        raise UnknownSchemaVersion(
            f"dataschema {dataschema!r} names no version of the schema of {event_type!r} "
            f"on {topic!r} (e.g. {expected})"
        )
    for verdict in verdicts:
        if verdict.version == ref.version:
            if verdict.accepted:
                return verdict
            raise UnknownSchemaVersion(
                f"{dataschema} is not accepted ({verdict.reason}); newest accepted: "
                f"version {newest.version}"
            )
    raise UnknownSchemaVersion(
        f"{dataschema}: no such version (newest accepted: version {newest.version})"
    )


def validate(
    verdict: Verdict, payload: Payload, *, topic: str, event_type: str, event_id: str
) -> None:
    """DataInvalid naming the event, the version's URI and the failing path."""
    assert verdict.schema is not None
    try:
        verdict.schema.validate(payload)
    except DataInvalid as exc:
        path, detail = exc.path, exc.detail
    except RecursionError:  # data nested deeper than a validator can follow
        path, detail = "", "the data is nested too deep"
    else:
        return
    uri = schema_uri(topic, event_type, verdict.version)
    raise DataInvalid(path, detail, context=f"event {event_id!r} does not match {uri} ")
