"""`judge`: every compatibility mode accepts and refuses what it should, each refusal with its
reason; the mode in force when a version was added is the one it is judged under; URIs and
the choice of version for an event."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policy.grant_view import SchemaVersion
from policy.schemas.compatibility import judge
from policy.schemas.errors import DataInvalid, UnknownSchemaVersion
from policy.schemas.model import Format, Mode, parse_schema_uri, schema_uri
from policy.schemas.payload import Payload
from policy.schemas.selection import select, validate


def closed(*optional: str, required: tuple[str, ...] = ("id",)) -> dict[str, Any]:
    names = ("id", *optional, *required)
    return {
        "type": "object",
        "properties": {n: {"type": "string"} for n in names},
        "required": list(required),
        "additionalProperties": False,
    }


V1 = closed("note")
ADD_OPTIONAL = closed("note", "extra")  # reads v1 data (backward); v1 refuses "extra" (not forward)
REQUIRE_NOTE = closed(required=("id", "note"))  # v1 reads its data (forward), not backward


def versions(
    *docs: Any, mode: Mode = Mode.BACKWARD, fmt: Format = Format.JSON
) -> list[SchemaVersion]:
    return [
        SchemaVersion(
            i + 1, int(fmt), doc if isinstance(doc, bytes) else json.dumps(doc).encode(), int(mode)
        )
        for i, doc in enumerate(docs)
    ]


def verdicts(*docs: Any, mode: Mode) -> list[tuple[bool, str]]:
    return [(v.accepted, v.reason) for v in judge(versions(*docs, mode=mode))]


@pytest.mark.parametrize(
    ("mode", "second", "accepted"),
    [
        (Mode.NONE, REQUIRE_NOTE, True),
        (Mode.BACKWARD, ADD_OPTIONAL, True),
        (Mode.BACKWARD, REQUIRE_NOTE, False),
        (Mode.FORWARD, REQUIRE_NOTE, True),
        (Mode.FORWARD, ADD_OPTIONAL, False),
        (Mode.FULL, ADD_OPTIONAL, False),
        (Mode.FULL, REQUIRE_NOTE, False),
        (Mode.FULL, V1, True),
    ],
)
def test_each_mode_against_the_previous_version(mode: Mode, second: Any, accepted: bool) -> None:
    (ok1, _), (ok2, reason) = verdicts(V1, second, mode=mode)
    assert ok1 and ok2 is accepted
    if not accepted:
        assert reason.startswith(f"breaks {mode.name} against version 1: at /")


def test_full_accepts_a_field_both_sides_may_omit() -> None:
    open_old = {"type": "object", "properties": {"id": {"type": "string"}}}
    assert [ok for ok, _ in verdicts(open_old, open_old, mode=Mode.FULL)] == [True, True]


def record(*fields: dict[str, Any]) -> dict[str, Any]:
    return {"type": "record", "name": "R", "fields": list(fields)}


# Avro resolution is not transitive: v2 drops "a", v3 brings it back as a string with a
# default. v3 fits v2 both ways; against v1 (an int "a") it fails both ways.
AVRO_CHAIN = (
    record({"name": "a", "type": "int", "default": 0}),
    record(),
    record({"name": "a", "type": "string", "default": ""}),
)


@pytest.mark.parametrize("mode", [Mode.BACKWARD, Mode.FORWARD, Mode.FULL])
def test_transitive_modes_compare_with_every_accepted_version(mode: Mode) -> None:
    plain = judge(versions(*AVRO_CHAIN, mode=mode, fmt=Format.AVRO))
    transitive = judge(versions(*AVRO_CHAIN, mode=Mode[mode.name + "_TRANSITIVE"], fmt=Format.AVRO))
    assert [v.accepted for v in plain] == [True, True, True]
    assert [v.accepted for v in transitive] == [True, True, False]
    assert transitive[2].reason.startswith(f"breaks {mode.name}_TRANSITIVE against version 1")


def test_a_refused_version_is_ignored_and_later_ones_compare_with_the_accepted() -> None:
    result = verdicts(V1, REQUIRE_NOTE, ADD_OPTIONAL, mode=Mode.BACKWARD)
    assert [ok for ok, _ in result] == [True, False, True]


def test_the_mode_in_force_when_added_is_the_one_applied() -> None:
    # the owner switched to NONE, added a breaking v2, switched back to BACKWARD, added v3
    vs = versions(V1, REQUIRE_NOTE, mode=Mode.BACKWARD)
    vs[1] = SchemaVersion(2, 1, vs[1].document, int(Mode.NONE))
    vs.append(SchemaVersion(3, 1, json.dumps(closed("x", required=("id", "note"))).encode(), 1))
    assert [v.accepted for v in judge(vs)] == [True, True, True]


def test_invalid_documents_and_format_changes_are_not_accepted() -> None:
    vs = versions(b"{not json", V1)
    vs.append(SchemaVersion(3, int(Format.AVRO), b'"string"', int(Mode.BACKWARD)))
    vs.append(SchemaVersion(4, 9, b"x", 1))
    result = judge(vs)
    assert [v.accepted for v in result] == [False, True, False, False]
    assert result[0].reason.startswith("invalid schema: not a JSON document")
    assert result[2].reason == "breaks BACKWARD against version 2: format changed from json to avro"
    assert "unknown schema format 9" in result[3].reason
    none = judge(
        [SchemaVersion(1, 1, json.dumps(V1).encode(), 1), SchemaVersion(2, 2, b'"int"', 0)]
    )
    assert [v.accepted for v in none] == [True, True]


def test_uris_round_trip_and_foreign_ones_are_none() -> None:
    uri = schema_uri("orders", "order.created", 2)
    assert uri == "meshgate://schemagroups/orders/schemas/order.created/versions/2"
    ref = parse_schema_uri(uri)
    assert ref is not None and (ref.topic, ref.event_type, ref.version) == (
        "orders",
        "order.created",
        2,
    )
    odd = schema_uri("orders", "a/b c", 1)
    parsed = parse_schema_uri(odd)
    assert parsed is not None and parsed.event_type == "a/b c"
    for other in ("https://example.com/s.json", uri + "/x", uri.replace("/2", "/0")):
        assert parse_schema_uri(other) is None


def test_select_picks_the_newest_or_the_named_accepted_version() -> None:
    result = judge(versions(V1, REQUIRE_NOTE, ADD_OPTIONAL))
    assert select(result, "t", "ty", None).version == 3  # type: ignore[union-attr]
    assert select(result, "t", "ty", schema_uri("t", "ty", 1)).version == 1  # type: ignore[union-attr]
    with pytest.raises(UnknownSchemaVersion, match="not accepted"):
        select(result, "t", "ty", schema_uri("t", "ty", 2))
    with pytest.raises(UnknownSchemaVersion, match="no such version"):
        select(result, "t", "ty", schema_uri("t", "ty", 7))
    with pytest.raises(UnknownSchemaVersion, match="names no version"):
        select(result, "t", "ty", schema_uri("other", "ty", 1))
    with pytest.raises(UnknownSchemaVersion, match="names no version"):
        select(result, "t", "ty", "https://example.com/s.json")
    assert select(judge(versions(b"bad")), "t", "ty", "anything") is None


def test_validate_names_the_event_the_version_and_the_path() -> None:
    newest = select(judge(versions(V1)), "orders", "created", None)
    assert newest is not None
    validate(
        newest, Payload(text='{"id": "x"}'), topic="orders", event_type="created", event_id="e"
    )
    with pytest.raises(DataInvalid) as caught:
        validate(
            newest, Payload(text='{"id": 5}'), topic="orders", event_type="created", event_id="e1"
        )
    text = str(caught.value)
    assert text.startswith("event 'e1' does not match meshgate://schemagroups/orders/schemas/")
    assert "/versions/1 at /id: 5 is not of type" in text


@settings(max_examples=300, deadline=None)
@given(
    documents=st.lists(
        st.tuples(
            st.sampled_from([1, 2, 3, 4]),
            st.one_of(
                st.binary(max_size=64),
                st.recursive(
                    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5)),
                    lambda kids: st.one_of(
                        st.lists(kids, max_size=3),
                        st.dictionaries(
                            st.sampled_from(["type", "name", "fields", "items", "anyOf", "x"]),
                            kids,
                            max_size=3,
                        ),
                    ),
                    max_leaves=8,
                ).map(lambda v: json.dumps(v).encode()),
            ),
            st.integers(0, 7),
        ),
        min_size=1,
        max_size=4,
    ),
    data=st.binary(max_size=32),
)
def test_any_document_and_data_give_a_verdict_or_a_schema_error(
    documents: list[tuple[int, bytes, int]], data: bytes
) -> None:
    """What every gateway runs on owner-supplied bytes never fails other than by its rules."""
    versions = [SchemaVersion(i + 1, f, d, m) for i, (f, d, m) in enumerate(documents)]
    result = judge(versions)
    assert len(result) == len(versions)
    for verdict in result:
        assert verdict.accepted or verdict.reason
        if verdict.accepted:
            for payload in (Payload(binary=data), Payload(text=data.decode("latin-1"))):
                with contextlib.suppress(DataInvalid):
                    validate(verdict, payload, topic="t", event_type="x", event_id="e")
