"""`meshgate gateway run`: serve one region's gateway until SIGTERM/SIGINT.

Prints ONE readiness line to stdout once serving (actual ports, so port 0 works)::

    meshgate gateway ready region=eu listen=127.0.0.1:40123 metrics=127.0.0.1:40124

and logs to stderr. SIGTERM: stop accepting, end streams, drain in-flight publishes, close
the store, exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from gateway.app import Gateway
from gateway.config import (
    GatewayConfig,
    build_config,
    flag_defaults,
    join_host_port,
    parse_listen,
)
from gateway.federation_wiring import add_federation_arguments, federation_parts
from gateway.registry_wiring import (
    add_registry_arguments,
    parse_duration,
    registry_settings,
    serve_gateway,
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("gateway", help="run a regional gateway")
    sub = parser.add_subparsers(dest="gateway_command", metavar="ACTION")
    sub.required = True
    run = sub.add_parser("run", help="serve the client API (and metrics) until SIGTERM")
    run.add_argument("--region", help="this gateway's region name")
    run.add_argument("--listen", help="HOST:PORT for the client API (port 0 = pick one)")
    run.add_argument("--data", type=Path, help="data directory (SQLite store)")
    run.add_argument("--metrics-port", type=int, help="Prometheus /metrics port (0 = pick one)")
    run.add_argument("--config", type=Path, help="TOML config file (CLI flags win)")
    run.add_argument("--max-event-bytes", type=int, help="largest event accepted (bytes)")
    run.add_argument("--ack-timeout", type=float, help="seconds before an unacked event is resent")
    run.add_argument("--retention-interval", type=float, help="seconds between retention passes")
    run.add_argument("--log-level", default="INFO", help="stderr log level (default INFO)")
    add_registry_arguments(run)
    add_federation_arguments(run)
    run.set_defaults(func=_run, run_parser=run)


def config_from_args(args: argparse.Namespace) -> GatewayConfig:
    host, port = parse_listen(args.listen) if args.listen else (None, None)
    return build_config(
        args.config,
        region=args.region,
        host=host,
        port=port,
        data_dir=args.data,
        metrics_port=args.metrics_port,
        max_event_bytes=args.max_event_bytes,
        ack_timeout=args.ack_timeout,
        retention_interval=args.retention_interval,
    )


async def serve(gateway: Gateway) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, gateway.request_stop)
    async with gateway:
        metrics = (
            join_host_port(gateway.config.host, gateway.metrics_port)
            if gateway.metrics_port is not None
            else "off"
        )
        print(
            f"meshgate gateway ready region={gateway.config.region} "
            f"listen={gateway.listen} metrics={metrics}",
            flush=True,
        )
        await gateway.serve()


def apply_file_flags(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Fill flags left at their defaults from the config file's [registry]/[federation]."""
    if args.config is None:
        return
    for dest, value in flag_defaults(args.config).items():
        if getattr(args, dest) != parser.get_default(dest):
            continue  # the command line wins
        if dest == "staleness":
            value = parse_duration(str(value))
        elif dest == "tls_dir":
            value = Path(value)
        elif dest == "peer":
            value = [value] if isinstance(value, str) else list(value)
        setattr(args, dest, value)


def _run(args: argparse.Namespace) -> int:
    apply_file_flags(args, args.run_parser)
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    config = config_from_args(args)
    services, peers = federation_parts(args, config)
    asyncio.run(
        serve_gateway(
            config, registry_settings(args, config.region), serve, services=services, peers=peers
        )
    )
    return 0
