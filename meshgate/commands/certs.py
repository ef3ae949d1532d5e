"""`meshgate certs init|issue`: the federation CA and each region's gateway identity."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("certs", help="federation CA and gateway certificates")
    sub = parser.add_subparsers(dest="certs_command", metavar="ACTION")
    sub.required = True
    init = sub.add_parser("init", help="create a federation CA")
    init.add_argument("--out", type=Path, required=True, help="directory for ca.pem and ca.key")
    init.add_argument("--name", default="meshgate federation CA", help="CA common name")
    init.set_defaults(func=_init)
    issue = sub.add_parser("issue", help="issue a region's TLS certificate and signing key")
    issue.add_argument("--ca", type=Path, required=True, help="CA directory (from `certs init`)")
    issue.add_argument("--region", required=True, help="region the gateway serves")
    issue.add_argument("--out", type=Path, required=True, help="the gateway's --tls-dir")
    issue.add_argument(
        "--host",
        action="append",
        default=[],
        help="extra DNS name or IP the peer listener is reached at (default 127.0.0.1, localhost)",
    )
    issue.set_defaults(func=_issue)


def _init(args: argparse.Namespace) -> int:
    from federation.certs import create_ca  # cryptography: in the handlers only

    path = create_ca(args.out, name=args.name)
    print(f"federation CA written: {path}")
    return 0


def _issue(args: argparse.Namespace) -> int:
    from federation.certs import issue_gateway

    hosts = tuple(args.host) or ("127.0.0.1", "localhost")
    identity = issue_gateway(args.ca, args.region, args.out, hosts=hosts)
    print(
        f"gateway identity for region {identity.region} written to {args.out} "
        f"(signing key {identity.verify_key.hex()[:16]}...)"
    )
    return 0
