"""The JetStream store's subject layout (pure): names as tokens, records from headers."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.jetstream_layout import (
    Layout,
    dedup_key,
    event_headers,
    stored_event,
    token,
    untoken,
)
from gateway.store import NewEvent


@given(st.text(min_size=1, max_size=60))
def test_token_round_trips_and_is_one_subject_token(name: str) -> None:
    tok = token(name)
    assert untoken(tok) == name
    assert not set(tok) & {".", "*", ">", " ", "\t", "\r", "\n"}


def test_topic_names_with_dots_stay_apart_from_their_neighbours() -> None:
    layout = Layout("eu")
    key = dedup_key("/s", "1")
    assert layout.event("a.b", key) == f"mg.eu.e.a~2Eb.{key}"
    assert layout.topic_of(layout.event("a.b", key)) == "a.b"
    assert layout.topic_of(layout.head("a_b")) == "a_b"
    assert layout.event("a.b", key) != layout.event("a~2Eb", key)


def test_dedup_key_separates_source_and_id() -> None:
    assert dedup_key("/a", "b/c") != dedup_key("/a/b", "c")
    assert dedup_key("s", "1") == dedup_key("s", "1")


def test_stored_event_reads_back_what_the_headers_carry() -> None:
    layout = Layout("eu")
    event = NewEvent("/s", "1", "t", b"payload")
    headers = event_headers(7, "us", b"\x00blob", 1234.5, 99)
    key = dedup_key(event.source, event.id)
    row = stored_event(layout, 42, layout.event("orders", key), headers, event.payload)
    assert (row.seq, row.topic, row.offset, row.origin_region) == (42, "orders", 7, "us")
    assert (row.replication, row.received_at, row.size) == (b"\x00blob", 1234.5, 7)
    local = event_headers(0, "eu", None, 1.0, 0)
    assert stored_event(layout, 1, layout.event("o", key), local, b"").replication is None
