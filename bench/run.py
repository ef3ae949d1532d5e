"""`make bench`: every workload family on meshgate and on a NATS super-cluster; writes RESULTS.md.

Usage: python -m bench.run [--quick] [--only NAME ...] [--runs N] [--out PATH]

Runs are interleaved (run 1 of every system, then run 2, ...) so background load on the
shared machine hits all systems alike. Each figure is the median over the runs. A system that
cannot run a family says why in the report; a run that fails is reported, not retried.

Resource handling: the NATS servers and meshgate gateways are child process groups started
here and stopped in `finally` blocks (ExitStack), whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench import report
from bench.families import FAMILIES, FAMILY_NAMES, FULL, QUICK, Family, Profile
from bench.harness import median_of_runs
from bench.meshgate_system import REVOCATION, MeshgateSystem
from bench.nats_cluster import NatsSuperCluster, ensure_nats_server, nats_server_version
from bench.systems import CoreNatsSystem, JetStreamSystem, System

log = logging.getLogger("bench")

RUN_TIMEOUT = 180.0  # no single run may take longer than this, whatever the system does
ROOT = Path(__file__).resolve().parent.parent


async def _one_run(system: System, family: Family, profile: Profile) -> report.Metrics:
    async with asyncio.timeout(RUN_TIMEOUT):
        async with system.target(family) as target:
            return await family.driver(target, family.params(profile))


async def _measure(
    systems: Sequence[System], families: Sequence[Family], profile: Profile
) -> list[report.Outcome]:
    outcomes: list[report.Outcome] = []
    for family in families:
        row = [report.Outcome(family=family.name, system=s.name) for s in systems]
        for outcome, system in zip(row, systems, strict=True):
            outcome.skipped = system.skip_reason(family)
        for run in range(profile.runs):
            for outcome, system in zip(row, systems, strict=True):
                if outcome.skipped:
                    continue
                log.info("%s on %s, run %d/%d", family.name, system.name, run + 1, profile.runs)
                try:
                    metrics = await _one_run(system, family, profile)
                except Exception as exc:
                    log.warning("%s on %s failed: %r", family.name, system.name, exc)
                    outcome.errors.append(f"run {run + 1}: {type(exc).__name__}: {exc}"[:300])
                    continue
                log.info("  %s", {k: round(v, 3) for k, v in metrics.items()})
                outcome.runs.append(metrics)
        for outcome in row:
            outcome.medians = median_of_runs(outcome.runs)
        outcomes.extend(row)
    return outcomes


async def _measure_revocation(meshgate: MeshgateSystem, profile: Profile) -> report.Outcome:
    outcome = report.Outcome(family=REVOCATION, system=report.MESHGATE)
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


async def _measure_all(
    systems: Sequence[System],
    families: Sequence[Family],
    meshgate: MeshgateSystem,
    profile: Profile,
    revocation: bool,
) -> list[report.Outcome]:
    outcomes = await _measure(systems, families, profile)
    if revocation:
        outcomes.append(await _measure_revocation(meshgate, profile))
    return outcomes


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one short run per figure (smoke)")
    parser.add_argument(
        "--only",
        action="append",
        choices=(*FAMILY_NAMES, REVOCATION),
        help="run only this family (repeatable)",
    )
    parser.add_argument("--runs", type=int, help="runs per figure (default: 3, quick: 1)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS.md")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    profile = QUICK if args.quick else FULL
    if args.runs:
        profile = Profile(
            runs=args.runs,
            throughput_seconds=profile.throughput_seconds,
            latency_seconds=profile.latency_seconds,
            drain_timeout=profile.drain_timeout,
        )
    chosen = set(args.only or (*FAMILY_NAMES, REVOCATION))
    families = [f for f in FAMILIES if f.name in chosen]
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    t0 = time.monotonic()
    binary = ensure_nats_server()
    with (
        tempfile.TemporaryDirectory(prefix="meshgate-bench-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        work = Path(tmp)
        (work / "nats").mkdir()
        cluster = stack.enter_context(NatsSuperCluster(work / "nats", binary=binary))
        meshgate = stack.enter_context(MeshgateSystem(work / "meshgate", root=ROOT))
        systems: list[System] = [meshgate, JetStreamSystem(cluster), CoreNatsSystem(cluster)]
        outcomes = asyncio.run(
            _measure_all(systems, families, meshgate, profile, REVOCATION in chosen)
        )
        commands = [
            f"make bench    # = {Path(sys.executable).name} -m bench.run"
            + (" --quick" if args.quick else "")
            + "".join(f" --only {o}" for o in args.only or ()),
            *meshgate.commands(),
            *(f"{binary} -c {work / 'nats' / f'nats-{r}.conf'}" for r in ("east", "west")),
            "# nats config (east; west mirrors it):",
            *(work / "nats" / "nats-east.conf").read_text().strip().splitlines(),
        ]
        notes = [*_NOTES, *meshgate.notes()]
    text = report.render(
        outcomes=outcomes,
        profile=profile,
        profile_name="quick" if args.quick else "full",
        machine=report.machine_facts(nats_server_version(binary)),
        commands=commands,
        notes=notes,
        started=started,
        wall_seconds=time.monotonic() - t0,
    )
    report.write(args.out, text)
    print(f"wrote {args.out}")
    return 0


_NOTES = (
    "One Python harness (asyncio, one process) drives every system with the same drivers "
    "(`bench/drivers.py`): same payloads, pacing, windows and counting. The harness is "
    "itself a bottleneck (Python clients), for both sides.",
    "Each payload starts with a sequence number and a `time.monotonic_ns()` stamp; latency "
    "is measured at the subscriber callback, one way, publish call to delivery.",
    "Latency runs are open loop: an event is stamped when it is due (1 ms apart), so time "
    "queued behind a slow system counts (no coordinated omission).",
    "End-to-end throughput is lossless by construction: publishers keep at most 4096 "
    "events in flight between publish and delivery (a credit window); `lost` in the per-run "
    "table counts events that did not arrive within the drain timeout.",
    "NATS JetStream: file-backed stream placed in east (R1); publish awaits the PubAck "
    "(`js.publish` for single events, `js.publish_async` + gather for batches); consumer is "
    "a push consumer, AckPolicy.ALL, max_ack_pending 4096, acked every 64 messages. "
    "Cross-region: a second stream placed in west sources the east stream; the consumer "
    "connects to west. Core NATS: plain subjects, publisher on east, subscriber on east or west.",
    "meshgate: 1 KiB `binary_data` CloudEvents through the client SDK (meshgate.client); "
    "Publish answers once the events are durable in SQLite; Subscribe grants 4096 credits, "
    "reads raw deliveries (no CloudEvent decoding), returns credit every 2048 events and acks "
    "every 128 or before waiting; gateways run with max_ack_pending 4096 (config file) and "
    "`--log-level WARNING`.",
    "Durability differs, in NATS's favour: meshgate commits SQLite with synchronous=FULL "
    "(fsync before Publish answers, group commit), while JetStream (2.15.1, default config) "
    "acks once the message is written to the OS and fsyncs in the background (its "
    "`sync_interval: always` would fsync before acking; the bench keeps the default).",
)


if __name__ == "__main__":
    sys.exit(main())
