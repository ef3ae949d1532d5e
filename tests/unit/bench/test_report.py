"""RESULTS.md rendering: pairs at equal durability with verdicts, skips, meshgate-only rows,
resources with the RSS floor, and revocation rows come out as stated."""

from __future__ import annotations

from bench.families import FAMILIES, QUICK
from bench.report import Outcome, render
from bench.resources import cpu_key, rss_key
from bench.systems import JETSTREAM_ALWAYS, JETSTREAM_DEFAULT, MESHGATE_FSYNC, MESHGATE_OS


def _render(outcomes: list[Outcome]) -> str:
    return render(
        outcomes=outcomes,
        families=FAMILIES,
        profile=QUICK,
        profile_name="quick",
        machine=[("cores", "2")],
        commands=["make bench"],
        notes=["a note"],
        started="today",
        wall_seconds=60.0,
    )


def _done(family: str, system: str, metrics: dict[str, float]) -> Outcome:
    return Outcome(family, system, [dict(metrics)], dict(metrics))


def _row(text: str, prefix: str, metric: str = "") -> str:
    return next(
        line for line in text.splitlines() if line.startswith(prefix) and f"| {metric}" in line
    )


def test_each_pair_has_its_ratio_and_verdict_and_a_missing_side_shows_why() -> None:
    text = _render(
        [
            _done("publish_batched", MESHGATE_FSYNC, {"events_per_s": 3000.0}),
            _done("publish_batched", JETSTREAM_ALWAYS, {"events_per_s": 1000.0}),
            Outcome("publish_batched", MESHGATE_OS, skipped="no --durability yet"),
            _done("publish_batched", JETSTREAM_DEFAULT, {"events_per_s": 20000.0}),
        ]
    )
    row = _row(text, "| persisted publish, batches")
    assert "| 3,000 | 1,000 | 3.00× | PASS (>= 1.5x) |" in row
    assert "| n/a (no --durability yet) | 20,000 | — | — |" in row


def test_throughput_below_one_and_a_half_fails() -> None:
    text = _render(
        [
            _done("pubsub", MESHGATE_FSYNC, {"events_per_s": 1400.0}),
            _done("pubsub", JETSTREAM_ALWAYS, {"events_per_s": 1000.0}),
        ]
    )
    assert "| 1.40× | FAIL (>= 1.5x) |" in _row(text, "| publish to subscribe, one region")
    assert "Floors met: 0 PASS, 1 FAIL" in text
    assert "- pubsub, meshgate fsync vs JetStream always: 1.40× of 1.5× (1,500 events/s" in text


def test_p99_is_judged_and_p50_is_not() -> None:
    mg = {"p50_ms": 2.0, "p99_ms": 4.0, "p999_ms": 9.0}
    js = {"p50_ms": 1.0, "p99_ms": 5.0, "p999_ms": 8.0}
    text = _render(
        [_done("latency_1k", MESHGATE_FSYNC, mg), _done("latency_1k", JETSTREAM_ALWAYS, js)]
    )
    assert "| 4.00 | 5.00 | 0.80× | PASS (<= JetStream) |" in _row(
        text, "| latency at 1,000 events/s, one region", "p99 ms"
    )
    assert "| 2.00 | 1.00 | 2.00× |  |" in _row(
        text, "| latency at 1,000 events/s, one region", "p50 ms"
    )


def test_resources_judge_gateways_against_the_rss_floor_only() -> None:
    metrics = {
        "events_per_s": 1.0,
        cpu_key("gateway"): 0.05,
        rss_key("gateway"): 130.0,
        rss_key("harness"): 200.0,
    }
    text = _render([_done("publish_single", MESHGATE_FSYNC, metrics)])
    assert "| publish_single | meshgate fsync | gateway | 0.050 | 130.0 | FAIL |" in text
    assert "| publish_single | meshgate fsync | harness | — | 200.0 |  |" in text
    every_run = text.split("## Every run")[1]
    assert "rss_mb" not in every_run


def test_meshgate_only_rows_sit_beside_their_baseline() -> None:
    text = _render(
        [
            _done("pubsub", MESHGATE_FSYNC, {"events_per_s": 1000.0}),
            _done("pubsub_signed", MESHGATE_FSYNC, {"events_per_s": 500.0}),
        ]
    )
    row = _row(text, "| publish to subscribe, one region, access control on")
    assert "| 500 | publish to subscribe, one region | 1,000 | 0.50× |" in row


def test_revocation_table_per_region() -> None:
    run = {
        "revoke_tx_ms": 50.0,
        "cut_east": 1.0,
        "end_east_PERMISSION_DENIED": 1.0,
        "lag_ms_east": 12.5,
        "events_after_revoke_east": 3.0,
    }
    text = _render([Outcome("revocation_lag", MESHGATE_FSYNC, [run], dict(run))])
    assert "| east | 12.50 | 1/1 | PERMISSION_DENIED ×1 | 3 |" in text


def test_a_latency_with_lost_events_is_shown_as_a_lower_bound() -> None:
    mg = {"p50_ms": 2.0, "p99_ms": 4.0, "p999_ms": 9.0, "lost": 12.0}
    text = _render([_done("latency_1k", MESHGATE_FSYNC, mg)])
    row = _row(text, "| latency at 1,000 events/s, one region", "p99 ms")
    assert "| ≥ 4.00 (lost 12) |" in row
