"""`meshgate audit verify|show --data DIR`: check and read a gateway's access audit log."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from meshgate.cli import CliError
from policy.audit import audit_path, read_entries, verify_file


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("audit", help="verify or show a gateway's access audit log")
    sub = parser.add_subparsers(dest="audit_command", metavar="ACTION")
    sub.required = True

    verify = sub.add_parser("verify", help="check the audit log's hash chain")
    verify.add_argument("--data", required=True, type=Path, help="the gateway's data dir")
    verify.set_defaults(func=_verify)

    show = sub.add_parser("show", help="print audit entries")
    show.add_argument("--data", required=True, type=Path, help="the gateway's data dir")
    show.add_argument("--address", help="only this address's entries")
    show.add_argument("--topic", help="only this topic's entries")
    show.add_argument("--json", action="store_true", help="one JSON object per line")
    show.set_defaults(func=_show)


def _verify(args: argparse.Namespace) -> int:
    path = audit_path(args.data)
    result = verify_file(path)
    if not result.ok:
        raise CliError(f"audit log {path} is broken at entry {result.broken_seq}: {result.problem}")
    print(f"audit log {path}: {result.entries} entries verified, last hash {result.last_hash}")
    return 0


def _show(args: argparse.Namespace) -> int:
    path = audit_path(args.data)
    for entry in read_entries(path, address=args.address, topic=args.topic):
        if args.json:
            print(json.dumps(asdict(entry), sort_keys=True))
            continue
        when = datetime.fromtimestamp(entry.time, tz=UTC).isoformat(timespec="milliseconds")
        block = "-" if entry.block is None else str(entry.block)
        print(
            f"{entry.seq:>6} {when} {entry.decision:<6} {entry.action:<9} {entry.address} "
            f"{entry.topic!r} block={block} {entry.reason}"
        )
    return 0
