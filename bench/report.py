"""RESULTS.md: the machine, the commands, the floors of issue 13 with PASS/FAIL, meshgate-only
rows beside their baselines, resources per process, lost events, and every run.

Rendering only: the verdicts come from bench/floors.py, the medians from bench/harness.py.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench import floors
from bench.drivers import Metrics
from bench.families import Family, Profile
from bench.harness import ratio
from bench.resources import CPU_PREFIX, RSS_PREFIX, cpu_key, label_of, rss_key
from bench.systems import CORE_NATS, MESHGATE_FSYNC, PAIRS

UNITS = {
    "events_per_s": "events/s",
    "p50_ms": "p50 ms",
    "p99_ms": "p99 ms",
    "p999_ms": "p99.9 ms",
}
SHORT_REASON = 30  # a skip reason this short is printed in the cell itself


@dataclass
class Outcome:
    """Every run of one family on one system, and their per-metric medians."""

    family: str
    system: str
    runs: list[Metrics] = field(default_factory=list)
    medians: Metrics = field(default_factory=dict)
    skipped: str | None = None
    errors: list[str] = field(default_factory=list)


def _fmt(value: float | None, metric: str) -> str:
    if value is None:
        return "—"
    if metric.endswith("_ms") or metric.startswith("lag_ms") or metric.startswith(RSS_PREFIX):
        return f"{value:.2f}" if not metric.startswith(RSS_PREFIX) else f"{value:.1f}"
    if metric.startswith(CPU_PREFIX):
        return f"{value:.3f}"
    if metric == "ratio":
        return f"{value:.2f}×"
    return f"{value:,.0f}"


def _cell(outcome: Outcome | None, metric: str) -> str:
    if outcome is None:
        return "—"
    if outcome.skipped:
        reason = outcome.skipped
        return f"n/a ({reason})" if len(reason) <= SHORT_REASON else "n/a"
    if outcome.errors and not outcome.runs:
        return "failed"
    text = _fmt(outcome.medians.get(metric), metric)
    lost = sum(run.get("lost", 0.0) for run in outcome.runs)
    if metric.endswith("_ms") and lost > 0:
        # lost events are missing from the percentiles: the figure is a lower bound
        text = f"≥ {text} (lost {lost:,.0f})"
    return text


def _measured(outcome: Outcome | None, metric: str) -> float | None:
    if outcome is None or outcome.skipped or not outcome.runs:
        return None
    return outcome.medians.get(metric)


Index = dict[tuple[str, str], Outcome]


def _floors_table(families: Sequence[Family], by_key: Index, profile: Profile) -> list[str]:
    core = any(system == CORE_NATS for _, system in by_key)
    head = "| workload | shape | metric |"
    rule = "|---|---|---|"
    for mg, js in PAIRS:
        head += f" {mg} | {js} | ratio | floor |"
        rule += "---:|---:|---:|---|"
    if core:
        head += f" {CORE_NATS} |"
        rule += "---:|"
    lines = [head, rule]
    for family in families:
        if not family.compare:
            continue
        for metric in family.headline:
            line = f"| {family.title} | {family.describe(profile)} | {UNITS.get(metric, metric)} |"
            for mg, js in PAIRS:
                mg_o, js_o = by_key.get((family.name, mg)), by_key.get((family.name, js))
                judged = floors.judge(metric, _measured(mg_o, metric), _measured(js_o, metric))
                verdict = judged.verdict
                if judged.floor and judged.verdict != floors.NONE:
                    verdict += f" ({judged.floor})"
                elif not judged.floor:
                    verdict = ""
                line += (
                    f" {_cell(mg_o, metric)} | {_cell(js_o, metric)} | "
                    f"{_fmt(judged.ratio, 'ratio')} | {verdict} |"
                )
            if core:
                line += f" {_cell(by_key.get((family.name, CORE_NATS)), metric)} |"
            lines.append(line)
    return lines


def _verdict_counts(families: Sequence[Family], by_key: Index) -> str:
    counts = {floors.PASS: 0, floors.FAIL: 0}
    for family in families:
        if not family.compare:
            continue
        for metric in family.headline:
            for mg, js in PAIRS:
                verdict = floors.judge(
                    metric,
                    _measured(by_key.get((family.name, mg)), metric),
                    _measured(by_key.get((family.name, js)), metric),
                ).verdict
                if verdict in counts:
                    counts[verdict] += 1
    return f"Floors met: {counts[floors.PASS]} PASS, {counts[floors.FAIL]} FAIL (rows above)."


def _cpu_by_process(outcome: Outcome | None) -> str:
    if outcome is None or not outcome.runs:
        return ""
    parts = [
        f"{label} {value:.3f}"
        for key, value in sorted(outcome.medians.items())
        if key.startswith(CPU_PREFIX) and (label := label_of(key)) is not None
    ]
    return ", ".join(parts)


def _shortfalls(families: Sequence[Family], by_key: Index) -> list[str]:
    """Each FAIL in words: by how much, and where the CPU went (what bounds it)."""
    lines = []
    for family in families:
        if not family.compare:
            continue
        for metric in family.headline:
            for mg, js in PAIRS:
                mg_o, js_o = by_key.get((family.name, mg)), by_key.get((family.name, js))
                mine, theirs = _measured(mg_o, metric), _measured(js_o, metric)
                judged = floors.judge(metric, mine, theirs)
                if judged.verdict != floors.FAIL or judged.ratio is None:
                    continue
                assert mine is not None and theirs is not None
                if metric == "events_per_s":
                    gap = (
                        f"{judged.ratio:.2f}× of {floors.THROUGHPUT_FLOOR}× "
                        f"({floors.THROUGHPUT_FLOOR * theirs:,.0f} events/s needed, "
                        f"{mine:,.0f} measured)"
                    )
                else:
                    gap = f"p99 {mine:.2f} ms vs {theirs:.2f} ms ({judged.ratio:.2f}×)"
                lines.append(
                    f"- {family.name}, {mg} vs {js}: {gap}; CPU s / 1k events: "
                    f"{mg}: {_cpu_by_process(mg_o)}; {js}: {_cpu_by_process(js_o)}"
                )
    if not lines:
        return []
    return ["", "Floors not met, by how much, and where the CPU went:", "", *lines]


def _meshgate_only(families: Sequence[Family], by_key: Index, profile: Profile) -> list[str]:
    rows = [f for f in families if not f.compare]
    if not rows:
        return []
    titles = {f.name: f.title for f in families}
    lines = [
        "",
        f"## meshgate-only rows ({MESHGATE_FSYNC}, beside a baseline row of the same run)",
        "",
        "| workload | shape | metric | meshgate | beside | baseline | ratio |",
        "|---|---|---|---:|---|---:|---:|",
    ]
    for family in rows:
        for metric in family.headline:
            own = by_key.get((family.name, MESHGATE_FSYNC))
            base = by_key.get((family.baseline or "", MESHGATE_FSYNC))
            r = ratio(_measured(own, metric), _measured(base, metric))
            beside = titles.get(family.baseline or "", "—")
            lines.append(
                f"| {family.title} | {family.describe(profile)} | {UNITS.get(metric, metric)} | "
                f"{_cell(own, metric)} | {beside} | {_cell(base, metric)} | {_fmt(r, 'ratio')} |"
            )
    return lines


def gateway_cpu(outcome: Outcome | None) -> float | None:
    """CPU s per 1k events summed over the row's gateway processes, median over its runs."""
    if outcome is None or outcome.skipped or not outcome.runs:
        return None
    sums = []
    for run in outcome.runs:
        cpu = [v for k, v in run.items() if k.startswith(CPU_PREFIX) and _is_gateway(k)]
        if cpu:
            sums.append(sum(cpu))
    return statistics.median(sums) if sums else None


def _is_gateway(key: str) -> bool:
    return (label_of(key) or "").startswith("gateway")


def _region_floors(families: Sequence[Family], by_key: Index) -> list[str]:
    names = {f.name for f in families}
    chosen = [f for f in floors.REGION_FLOORS if f.row in names and f.baseline in names]
    if not chosen:
        return []
    titles = {f.name: f.title for f in families}
    lines = [
        "",
        f"## Floors (issue 14): a region on a JetStream cluster ({MESHGATE_FSYNC}, same run)",
        "",
        f"Two replicas spend at most {floors.REPLICA_CPU_FLOOR}x one replica's gateway CPU per "
        "event (summed over the replicas: no coordination tax), and the region on JetStream "
        f"keeps at least {floors.JETSTREAM_REGION_FLOOR}x the SQLite region's events/s.",
        "",
        "| row | metric | measured | beside | baseline | ratio | floor | verdict |",
        "|---|---|---:|---|---:|---:|---|---|",
    ]
    for floor in chosen:
        own = by_key.get((floor.row, MESHGATE_FSYNC))
        base = by_key.get((floor.baseline, MESHGATE_FSYNC))
        if floor.metric == floors.GATEWAY_CPU:
            measured, baseline = gateway_cpu(own), gateway_cpu(base)
            shown = (_fmt(measured, CPU_PREFIX), _fmt(baseline, CPU_PREFIX))
        else:
            measured, baseline = _measured(own, floor.metric), _measured(base, floor.metric)
            shown = (_cell(own, floor.metric), _cell(base, floor.metric))
        judged = floors.judge_region(floor, measured, baseline)
        lines.append(
            f"| {titles[floor.row]} | {UNITS.get(floor.metric, floor.metric)} | {shown[0]} | "
            f"{titles[floor.baseline]} | {shown[1]} | {_fmt(judged.ratio, 'ratio')} | "
            f"{judged.floor or '—'} | {judged.verdict} |"
        )
    return lines


def _resources(families: Sequence[Family], outcomes: Sequence[Outcome]) -> list[str]:
    lines = [
        "",
        "## Resources per process (medians over runs)",
        "",
        f"Floor: every meshgate gateway's peak RSS <= {floors.GATEWAY_RSS_MB:.0f} MB under load.",
        "",
        "| workload | system | process | CPU s / 1k events | peak RSS MB | RSS floor |",
        "|---|---|---|---:|---:|---|",
    ]
    verdicts: list[str] = []
    order = {f.name: i for i, f in enumerate(families)}
    for o in sorted(outcomes, key=lambda o: order.get(o.family, len(order))):
        if o.skipped or not o.runs:
            continue
        labels = sorted({lab for k in o.medians if (lab := label_of(k)) is not None})
        for label in labels:
            rss = o.medians.get(rss_key(label))
            gateway = o.system.startswith("meshgate") and label.startswith("gateway")
            verdict = floors.judge_rss(rss) if gateway else ""
            verdicts.append(verdict)
            lines.append(
                f"| {o.family} | {o.system} | {label} | "
                f"{_fmt(o.medians.get(cpu_key(label)), cpu_key(label))} | "
                f"{_fmt(rss, rss_key(label))} | {verdict} |"
            )
    passed, failed = verdicts.count(floors.PASS), verdicts.count(floors.FAIL)
    return [*lines, "", f"RSS floor: {passed} PASS, {failed} FAIL (gateway rows above)."]


def _lost(outcomes: Sequence[Outcome]) -> list[str]:
    rows = [o for o in outcomes if any("lost" in run for run in o.runs)]
    if not rows:
        return []
    lines = [
        "",
        "## Lost events (sum over runs; a lost event did not arrive within the drain timeout)",
        "",
        "| workload | system | runs | lost |",
        "|---|---|---:|---:|",
    ]
    for o in rows:
        lost = sum(run.get("lost", 0.0) for run in o.runs)
        lines.append(f"| {o.family} | {o.system} | {len(o.runs)} | {lost:,.0f} |")
    return lines


def render(
    *,
    outcomes: Sequence[Outcome],
    families: Sequence[Family],
    profile: Profile,
    profile_name: str,
    machine: Sequence[tuple[str, str]],
    commands: Sequence[str],
    notes: Sequence[str],
    started: str,
    wall_seconds: float,
) -> str:
    by_key = {(o.family, o.system): o for o in outcomes}
    names = {f.name for f in families}
    lines = [
        "# meshgate benchmarks",
        "",
        f"Written by `make bench` on {started} (profile **{profile_name}**: {profile.runs} run(s) "
        f"per figure, interleaved, medians; whole bench {wall_seconds / 60:.1f} min). Events are "
        "1 KiB CloudEvents (meshgate) or 1 KiB messages (NATS). Benchmarks, not tests: nothing "
        "here asserts a time.",
        *(
            [
                "",
                "**Quick profile: smoke figures (1 s windows, one run), not for comparison; "
                "`make bench` (3 runs) writes the figures to compare.**",
            ]
            if profile_name == "quick"
            else []
        ),
        "",
        "## Machine",
        "",
        *(f"- {k}: {v}" for k, v in machine),
        "- Shared: 2 cores, with other engineers running test suites at the same time, so "
        "figures carry noise; all systems' runs are interleaved so they see the same load.",
        "",
        "## Commands",
        "",
        "```",
        *commands,
        "```",
        "",
        "## Floors (issue 13): meshgate vs NATS JetStream at equal durability (medians)",
        "",
        "Ratio = meshgate / JetStream of the same pair. Throughput floor: ratio >= "
        f"{floors.THROUGHPUT_FLOOR}; latency floor: meshgate p99 <= JetStream p99 (p50 and "
        "p99.9 shown without a floor). A latency cell `≥ x (lost n)`: n events (over all runs) "
        "did not arrive within the run's bound, so they are missing from its percentiles.",
        "",
        *_floors_table(families, by_key, profile),
        "",
        _verdict_counts(families, by_key),
        *_shortfalls(families, by_key),
    ]
    lines += _meshgate_only(families, by_key, profile)
    lines += _region_floors(families, by_key)
    lines += _resources(families, outcomes)
    lines += _lost(outcomes)
    for o in (o for o in outcomes if o.family not in names):
        lines += ["", "## Revocation lag (meshgate fsync only: NATS has no on-chain grants)", ""]
        lines += _revocation(o)
    lines += ["", "## Every run", "", "| workload | system | runs |", "|---|---|---|"]
    for o in outcomes:
        if o.skipped:
            runs = f"not measured: {o.skipped}"
        else:
            runs = "; ".join(
                ", ".join(
                    f"{k}={_fmt(v, k)}" for k, v in sorted(run.items()) if label_of(k) is None
                )
                for run in o.runs
            )
            if o.errors:
                runs += (" ; " if runs else "") + "errors: " + " | ".join(o.errors)
        lines.append(f"| {o.family} | {o.system} | {runs} |")
    lines += ["", "## How it is measured", "", *(f"- {n}" for n in notes), ""]
    return "\n".join(lines)


def _revocation(o: Outcome) -> list[str]:
    if o.skipped:
        return [f"Not measured: {o.skipped}."]
    if not o.runs:
        return [f"Failed: {'; '.join(o.errors)}"]
    regions = sorted(k.removeprefix("cut_") for k in o.medians if k.startswith("cut_"))
    lines = [
        f"Medians over {len(o.runs)} run(s); revoke submission (`eth_sendRawTransaction`, "
        f"mined before it returns) took {_fmt(o.medians.get('revoke_tx_ms'), 'revoke_tx_ms')} "
        "ms.",
        "",
        "| region | lag, ms (revoke mined → last delivery) | cut | ended with | events after |",
        "|---|---:|---:|---|---:|",
    ]
    for region in regions:
        cut = sum(run.get(f"cut_{region}", 0.0) for run in o.runs)
        prefix = f"end_{region}_"
        ends: dict[str, int] = {}
        for run in o.runs:
            for key in run:
                if key.startswith(prefix):
                    status = key.removeprefix(prefix)
                    ends[status] = ends.get(status, 0) + 1
        ended = ", ".join(f"{k} ×{n}" for k, n in sorted(ends.items())) or "—"
        lines.append(
            f"| {region} | {_fmt(o.medians.get(f'lag_ms_{region}'), 'lag_ms')} | "
            f"{cut:.0f}/{len(o.runs)} | {ended} | "
            f"{o.medians.get(f'events_after_revoke_{region}', 0.0):.0f} |"
        )
    if o.errors:
        lines += ["", f"Errors: {'; '.join(o.errors)}"]
    return lines


def write(path: Path, text: str) -> None:
    path.write_text(text)
