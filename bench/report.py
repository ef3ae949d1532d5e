"""RESULTS.md: the machine, the commands, and the median figures with their ratios to NATS."""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from bench.drivers import Metrics
from bench.families import FAMILIES, Profile
from bench.harness import ratio

MESHGATE = "meshgate"
JETSTREAM = "NATS JetStream"
CORE = "core NATS"
UNITS = {"events_per_s": "events/s", "p50_ms": "p50 ms", "p99_ms": "p99 ms", "lag_ms": "ms"}


@dataclass
class Outcome:
    """Every run of one family on one system, and their per-metric medians."""

    family: str
    system: str
    runs: list[Metrics] = field(default_factory=list)
    medians: Metrics = field(default_factory=dict)
    skipped: str | None = None
    errors: list[str] = field(default_factory=list)


def _first_line(path: str, prefix: str) -> str | None:
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith(prefix):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_facts(nats_version: str) -> list[tuple[str, str]]:
    mem_kb = _first_line("/proc/meminfo", "MemTotal")
    mem = f"{int(mem_kb.split()[0]) / 1024 / 1024:.1f} GiB" if mem_kb else "unknown"
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return [
        ("CPU", _first_line("/proc/cpuinfo", "model name") or platform.processor() or "unknown"),
        ("cores", str(os.cpu_count())),
        ("memory", mem),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", platform.python_version()),
        ("grpcio", _version("grpcio")),
        ("protobuf", _version("protobuf")),
        ("nats-server", nats_version),
        ("nats-py", _version("nats-py")),
        ("meshgate commit", commit or "unknown"),
    ]


def _fmt(value: float | None, metric: str) -> str:
    if value is None:
        return "—"
    if metric.endswith("_ms"):
        return f"{value:.2f}"
    if metric == "ratio":
        return f"{value:.2f}×"
    return f"{value:,.0f}"


def _cell(outcome: Outcome | None, metric: str) -> str:
    if outcome is None:
        return "—"
    if outcome.skipped:
        return "n/a"
    if outcome.errors and not outcome.runs:
        return "failed"
    return _fmt(outcome.medians.get(metric), metric)


def render(
    *,
    outcomes: Sequence[Outcome],
    profile: Profile,
    profile_name: str,
    machine: Sequence[tuple[str, str]],
    commands: Sequence[str],
    notes: Sequence[str],
    started: str,
    wall_seconds: float,
) -> str:
    by_key = {(o.family, o.system): o for o in outcomes}
    lines = [
        "# meshgate benchmarks",
        "",
        f"Written by `make bench` on {started} (profile **{profile_name}**: {profile.runs} run(s) "
        f"per figure, medians; whole bench {wall_seconds / 60:.1f} min). Events are 1 KiB "
        "CloudEvents (meshgate) or 1 KiB messages (NATS). Benchmarks, not tests: nothing here "
        "asserts a time.",
        "",
        "## Machine",
        "",
        *(f"- {k}: {v}" for k, v in machine),
        "- Shared: 2 cores, with other engineers running test suites at the same time, so "
        "figures carry noise; meshgate and NATS runs are interleaved so both see the same load.",
        "",
        "## Commands",
        "",
        "```",
        *commands,
        "```",
        "",
        "## Summary (medians)",
        "",
        "Ratio = meshgate / NATS JetStream (the persisted, like-for-like peer). For events/s "
        "higher is better; for latency a ratio above 1 means meshgate is slower. Core NATS "
        "(at-most-once, nothing stored) is shown as a ceiling.",
        "",
        "| workload | shape | metric | meshgate | NATS JetStream | ratio | core NATS |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for family in FAMILIES:
        for metric in family.headline:
            mg = by_key.get((family.name, MESHGATE))
            js = by_key.get((family.name, JETSTREAM))
            core = by_key.get((family.name, CORE))
            r = None
            if mg and js and not mg.skipped and not js.skipped:
                r = ratio(mg.medians.get(metric), js.medians.get(metric))
            lines.append(
                f"| {family.title} | {family.describe(profile)} | {UNITS.get(metric, metric)} | "
                f"{_cell(mg, metric)} | {_cell(js, metric)} | {_fmt(r, 'ratio')} | "
                f"{_cell(core, metric)} |"
            )
    extra = [o for o in outcomes if o.family not in {f.name for f in FAMILIES}]
    if extra:
        lines += ["", "## Revocation lag (meshgate only; NATS has no on-chain grants)", ""]
        for o in extra:
            if o.skipped:
                lines.append(f"- {o.family}: not measured — {o.skipped}")
            elif not o.runs:
                lines.append(f"- {o.family}: failed — {'; '.join(o.errors)}")
            else:
                lines.append(
                    f"- {o.family}: "
                    + ", ".join(f"{k} {_fmt(v, k)}" for k, v in sorted(o.medians.items()))
                )
    lines += [
        "",
        "## Every run",
        "",
        "| workload | system | runs |",
        "|---|---|---|",
    ]
    for o in outcomes:
        if o.skipped:
            runs = f"not measured: {o.skipped}"
        else:
            runs = "; ".join(
                ", ".join(f"{k}={_fmt(v, k)}" for k, v in sorted(run.items())) for run in o.runs
            )
            if o.errors:
                runs += (" ; " if runs else "") + "errors: " + " | ".join(o.errors)
        lines.append(f"| {o.family} | {o.system} | {runs} |")
    lines += ["", "## How it is measured", "", *(f"- {n}" for n in notes), ""]
    return "\n".join(lines)


def write(path: Path, text: str) -> None:
    path.write_text(text)
