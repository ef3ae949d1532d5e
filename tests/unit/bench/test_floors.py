"""The floors of issue 13 as pure verdicts."""

from __future__ import annotations

from bench.floors import FAIL, NONE, PASS, judge, judge_rss


def test_throughput_needs_one_and_a_half_times() -> None:
    assert judge("events_per_s", 1500.0, 1000.0).verdict == PASS
    assert judge("events_per_s", 1499.0, 1000.0).verdict == FAIL
    assert judge("events_per_s", None, 1000.0).verdict == NONE


def test_p99_must_not_exceed_jetstream() -> None:
    assert judge("p99_ms", 5.0, 5.0).verdict == PASS
    assert judge("p99_ms", 5.1, 5.0).verdict == FAIL
    assert judge("p99_ms", 5.0, None).verdict == NONE


def test_other_metrics_have_no_floor() -> None:
    judged = judge("p50_ms", 9.0, 1.0)
    assert (judged.verdict, judged.floor, judged.ratio) == (NONE, "", 9.0)


def test_gateway_rss_floor_is_120_mb() -> None:
    assert judge_rss(120.0) == PASS
    assert judge_rss(120.1) == FAIL
    assert judge_rss(None) == NONE
