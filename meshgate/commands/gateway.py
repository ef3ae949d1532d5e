"""`meshgate gateway run`: serve one region's gateway until SIGTERM/SIGINT.

Prints ONE readiness line to stdout once serving (actual ports, so port 0 works)::

    meshgate gateway ready region=eu listen=127.0.0.1:40123 metrics=off access=registry http=off
        durability=fsync

(one line; `access=open` when started with `--open`, `durability=os` with `--durability os`;
`metrics=` and `http=` give the bound HOST:PORT when `--metrics-port` / `--http-listen` are
given) and logs to stderr. SIGTERM: stop accepting, end streams, drain in-flight publishes,
close the store, exit 0.

This module only declares the flags: `meshgate.settings` turns flags, environment and the
config file into one `GatewaySettings`, and `meshgate.assemble` builds the process from it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.config import join_host_port
from meshgate.config_file import read_config_file
from meshgate.errors import SettingsError
from meshgate.settings import REGISTRY_ENV, RPC_ENV, GatewaySettings, parse_duration, resolve

if TYPE_CHECKING:  # the gateway itself loads only for `gateway run` (CLI start, issue 16)
    from gateway.app import Gateway


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except SettingsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("gateway", help="run a regional gateway")
    sub = parser.add_subparsers(dest="gateway_command", metavar="ACTION")
    sub.required = True
    run = sub.add_parser("run", help="serve the client API (and metrics) until SIGTERM")
    run.add_argument("--region", help="this gateway's region name")
    run.add_argument("--listen", help="HOST:PORT for the client API (port 0 = pick one)")
    run.add_argument(
        "--advertise",
        help="HOST:PORT where clients reach this gateway, for a region of replicas' writer "
        "hints (default: the listen address, unless its host is a wildcard)",
    )
    run.add_argument("--data", type=Path, help="data directory (SQLite store)")
    run.add_argument(
        "--store", help="nats://HOST:PORT[,HOST:PORT...]: keep events on a JetStream cluster"
    )
    run.add_argument("--metrics-port", type=int, help="Prometheus /metrics port (0 = pick one)")
    run.add_argument("--config", type=Path, help="TOML config file (flags and env win)")
    run.add_argument("--max-event-bytes", type=int, help="largest event accepted (bytes)")
    run.add_argument("--ack-timeout", type=float, help="seconds before an unacked event is resent")
    run.add_argument("--retention-interval", type=float, help="seconds between retention passes")
    run.add_argument(
        "--durability",
        choices=("fsync", "os"),
        help="acknowledge after fsync (default) or once written to the OS (see deploying.md)",
    )
    run.add_argument("--log-level", help="stderr log level (default INFO)")
    add_registry_arguments(run)
    add_federation_arguments(run)
    add_http_arguments(run)
    run.set_defaults(func=_run)


def add_registry_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("access control (on-chain registry, or --open)")
    group.add_argument(
        "--open",
        action="store_true",
        default=None,
        help="run WITHOUT access control: anyone may publish and read (never implied)",
    )
    group.add_argument("--rpc", help=f"chain node URL, http(s):// or ws(s):// (env {RPC_ENV})")
    group.add_argument("--registry", help=f"registry contract address (env {REGISTRY_ENV})")
    group.add_argument("--chain-id", type=int, help="expected chain id (checked on connect)")
    group.add_argument(
        "--staleness",
        type=_duration,
        help="pause access when the chain is unheard for this long (default 30s)",
    )
    group.add_argument(
        "--confirmations",
        type=int,
        help="blocks on top of a registry change before it applies (default 0; see deploying.md)",
    )
    group.add_argument("--from-block", type=int, help="registry deployment block (default 0)")
    group.add_argument(
        "--signin-domain", help="domain sign-in messages must name (default meshgate-REGION)"
    )


def add_federation_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("federation")
    group.add_argument("--peer-listen", help="HOST:PORT of the mTLS peer listener (enables it)")
    group.add_argument("--tls-dir", type=Path, help="this region's dir from `meshgate certs issue`")
    group.add_argument("--peer", action="append", help="HOST:PORT of any member (repeatable)")
    group.add_argument("--peer-advertise", help="HOST:PORT other gateways dial (default: listen)")
    group.add_argument(
        "--no-mesh",
        action="store_true",
        default=None,
        help="dial only the --peer addresses, not every member learnt (line, hub and spoke)",
    )


def add_http_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("HTTP edge (CloudEvents HTTP binding, Server-Sent Events)")
    group.add_argument(
        "--http-listen", help="HOST:PORT of the HTTP listener (enables it; 0 = pick)"
    )
    group.add_argument("--http-tls-cert", type=Path, help="PEM certificate: serve HTTPS")
    group.add_argument("--http-tls-key", type=Path, help="PEM private key of --http-tls-cert")


def settings_from_args(args: argparse.Namespace) -> GatewaySettings:
    """Flags, then the environment, then the config file. Raises SettingsError."""
    file = read_config_file(args.config) if args.config is not None else None
    return resolve(vars(args), os.environ, file)


def ready_line(gateway: Gateway) -> str:
    metrics = (
        join_host_port(gateway.config.host, gateway.metrics_port)
        if gateway.metrics_port is not None
        else "off"
    )
    http = gateway.http.listen if gateway.http is not None else "off"
    return (
        f"meshgate gateway ready region={gateway.config.region} listen={gateway.listen} "
        f"metrics={metrics} access={'open' if gateway.open_access else 'registry'} http={http} "
        f"durability={gateway.config.durability}"
    )


def _run(args: argparse.Namespace) -> int:
    from meshgate.assemble import serve_process

    settings = settings_from_args(args)
    logging.basicConfig(
        stream=sys.stderr,
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(serve_process(settings, on_ready=lambda gw: print(ready_line(gw), flush=True)))
    return 0
