"""`meshgate audit verify|show|key --data DIR`: check and read a gateway's access audit log.

`verify` checks the hash chain against the signed head (`audit.head`): a cut tail, an emptied
log, recomputed hashes or an edited head all fail with one line. `--public-key` pins the key
(by default the key file in DIR, which whoever can write DIR may also replace); `--head
SEQ:HASH` checks against a head kept elsewhere (the gateway logs `audit head seq=... hash=...`),
which also catches a rewrite re-signed with the key.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from meshgate.errors import CliError
from policy.audit import audit_path, check_log, key_path, public_key_of, read_entries
from policy.audit_head import parse_anchor


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("audit", help="verify or show a gateway's access audit log")
    sub = parser.add_subparsers(dest="audit_command", metavar="ACTION")
    sub.required = True

    verify = sub.add_parser("verify", help="check the audit log's hash chain and signed head")
    verify.add_argument("--data", required=True, type=Path, help="the gateway's data dir")
    verify.add_argument(
        "--public-key", help="hex audit public key to trust (default: the key file in --data)"
    )
    verify.add_argument(
        "--head",
        action="append",
        default=[],
        metavar="SEQ:HASH",
        help="a head kept outside the gateway (from its 'audit head' log lines); repeatable",
    )
    verify.set_defaults(func=_verify)

    show = sub.add_parser("show", help="print audit entries")
    show.add_argument("--data", required=True, type=Path, help="the gateway's data dir")
    show.add_argument("--address", help="only this address's entries")
    show.add_argument("--topic", help="only this topic's entries")
    show.add_argument("--json", action="store_true", help="one JSON object per line")
    show.set_defaults(func=_show)

    key = sub.add_parser("key", help="print the audit public key (to pin for verify)")
    key.add_argument("--data", required=True, type=Path, help="the gateway's data dir")
    key.set_defaults(func=_key)


def _verify(args: argparse.Namespace) -> int:
    path = audit_path(args.data)
    anchors: dict[int, str] = {}
    for text in args.head:
        try:
            seq, head_hash = parse_anchor(text)
        except ValueError as exc:
            raise CliError(f"--head: {exc}") from exc
        if anchors.setdefault(seq, head_hash) != head_hash:
            raise CliError(f"--head: two different hashes for entry {seq}")
    public_key = None if args.public_key is None else args.public_key.lower().removeprefix("0x")
    check = check_log(path, public_key=public_key, anchors=anchors)
    if not check.ok:
        result = check.result
        where = "" if not result.broken_seq else f" at entry {result.broken_seq}"
        raise CliError(f"audit log {path} is broken{where}: {result.problem}")
    result = check.result
    pinned = "pinned key" if public_key is not None else f"key in {key_path(path).name}"
    head = check.head
    signed = "" if head is None else f", signed head at entry {head.seq} ({pinned})"
    external = f", {len(anchors)} external head(s) matched" if anchors else ""
    print(
        f"audit log {path}: {result.entries} entries verified{signed}{external}, "
        f"last hash {result.last_hash}"
    )
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


def _key(args: argparse.Namespace) -> int:
    print(public_key_of(key_path(audit_path(args.data))))
    return 0
