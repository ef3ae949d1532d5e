"""The pure parts of gateway/jetstream_groups.py: consumer names and configuration."""

from __future__ import annotations

from gateway.jetstream_groups import consumer_config, consumer_name, redelivery_backoff

S = 1_000_000_000  # ns


def test_redelivery_backs_off_like_sqlite_groups_up_to_the_cap() -> None:
    assert redelivery_backoff(30, 300) == [30 * S, 60 * S, 120 * S, 240 * S, 300 * S]
    assert redelivery_backoff(30, 10) == [30 * S]  # a cap below the timeout: no backoff
    assert len(redelivery_backoff(0.001, 300)) == 20  # bounded list; the server repeats the last


def test_consumer_names_are_fixed_size_valid_and_unambiguous() -> None:
    names = {consumer_name("a.b", "c"), consumer_name("a", "b.c"), consumer_name("a b>*", "")}
    assert len(names) == 3
    assert all(len(n) == 42 and n.replace("_", "").isalnum() for n in names)


def test_config_starts_at_the_sequence_and_waits_ack_timeout_first() -> None:
    config = consumer_config("mg.eu.e.t.*", 0, 4.0, 50, 20.0)
    assert config["opt_start_seq"] == 1 and config["ack_wait"] == 4 * S
    assert config["backoff"] == [4 * S, 8 * S, 16 * S, 20 * S]
    assert (config["ack_policy"], config["max_ack_pending"]) == ("explicit", 50)
