"""The bench's pure helpers: both systems are measured with these, so they must be right."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.harness import (
    EVENT_SIZE,
    CreditWindow,
    Pacer,
    make_payload,
    median,
    median_of_runs,
    percentile,
    ratio,
    read_stamp,
    summarize_latencies,
)


def test_payload_is_one_kib_and_carries_its_stamp() -> None:
    payload = make_payload(42, 123_456_789_000)
    assert len(payload) == EVENT_SIZE
    assert read_stamp(payload) == (42, 123_456_789_000)


def test_payload_smaller_than_stamp_is_refused() -> None:
    with pytest.raises(ValueError):
        make_payload(1, 1, size=8)


def test_percentile_interpolates_between_ranks() -> None:
    samples = [4.0, 1.0, 3.0, 2.0]
    assert percentile(samples, 0) == 1.0
    assert percentile(samples, 100) == 4.0
    assert percentile(samples, 50) == 2.5
    assert percentile([10.0, 20.0], 99) == pytest.approx(19.9)


def test_percentile_rejects_empty_and_out_of_range() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=50), st.floats(0, 100))
def test_percentile_lies_within_the_samples(samples: list[float], q: float) -> None:
    value = percentile(samples, q)
    assert min(samples) - 1e-6 <= value <= max(samples) + 1e-6


def test_median_of_odd_count_is_the_middle_sample() -> None:
    assert median([5.0, 1.0, 3.0]) == 3.0


def test_latency_summary_in_milliseconds() -> None:
    summary = summarize_latencies([1_000_000 * i for i in range(1, 101)])
    assert summary.count == 100
    assert summary.p50_ms == pytest.approx(50.5)
    assert summary.p99_ms == pytest.approx(99.01)
    assert summary.p999_ms == pytest.approx(99.901)
    assert summary.max_ms == 100.0


def test_pacer_schedule_is_open_loop_and_bounded() -> None:
    pacer = Pacer(rate=1000.0, total=10)
    assert pacer.due(0.0) == 1
    assert pacer.due(0.0049) == 5
    assert pacer.due(5.0) == 10  # never more than total, however late
    assert pacer.delay_until_next(sent=3, elapsed=0.001) == pytest.approx(0.002)
    assert pacer.delay_until_next(sent=3, elapsed=0.5) == 0.0
    assert pacer.delay_until_next(sent=10, elapsed=0.0) == math.inf


def test_pacer_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        Pacer(rate=0.0, total=1)
    with pytest.raises(ValueError):
        Pacer(rate=1.0, total=-1)


def test_credit_window_bounds_in_flight_events() -> None:
    window = CreditWindow(4)
    assert window.room() == 4
    window.on_sent(4)
    assert window.room() == 0
    window.on_received(3)
    assert window.room() == 3


def test_median_of_runs_per_metric() -> None:
    runs = [{"a": 1.0, "b": 10.0}, {"a": 3.0}, {"a": 2.0, "b": 30.0}]
    assert median_of_runs(runs) == {"a": 2.0, "b": 20.0}


def test_ratio_is_none_when_a_side_is_missing() -> None:
    assert ratio(50.0, 100.0) == 0.5
    assert ratio(None, 100.0) is None
    assert ratio(1.0, 0.0) is None
