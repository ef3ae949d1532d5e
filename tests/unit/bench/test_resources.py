"""/proc parsing and the per-run sampler over this very process."""

from __future__ import annotations

import os

from bench.resources import (
    ProcessSampler,
    cpu_key,
    label_of,
    parse_cpu_ticks,
    parse_hwm_kib,
    rss_key,
)


def test_cpu_ticks_are_utime_plus_stime_even_with_spaces_in_the_name() -> None:
    stat = "42 (a (b) c) S 1 42 42 0 -1 4194304 100 0 0 0 7 5 0 0 20 0 1 0 100 0 0"
    assert parse_cpu_ticks(stat) == 12


def test_hwm_is_read_in_kib() -> None:
    assert parse_hwm_kib("Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t 1 kB\n") == 2048
    assert parse_hwm_kib("Name:\tx\n") is None


def test_keys_carry_the_process_label() -> None:
    assert label_of(cpu_key("gateway east")) == "gateway east"
    assert label_of(rss_key("nats west")) == "nats west"
    assert label_of("events_per_s") is None


def test_sampler_reports_cpu_per_thousand_events_and_peak_rss_of_a_live_process() -> None:
    sampler = ProcessSampler({"me": os.getpid()})
    sampler.start()
    sum(i * i for i in range(300_000))  # burn a little CPU
    metrics = sampler.finish(events=1000.0)
    assert metrics[cpu_key("me")] >= 0.0
    assert metrics[rss_key("me")] > 1.0


def test_a_process_that_is_gone_is_left_out() -> None:
    sampler = ProcessSampler({"ghost": 2**22 + 12345})
    sampler.start()
    assert sampler.finish(events=10.0) == {}
