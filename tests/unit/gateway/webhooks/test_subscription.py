"""The Subscriptions API body: parsing, defaults, refusals, the group's filter list (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from eventmodel import filters
from gateway.webhooks.errors import InvalidSubscription
from gateway.webhooks.subscription import from_record, parse

BODY: dict[str, Any] = {
    "sink": "http://127.0.0.1:9/hook",
    "config": {"topic": "orders"},
}


def test_defaults() -> None:
    sub = parse(BODY, sub_id="s1", owner=None)
    assert (sub.topic, sub.group, sub.dead_letter_topic) == ("orders", "webhook-s1", "orders.dlq")
    assert (sub.mode, sub.max_attempts, sub.events_per_post()) == ("binary", 10, 1)
    assert sub.delivery_filters() == ()
    api = sub.to_api()
    assert api["protocol"] == "HTTP" and api["protocolsettings"]["method"] == "POST"
    assert parse(api, sub_id="s1", owner=None) == sub  # GET's form round-trips through PUT


def test_source_types_and_filters_make_the_filter_list() -> None:
    body = {
        **BODY,
        "source": "/shop",
        "types": ["a", "b"],
        "filters": [{"prefix": {"subject": "eu/"}}],
        "protocolsettings": {"mode": "batch", "batchsize": "7", "headers": {"X-Key": "k"}},
        "config": {"topic": "orders", "group": "g1", "deadlettertopic": "dead", "maxattempts": 3},
    }
    sub = parse(body, sub_id="s2", owner="0xabc")
    assert sub.delivery_filters() == (
        filters.Exact("source", "/shop"),
        filters.Any((filters.Exact("type", "a"), filters.Exact("type", "b"))),
        filters.Prefix("subject", "eu/"),
    )
    assert (sub.group, sub.dead_letter_topic, sub.max_attempts) == ("g1", "dead", 3)
    assert (sub.events_per_post(), sub.headers) == (7, (("X-Key", "k"),))
    assert from_record(sub.to_record()) == sub
    assert parse({**BODY, "types": ["a"]}, sub_id="s", owner=None).delivery_filters() == (
        filters.Exact("type", "a"),
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "JSON object"),
        ({**BODY, "sinks": "x"}, r"unknown subscription field\(s\): sinks"),
        ({"sink": BODY["sink"]}, "config must be an object"),
        ({**BODY, "config": {}}, "config.topic"),
        ({**BODY, "config": {"topic": "bad topic"}}, "invalid topic name"),
        ({**BODY, "config": {"topic": "t", "colour": 1}}, "unknown config"),
        ({**BODY, "sink": "ftp://h/x"}, "http:// or https://"),
        ({**BODY, "sink": "/relative"}, "http:// or https://"),
        ({**BODY, "sink": "http://h:99999/"}, "not a URL"),
        ({**BODY, "protocol": "MQTT"}, "only HTTP"),
        ({**BODY, "protocolsettings": {"method": "PUT"}}, "must be POST"),
        ({**BODY, "protocolsettings": {"mode": "zip"}}, "mode must be one of"),
        ({**BODY, "protocolsettings": {"headers": {"ce-id": "x"}}}, "set by the gateway"),
        ({**BODY, "protocolsettings": {"headers": {"X": "a\r\nB: c"}}}, "one line"),
        ({**BODY, "protocolsettings": {"batchsize": 0}}, "batchsize"),
        ({**BODY, "config": {"topic": "t", "maxattempts": True}}, "maxattempts"),
        ({**BODY, "filters": [{"regex": {"type": "x"}}]}, "unknown filter dialect"),
        ({**BODY, "filters": {"exact": {}}}, "list of filter objects"),
        ({**BODY, "types": "a"}, "types must be a list"),
        ({**BODY, "id": "other"}, "does not match"),
    ],
)
def test_refusals_name_the_problem(body: Any, message: str) -> None:
    with pytest.raises(InvalidSubscription, match=message):
        parse(body, sub_id="s1", owner=None)


def test_ids() -> None:
    with pytest.raises(InvalidSubscription, match="invalid subscription id"):
        parse(BODY, sub_id="../x", owner=None)


def test_deep_filters_are_refused_not_recursed() -> None:
    deep: dict[str, Any] = {"exact": {"type": "x"}}
    for _ in range(10_000):
        deep = {"not": deep}
    with pytest.raises(InvalidSubscription, match="filters"):
        parse({**BODY, "filters": [deep]}, sub_id="s1", owner=None)
