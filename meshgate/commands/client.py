"""Client commands: `meshgate publish`, `meshgate subscribe`, `meshgate topics`.

`subscribe` prints one structured-mode CloudEvent JSON per line (eventmodel/json_form.py:
canonical attribute strings) and acks each event once printed. An event that cannot be
decoded is reported in one line on stderr, acknowledged (a durable group is never wedged on
it) and skipped; it does not count towards --count.

Encrypted topics (issue 12): with `--key-file` and the chain (`--rpc`/`--registry` or
MESHGATE_RPC/MESHGATE_REGISTRY) `publish` seals each event under the topic's current epoch key
before signing it and `subscribe` opens what it receives (meshgate/client/encryption.py); an
event it cannot open is reported and skipped like an undecodable one.

Publisher provenance (issue 11): `publish --key-file` signs what it publishes. `subscribe`
verifies each signed event's publisher signature (a failure is reported like an undecodable
event and skipped); with `--rpc` and `--registry` (or MESHGATE_RPC / MESHGATE_REGISTRY) it also
checks on chain that the signer may publish to the topic and refuses unsigned events; without
them only the signature is checked. `--no-verify` turns the checks off.

`subscribe --sink URL --http GATEWAY_HTTP_URL` creates a webhook subscription instead (the
Subscriptions API, meshgate/commands/subscriptions.py) and prints it.

Filters: `--filter exact:type=com.example.a` (also `prefix:`, `suffix:`), or a Subscriptions
API JSON filter such as `--filter '{"any": [...]}'`, within the limits of eventmodel/filters.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cloudevents.core.v1.event import CloudEvent

from eventmodel import filters, json_form
from meshgate.client import GatewayClient, Undecodable
from meshgate.client.positions import start_position
from meshgate.client.provenance import Chain
from meshgate.errors import CliError
from meshgate.tracing import setup as setup_tracing

STDIN_BATCH = 500
KEY_FILE_HELP = "sign in with this key (keystore JSON, password from env MESHGATE_KEY_PASSWORD)"


def _client(args: argparse.Namespace, topic: str, chain: Chain | None = None) -> GatewayClient:
    """A client that signs in (for `topic` only) when --key-file is given."""
    if args.key_file is None:
        return GatewayClient(args.gateway, chain=chain)
    from policy.signin import load_key_file  # siwe, web3, eth-account: only to sign in

    signer = load_key_file(args.key_file)
    return GatewayClient(args.gateway, signer=signer, signin_topics=[topic], chain=chain)


def _chain(args: argparse.Namespace) -> Chain | None:
    """The chain a client reads: --rpc/--registry or MESHGATE_RPC/_REGISTRY. Subscribe checks
    publishers' rights on it unless --no-verify; encrypted topics' keys are checked on it
    always (so --no-verify still reads an encrypted topic)."""
    rpc = args.rpc or os.environ.get("MESHGATE_RPC") or None
    registry = args.registry or os.environ.get("MESHGATE_REGISTRY") or None
    if rpc is None and registry is None:
        return None
    if rpc is None or registry is None:
        raise CliError(
            "checking the chain (publishers, encrypted keys) needs both --rpc and --registry"
        )
    return Chain(rpc_url=rpc, registry=registry)


def register(subparsers: Any) -> None:
    pub = subparsers.add_parser("publish", help="publish CloudEvents to a topic")
    pub.add_argument("--gateway", required=True, help="HOST:PORT of the gateway")
    pub.add_argument("--key-file", type=Path, help=KEY_FILE_HELP)
    pub.add_argument("--topic", required=True)
    pub.add_argument("--type", required=True, dest="event_type", help="CloudEvent type")
    pub.add_argument("--source", required=True, help="CloudEvent source (URI-reference)")
    pub.add_argument("--id", dest="event_id", help="event id (default: a new UUID)")
    data = pub.add_mutually_exclusive_group()
    data.add_argument("--data", help="event data as JSON")
    data.add_argument("--data-file", type=Path, help="file holding the event data as JSON")
    pub.add_argument("--rpc", help="chain RPC URL: encrypted topics' keys (env MESHGATE_RPC)")
    pub.add_argument("--registry", help="registry address for them (env MESHGATE_REGISTRY)")
    pub.set_defaults(func=_publish)

    sub = subparsers.add_parser("subscribe", help="print events of a topic, one JSON per line")
    sub.add_argument("--gateway", required=True, help="HOST:PORT of the gateway")
    sub.add_argument("--key-file", type=Path, help=KEY_FILE_HELP)
    sub.add_argument("--topic", required=True)
    sub.add_argument("--group", help="durable consumer group (default: ephemeral)")
    sub.add_argument(
        "--from", dest="start", default="earliest", help="earliest | latest | OFFSET | ISO8601"
    )
    sub.add_argument("--count", type=int, help="stop after N events")
    sub.add_argument(
        "--filter",
        action="append",
        default=[],
        help="exact:|prefix:|suffix:ATTR=VALUE or a Subscriptions API JSON filter (repeatable)",
    )
    sub.add_argument("--credits", type=int, default=256, help="flow-control window")
    sub.add_argument(
        "--no-verify",
        action="store_true",
        help="do not check publisher signatures (checked by default: signature only, "
        "or also the signer's right on chain with --rpc/--registry)",
    )
    sub.add_argument("--rpc", help="chain RPC URL for publisher checks (env MESHGATE_RPC)")
    sub.add_argument("--registry", help="registry address for them (env MESHGATE_REGISTRY)")
    sub.add_argument("--sink", help="create a webhook subscription POSTing to this URL instead")
    sub.add_argument("--http", help="with --sink: the gateway's HTTP URL (Subscriptions API)")
    sub.add_argument("--mode", default="binary", choices=("binary", "structured", "batch"))
    sub.set_defaults(func=_subscribe)

    top = subparsers.add_parser("topics", help="list topics with offsets, sizes and groups")
    top.add_argument("--gateway", required=True, help="HOST:PORT of the gateway")
    top.add_argument("--json", action="store_true", help="one JSON object per topic")
    top.set_defaults(func=_topics)


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CliError(f"{where} is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise CliError(f"{where} is nested too deeply") from exc


def _event(args: argparse.Namespace, data: Any, event_id: str | None) -> CloudEvent:
    attrs = {
        "type": args.event_type,
        "source": args.source,
        "id": event_id or str(uuid.uuid4()),
        "specversion": "1.0",
    }
    return CloudEvent(attrs, data)


def _stdin_batches(args: argparse.Namespace) -> Iterator[list[CloudEvent]]:
    batch: list[CloudEvent] = []
    for number, line in enumerate(sys.stdin, start=1):
        if not line.strip():
            continue
        batch.append(_event(args, _json(line, f"stdin line {number}"), None))
        if len(batch) >= STDIN_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


async def _publish_async(args: argparse.Namespace) -> int:
    async with _client(args, args.topic, _chain(args)) as client:
        if args.data is not None or args.data_file is not None:
            if args.data_file is not None:
                try:
                    text = args.data_file.read_text()
                except OSError as exc:
                    raise CliError(f"cannot read {args.data_file}: {exc}") from exc
            else:
                text = args.data
            data = _json(text, "--data")
            result = await client.publish(args.topic, _event(args, data, args.event_id))
            print(f"offset={result.offset} duplicate={str(result.duplicate).lower()}")
            return 0
        if args.event_id:
            raise CliError("--id needs --data or --data-file (stdin events get fresh ids)")
        total = duplicates = 0
        for batch in _stdin_batches(args):
            results = await client.publish_batch(args.topic, batch)
            total += len(results)
            duplicates += sum(r.duplicate for r in results)
        print(f"published={total} duplicates={duplicates}")
        return 0


def _publish(args: argparse.Namespace) -> int:
    tracing = setup_tracing(service="meshgate-cli", serves=False)  # OTEL_* (issue 16)
    try:
        return asyncio.run(_publish_async(args))
    finally:
        if tracing is not None:
            tracing.shutdown()  # flushes the publish's spans


def parse_filter(text: str) -> filters.Filter:
    """`dialect:attribute=value` or a Subscriptions API JSON filter."""
    if text.lstrip().startswith("{"):
        raw = _json(text, "--filter")
        if not isinstance(raw, dict):
            raise CliError("--filter JSON must be an object")
        return filters.from_json(raw)
    dialect, sep, rest = text.partition(":")
    attribute, eq, value = rest.partition("=")
    if not sep or not eq or dialect not in filters.MATCHERS:
        raise CliError(f"invalid --filter {text!r}: use exact|prefix|suffix:ATTRIBUTE=VALUE")
    return filters.leaf(dialect, attribute, value)


def report_undecodable(bad: Undecodable) -> None:
    """One stderr line per event no CloudEvent can be made of (already acked and skipped)."""
    print(
        f"meshgate: skipped undecodable event at offset {bad.offset}: {bad.reason}",
        file=sys.stderr,
        flush=True,
    )


async def _subscribe_async(args: argparse.Namespace) -> int:
    if args.count is not None and args.count <= 0:
        raise CliError("--count must be > 0")
    flts = list(filters.check_all(parse_filter(f) for f in args.filter))
    if args.sink is not None:
        from meshgate.commands import subscriptions  # aiohttp only for webhooks

        return await subscriptions.create_async(args, flts)
    try:
        start = start_position(args.start)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    seen = 0
    credits = args.credits if args.count is None else min(args.credits, args.count)
    async with (
        _client(args, args.topic, _chain(args)) as client,
        client.subscribe(
            args.topic,
            group=args.group,
            start=start,
            filters=flts,
            credits=max(1, credits),
            on_undecodable=report_undecodable,
            verify=not args.no_verify,
        ) as sub,
    ):
        async for _offset, event in sub:
            sys.stdout.write(json_form.to_json(event) + "\n")
            sys.stdout.flush()
            seen += 1
            if args.count is not None and seen >= args.count:
                break
    return 0


def _subscribe(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_subscribe_async(args))
    except BrokenPipeError:
        return 0


def topic_json(info: Any) -> dict[str, Any]:
    return {
        "name": info.name,
        "first_offset": info.first_offset,
        "next_offset": info.next_offset,
        "event_count": info.event_count,
        "stored_bytes": info.stored_bytes,
        "backend": info.backend,
        "retention": {
            "max_age_seconds": info.retention.max_age_seconds,
            "max_bytes": info.retention.max_bytes,
        },
        "groups": [
            {"name": g.name, "committed_offset": g.committed_offset, "lag": g.lag}
            for g in info.groups
        ],
    }


async def _topics_async(args: argparse.Namespace) -> int:
    async with GatewayClient(args.gateway) as client:
        infos = await client.topics()
    if args.json:
        for info in infos:
            print(json.dumps(topic_json(info), sort_keys=True))
        return 0
    header = (
        f"{'TOPIC':<32} {'FIRST':>8} {'NEXT':>8} {'EVENTS':>8} {'BYTES':>10} "
        f"{'BACKEND':<9}  GROUPS (lag)"
    )
    print(header)
    for info in infos:
        groups = ", ".join(f"{g.name}({g.lag})" for g in info.groups) or "-"
        print(
            f"{info.name:<32} {info.first_offset:>8} {info.next_offset:>8} "
            f"{info.event_count:>8} {info.stored_bytes:>10} {info.backend or '-':<9}  {groups}"
        )
    return 0


def _topics(args: argparse.Namespace) -> int:
    return asyncio.run(_topics_async(args))
