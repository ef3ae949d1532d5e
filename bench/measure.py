"""The measuring loop: every family on its systems, runs interleaved, resources bracketed.

Runs are interleaved (run 1 of every system, then run 2, ...) so background load on the
shared machine hits all systems alike; each figure is the median over the runs. Around the
driver of each run a `ProcessSampler` reads CPU and peak RSS of the system's processes and of
the harness itself (bench/resources.py). A run that fails is reported, not retried; a
registered row whose `setup` raises is "not measured" with the reason.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence

from bench import report
from bench.families import Family, Profile
from bench.harness import median_of_runs
from bench.meshgate_system import REVOCATION, MeshgateSystem
from bench.procs import BenchError
from bench.resources import ProcessSampler
from bench.systems import System

log = logging.getLogger("bench")

RUN_TIMEOUT = 180.0  # no single run may take longer than this, whatever the system does
HARNESS = "harness"


async def one_run(system: System, family: Family, profile: Profile) -> report.Metrics:
    async with asyncio.timeout(RUN_TIMEOUT):
        async with system.target(family) as target:
            sampler = ProcessSampler({**system.processes(family), HARNESS: os.getpid()})
            sampler.start()
            metrics = await family.driver(target, family.params(profile))
            metrics.update(sampler.finish(metrics.get("events", 0.0)))
            path = getattr(target, "uses_publish_stream", None)
            flag = path() if callable(path) else None
            if flag is not None:
                metrics["publish_stream"] = flag
            return metrics


def _set_up(family: Family, row_context: MeshgateSystem) -> str | None:
    """Run a registered row's setup; the reason it cannot be measured, or None."""
    if family.setup is None or row_context.unavailable is not None:
        return None
    try:
        family.setup(row_context)
    except BenchError as exc:
        return f"setup failed: {exc}".splitlines()[0]
    return None


async def measure(
    families: Sequence[Family],
    systems_for: dict[str, Sequence[System]],
    row_context: MeshgateSystem,
    profile: Profile,
) -> list[report.Outcome]:
    """Outcomes of every family on the systems `systems_for[family.name]` names."""
    outcomes: list[report.Outcome] = []
    for family in families:
        systems = systems_for[family.name]
        row = [report.Outcome(family=family.name, system=s.name) for s in systems]
        setup_failure = await asyncio.to_thread(_set_up, family, row_context)
        for outcome, system in zip(row, systems, strict=True):
            outcome.skipped = system.skip_reason(family) or setup_failure
        for run in range(profile.runs):
            for outcome, system in zip(row, systems, strict=True):
                if outcome.skipped:
                    continue
                log.info("%s on %s, run %d/%d", family.name, system.name, run + 1, profile.runs)
                try:
                    metrics = await one_run(system, family, profile)
                except Exception as exc:
                    log.warning("%s on %s failed: %r", family.name, system.name, exc)
                    outcome.errors.append(f"run {run + 1}: {type(exc).__name__}: {exc}"[:300])
                    continue
                log.info("  %s", {k: round(v, 3) for k, v in metrics.items() if "[" not in k})
                outcome.runs.append(metrics)
        for outcome in row:
            outcome.medians = median_of_runs(outcome.runs)
        outcomes.extend(row)
    return outcomes


async def measure_revocation(meshgate: MeshgateSystem, profile: Profile) -> report.Outcome:
    outcome = report.Outcome(family=REVOCATION, system=meshgate.name)
    outcome.skipped = meshgate.revocation_skip_reason()
    if outcome.skipped:
        return outcome
    for run in range(profile.runs):
        log.info("%s, run %d/%d", REVOCATION, run + 1, profile.runs)
        try:
            async with asyncio.timeout(RUN_TIMEOUT):
                outcome.runs.append(await meshgate.revocation_lag())
        except Exception as exc:
            log.warning("revocation lag failed: %r", exc)
            outcome.errors.append(f"run {run + 1}: {type(exc).__name__}: {exc}"[:300])
        else:
            log.info("  %s", outcome.runs[-1])
    outcome.medians = median_of_runs(outcome.runs)
    return outcome
