"""The floors of issues 13 and 14, as pure judgements on the medians of one run of the bench.

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


# -- issue 14: a region on a JetStream cluster ------------------------------------------------

REPLICA_CPU_FLOOR = 1.2  # two replicas' gateway CPU per event (summed) <= 1.2x one replica's
JETSTREAM_REGION_FLOOR = 0.5  # a region on JetStream >= 0.5x the SQLite region's events/s
GATEWAY_CPU = "gateway CPU s / 1k events, summed over the replicas"


@dataclass(frozen=True, kw_only=True)
class RegionFloor:
    """One floor of issue 14: `row`'s figure against `baseline`'s of the same run."""

    row: str
    baseline: str
    metric: str  # "events_per_s" or GATEWAY_CPU
    bound: float | None  # events/s: ratio >= bound; CPU: ratio <= bound; None: shown only


REGION_FLOORS = (
    RegionFloor(
        row="js2_publish", baseline="js1_publish", metric=GATEWAY_CPU, bound=REPLICA_CPU_FLOOR
    ),
    RegionFloor(
        row="js2_publish_split", baseline="js1_publish", metric=GATEWAY_CPU, bound=REPLICA_CPU_FLOOR
    ),
    # what a client that ignores writer hints costs (the forward hop): the product's client
    # follows them (js2_publish), so this row has no floor
    RegionFloor(row="js2_publish_unrouted", baseline="js1_publish", metric=GATEWAY_CPU, bound=None),
    RegionFloor(
        row="js2_pubsub", baseline="js1_pubsub", metric=GATEWAY_CPU, bound=REPLICA_CPU_FLOOR
    ),
    RegionFloor(
        row="js1_publish",
        baseline="publish_batched",
        metric="events_per_s",
        bound=JETSTREAM_REGION_FLOOR,
    ),
    RegionFloor(
        row="js2_publish",
        baseline="publish_batched",
        metric="events_per_s",
        bound=JETSTREAM_REGION_FLOOR,
    ),
    RegionFloor(
        row="js1_pubsub", baseline="pubsub", metric="events_per_s", bound=JETSTREAM_REGION_FLOOR
    ),
    RegionFloor(
        row="js2_pubsub", baseline="pubsub", metric="events_per_s", bound=JETSTREAM_REGION_FLOOR
    ),
)


def judge_region(floor: RegionFloor, measured: float | None, baseline: float | None) -> Judgement:
    """The ratio and verdict of one issue-14 floor (CPU: at most; events/s: at least)."""
    if measured is None or baseline is None or baseline == 0.0:
        return Judgement(ratio=None, verdict=NONE, floor="")
    ratio = measured / baseline
    if floor.bound is None:
        return Judgement(ratio=ratio, verdict=NONE, floor="")
    if floor.metric == GATEWAY_CPU:
        return Judgement(
            ratio=ratio, verdict=PASS if ratio <= floor.bound else FAIL, floor=f"<= {floor.bound}x"
        )
    return Judgement(
        ratio=ratio, verdict=PASS if ratio >= floor.bound else FAIL, floor=f">= {floor.bound}x"
    )
