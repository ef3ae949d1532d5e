"""The floors of issue 13, as pure judgements on the medians of one run of the bench.

- throughput (`events_per_s`): meshgate >= 1.5x JetStream at equal durability
  (meshgate `fsync` vs JetStream `sync_interval: always`; meshgate `os` vs JetStream default);
- latency (`p99_ms`): meshgate's p99 <= JetStream's at equal durability;
- memory: every meshgate gateway's peak RSS <= 120 MB under load.

Other metrics (p50, p99.9) are shown without a floor. A verdict is "PASS", "FAIL", or "—"
when either side was not measured.
"""

from __future__ import annotations

from dataclasses import dataclass

THROUGHPUT_FLOOR = 1.5
GATEWAY_RSS_MB = 120.0

PASS = "PASS"
FAIL = "FAIL"
NONE = "—"


@dataclass(frozen=True, kw_only=True)
class Judgement:
    ratio: float | None  # meshgate / JetStream
    verdict: str  # PASS, FAIL or NONE
    floor: str  # the floor in words, "" when the metric has none


def judge(metric: str, meshgate: float | None, jetstream: float | None) -> Judgement:
    """The ratio and the verdict of one metric at equal durability."""
    ratio = None
    if meshgate is not None and jetstream is not None and jetstream != 0.0:
        ratio = meshgate / jetstream
    if metric == "events_per_s":
        floor = f">= {THROUGHPUT_FLOOR}x"
        verdict = NONE if ratio is None else (PASS if ratio >= THROUGHPUT_FLOOR else FAIL)
    elif metric == "p99_ms":
        floor = "<= JetStream"
        if meshgate is None or jetstream is None:
            verdict = NONE
        else:
            verdict = PASS if meshgate <= jetstream else FAIL
    else:
        return Judgement(ratio=ratio, verdict=NONE, floor="")
    return Judgement(ratio=ratio, verdict=verdict, floor=floor)


def judge_rss(peak_mb: float | None) -> str:
    """A meshgate gateway's peak RSS against the 120 MB floor."""
    if peak_mb is None:
        return NONE
    return PASS if peak_mb <= GATEWAY_RSS_MB else FAIL
