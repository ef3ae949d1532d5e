"""Micro benchmark of one event per call with 32 in flight: unary Publish against PublishStream.

One real gateway process (SQLite store, the given `--durability`), one `GatewayClient` per
mode: `unary` (publish_stream=False: one Publish RPC per call, what `publish()` did before
issue 13) and `stream` (the default: the calls share one PublishStream and the gateway
coalesces them into shared appends). Rounds of `--seconds` alternate between the modes
(`--runs` each, so both see the same machine load); every call publishes one 1 KiB event
and awaits its answer (durable). It prints, per mode, the median events/s and the median CPU
microseconds per event of the gateway process and of this (client) process. Usage::

    python -m bench.publish_micro [--seconds 3] [--runs 3] [--in-flight 32]
        [--durability fsync|os] [--dir PATH]

bench/RESULTS.md is F3's (`make bench`, whose one-event-per-call row goes through the same
`GatewayClient.publish_pb`); this one compares the two RPCs alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from meshgate.client import GatewayClient
from meshgate.processes import GatewayProcess
from proto import cloudevents_pb2

PAYLOAD = os.urandom(1024)
MODES = ("unary", "stream")


def _event() -> cloudevents_pb2.CloudEvent:
    return cloudevents_pb2.CloudEvent(
        id=uuid.uuid4().hex,
        source="/bench/publish-micro",
        spec_version="1.0",
        type="dev.meshgate.bench",
        binary_data=PAYLOAD,
    )


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _round(client: GatewayClient, topic: str, seconds: float, in_flight: int) -> int:
    done = 0
    deadline = time.monotonic() + seconds

    async def caller() -> None:
        nonlocal done
        while time.monotonic() < deadline:
            await client.publish_pb(topic, [_event()])
            done += 1

    await asyncio.gather(*(caller() for _ in range(in_flight)))
    return done


async def main(args: argparse.Namespace) -> None:
    data = Path(args.dir or tempfile.mkdtemp(prefix="publish-micro-"))
    extra = ["--durability", args.durability]
    proc = GatewayProcess(data / "gw", metrics=False, extra_args=extra).start()
    try:
        pid = proc.child.pid if proc.child is not None else 0
        clients = {
            "unary": GatewayClient(proc.listen, publish_stream=False, timeout=60),
            "stream": GatewayClient(proc.listen, timeout=60),
        }
        rates: dict[str, list[float]] = {m: [] for m in MODES}
        gw_cpu: dict[str, list[float]] = {m: [] for m in MODES}
        client_cpu: dict[str, list[float]] = {m: [] for m in MODES}
        for mode in MODES:  # warm up: channels, the stream, the topic
            await _round(clients[mode], f"warm-{mode}", 0.5, args.in_flight)
        for run in range(args.runs):
            for mode in MODES if run % 2 == 0 else MODES[::-1]:
                gw0, me0, t0 = _cpu_seconds(pid), time.process_time(), time.monotonic()
                count = await _round(clients[mode], f"micro-{mode}", args.seconds, args.in_flight)
                wall = time.monotonic() - t0
                rates[mode].append(count / wall)
                gw_cpu[mode].append((_cpu_seconds(pid) - gw0) / count * 1e6)
                client_cpu[mode].append((time.process_time() - me0) / count * 1e6)
                print(f"  run {run + 1} {mode:6s} {count / wall:8.0f} events/s", flush=True)
        for client in clients.values():
            await client.aclose()
    finally:
        proc.stop()
    print(
        f"one event per call, {args.in_flight} in flight, 1 KiB, durability={args.durability}, "
        f"medians of {args.runs} x {args.seconds:g} s:"
    )
    for mode in MODES:
        print(
            f"  {mode:6s} {statistics.median(rates[mode]):8.0f} events/s"
            f"   gateway {statistics.median(gw_cpu[mode]):6.0f} us/event"
            f"   client {statistics.median(client_cpu[mode]):6.0f} us/event"
        )
    ratio = statistics.median(rates["stream"]) / statistics.median(rates["unary"])
    print(f"  stream / unary: {ratio:.2f}x")


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--in-flight", type=int, default=32)
    parser.add_argument("--durability", choices=("fsync", "os"), default="fsync")
    parser.add_argument("--dir", default=None, help="data directory (default: a temp dir)")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(_parse()))
