"""`meshgate owner ...`: a data owner's registry changes and the `show` view.

Every command takes --rpc/--registry/--key-file (or MESHGATE_RPC, MESHGATE_REGISTRY,
MESHGATE_KEY_FILE); `show` needs no key. Each change prints one line ending in its tx hash
and block. On an encrypted topic (`register --encrypted`) the changes that move keys also
take --gateway (MESHGATE_GATEWAY) and print the key set they made: see owner_keys.py.
`show` lists grants and publishers from the contract's enumerable storage
(`readersOf`/`publishersOf`), so it needs no log history; expired grants are listed (and
marked) until revoked; for an encrypted topic, its current key epoch.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from meshgate.commands import owner_keys
from meshgate.commands.chain import add_registry_args, ledger_config, signer_from
from meshgate.errors import CliError

if TYPE_CHECKING:  # web3 loads in the handlers only (CLI start, issue 16)
    from ledger.registry import RegistryClient, TopicInfo, TxResult

_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("owner", help="register topics and grant access on chain")
    sub = parser.add_subparsers(dest="owner_command", metavar="ACTION")
    sub.required = True

    def action(name: str, help_text: str, *positionals: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        add_registry_args(p)
        p.add_argument(
            "--gateway",
            default=os.environ.get("MESHGATE_GATEWAY"),
            help="HOST:PORT of a gateway: delivers key sets of encrypted topics",
        )
        for positional in positionals:
            p.add_argument(positional)
        return p

    reg = action("register", "register a topic; you become its owner", "topic")
    reg.add_argument(
        "--encrypted",
        action="store_true",
        help="end-to-end encrypted: gateways only ever hold ciphertext (needs --gateway)",
    )
    reg.set_defaults(func=_register)
    action("rotate", "encrypted topic: a new key epoch for today's readers", "topic").set_defaults(
        func=_rotate
    )
    grant = action("grant", "grant (or update) read access", "topic", "address")
    when = grant.add_mutually_exclusive_group()
    when.add_argument("--expires", help="ISO 8601 time (UTC if no offset)")
    when.add_argument("--for", dest="duration", help="from now on chain: 90s, 15m, 12h, 30d, 2w")
    grant.add_argument(
        "--history",
        action="store_true",
        help="encrypted topic: also give the keys of every earlier epoch",
    )
    grant.set_defaults(func=_grant)
    for name, (help_text, _method, _done_text) in ADDRESS_CHANGES.items():
        action(name, help_text, "topic", "address").set_defaults(func=_address_change, action=name)
    show = action("show", "owner, version, grants and publishers", "topic")
    show.add_argument("--json", action="store_true", help="one JSON object")
    show.set_defaults(func=_show)


def _client(args: argparse.Namespace, *, signing: bool = True) -> RegistryClient:
    if not args.registry:
        raise CliError("no registry: pass --registry ADDRESS or set MESHGATE_REGISTRY")
    config = ledger_config(args, registry=args.registry)
    signer = signer_from(args.key_file) if signing else None
    from ledger.registry import RegistryClient

    return RegistryClient(config, signer)


def _checksum(address: str) -> str:
    from ledger.names import checksum_address  # eth_utils: ~0.3 s

    return checksum_address(address)


def _done(what: str, tx: TxResult) -> int:
    print(f"{what}: tx {tx.tx_hash} block {tx.block_number}")
    return 0


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat()


def parse_expiry(expires: str | None, duration: str | None, chain_now: int) -> int:
    """Unix expiry from --expires (ISO 8601) or --for (relative to chain time); 0 = never."""
    if duration is not None:
        match = _DURATION.fullmatch(duration.strip())
        if not match:
            raise CliError(f"bad --for {duration!r}: use e.g. 90s, 15m, 12h, 30d, 2w")
        return chain_now + int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if expires is not None:
        try:
            moment = datetime.fromisoformat(expires.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise CliError(f"bad --expires {expires!r}: use ISO 8601") from exc
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return int(moment.timestamp())
    return 0


def _register(args: argparse.Namespace) -> int:
    if args.encrypted:
        owner_keys.require_gateway(args, args.topic, "register --encrypted (epoch 1)")
        return owner_keys.register_encrypted(args, _client(args))
    return _done(f"registered {args.topic!r}", _client(args).register(args.topic))


def _rotate(args: argparse.Namespace) -> int:
    return owner_keys.rotate(args, _client(args))


def _grant(args: argparse.Namespace) -> int:
    client = _client(args)
    args.address = _checksum(args.address)
    needs_clock = args.duration is not None
    expiry = parse_expiry(args.expires, args.duration, client.chain_time() if needs_clock else 0)
    keys = owner_keys.key_work(args, client, "grant")
    tx = client.grant(args.topic, args.address, expiry)
    until = f"until {_iso(expiry)}" if expiry else "without expiry"
    _done(f"granted read on {args.topic!r} to {args.address} {until}", tx)
    if keys:
        owner_keys.follow_up(args, client, "grant")
    return 0


# `owner ACTION TOPIC ADDRESS` changes: help, RegistryClient method, what is printed.
ADDRESS_CHANGES = {
    "revoke": ("revoke read access", "revoke", "revoked read on {topic!r} from {address}"),
    "allow-publisher": (
        "let an address publish",
        "allow_publisher",
        "{address} may publish to {topic!r}",
    ),
    "deny-publisher": (
        "stop an address publishing",
        "deny_publisher",
        "{address} may no longer publish to {topic!r}",
    ),
    "transfer": ("hand the topic to a new owner", "transfer", "transferred {topic!r} to {address}"),
}


def _address_change(args: argparse.Namespace) -> int:
    _help, method, done = ADDRESS_CHANGES[args.action]
    args.address = address = _checksum(args.address)
    client = _client(args)
    keys = owner_keys.key_work(args, client, args.action)
    tx = getattr(client, method)(args.topic, address)
    _done(done.format(topic=args.topic, address=address), tx)
    if keys:
        owner_keys.follow_up(args, client, args.action)
    elif args.action == "transfer" and client.is_encrypted(args.topic):
        print(owner_keys.TRANSFER_NOTE.format(topic=args.topic))
    return 0


def _show(args: argparse.Namespace) -> int:
    client = _client(args, signing=False)
    info = client.topic_info(args.topic)
    if info is None:
        raise CliError(f"unknown topic {args.topic!r}")
    now = client.chain_time()
    if args.json:
        print(json.dumps(_as_json(info, now), sort_keys=True))
    else:
        print(_as_table(info, now))
    return 0


def _status(expires_at: int, now: int) -> str:
    return "active" if expires_at == 0 or now < expires_at else "expired"


def _as_json(info: TopicInfo, now: int) -> dict[str, Any]:
    data = asdict(info)
    data["chain_time"] = now
    for grant in data["grants"]:
        grant["status"] = _status(grant["expires_at"], now)
    return data


def _as_table(info: TopicInfo, now: int) -> str:
    data = f"encrypted, key epoch {info.key_epoch}" if info.encrypted else "plaintext"
    lines = [
        f"topic    {info.name}",
        f"owner    {info.owner}",
        f"version  {info.version}",
        f"data     {data}",
        f"chain    {_iso(now)}",
        "",
        f"{'READER':<42}  {'EXPIRES':<25}  STATUS",
    ]
    for g in info.grants:
        expires = _iso(g.expires_at) if g.expires_at else "never"
        lines.append(f"{g.reader:<42}  {expires:<25}  {_status(g.expires_at, now)}")
    if not info.grants:
        lines.append("(no grants)")
    lines += ["", "PUBLISHER"]
    lines += list(info.publishers) or ["(no publishers)"]
    return "\n".join(lines)
