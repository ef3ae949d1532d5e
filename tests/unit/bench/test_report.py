"""RESULTS.md rendering: ratios, skipped systems and revocation rows come out as stated."""

from __future__ import annotations

from bench.families import QUICK
from bench.report import CORE, JETSTREAM, MESHGATE, Outcome, render


def _render(outcomes: list[Outcome]) -> str:
    return render(
        outcomes=outcomes,
        profile=QUICK,
        profile_name="quick",
        machine=[("cores", "2")],
        commands=["make bench"],
        notes=["a note"],
        started="today",
        wall_seconds=60.0,
    )


def test_ratio_is_meshgate_over_jetstream_and_skips_show_na() -> None:
    text = _render(
        [
            Outcome(
                "publish_batched", MESHGATE, [{"events_per_s": 500.0}], {"events_per_s": 500.0}
            ),
            Outcome(
                "publish_batched", JETSTREAM, [{"events_per_s": 2000.0}], {"events_per_s": 2000.0}
            ),
            Outcome("publish_batched", CORE, skipped="core NATS persists nothing"),
        ]
    )
    row = next(
        line for line in text.splitlines() if line.startswith("| persisted publish, batches")
    )
    assert "| 500 | 2,000 | 0.25× | n/a |" in row
    assert "not measured: core NATS persists nothing" in text


def test_slow_single_publish_is_called_out() -> None:
    text = _render(
        [Outcome("publish_single", MESHGATE, [{"events_per_s": 700.0}], {"events_per_s": 700.0})]
    )
    assert "capacity here (700 events/s, publisher alone)" in text


def test_revocation_table_per_region() -> None:
    run = {
        "revoke_tx_ms": 50.0,
        "cut_east": 1.0,
        "end_east_PERMISSION_DENIED": 1.0,
        "lag_ms_east": 12.5,
        "events_after_revoke_east": 3.0,
    }
    text = _render([Outcome("revocation_lag", MESHGATE, [run], dict(run))])
    assert "| east | 12.50 | 1/1 | PERMISSION_DENIED ×1 | 3 |" in text
