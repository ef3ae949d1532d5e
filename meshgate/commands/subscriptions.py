"""Webhook subscriptions from the command line, over the gateway's Subscriptions API (HTTP).

    meshgate subscribe --sink URL --topic T --http URL [--group G] [--filter ...] [--mode M]
    meshgate subscriptions list   --gateway URL [--key-file K] [--json]
    meshgate subscriptions delete --gateway URL [--key-file K] ID

`--gateway` here (and `--http` for `subscribe --sink`) is the gateway's HTTP edge
(`http://HOST:PORT`; a bare HOST:PORT means http). With `--key-file` the command signs in over
HTTP (`GET /signin/nonce`, `POST /signin`) and sends the session token as a Bearer token.
Errors the gateway answers are printed in one line (its `error` text), exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eventmodel import filters
from meshgate.errors import CliError

if TYPE_CHECKING:  # aiohttp loads in the handlers only (CLI start, issue 16)
    import aiohttp

KEY_FILE_HELP = "sign in with this key (keystore JSON, password from env MESHGATE_KEY_PASSWORD)"
TIMEOUT_SECONDS = 60  # creating waits for the sink's handshake


def _session() -> aiohttp.ClientSession:
    import aiohttp

    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS))


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("subscriptions", help="list or delete webhook subscriptions")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    listing = verbs.add_parser("list", help="the subscriptions you own on a gateway")
    listing.add_argument("--gateway", required=True, help="the gateway's HTTP URL")
    listing.add_argument("--key-file", type=Path, help=KEY_FILE_HELP)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(func=_list)
    delete = verbs.add_parser("delete", help="delete a subscription you own")
    delete.add_argument("--gateway", required=True, help="the gateway's HTTP URL")
    delete.add_argument("--key-file", type=Path, help=KEY_FILE_HELP)
    delete.add_argument("id", help="the subscription id")
    delete.set_defaults(func=_delete)


def base_url(text: str) -> str:
    text = text.rstrip("/")
    return text if text.startswith(("http://", "https://")) else f"http://{text}"


def subscription_body(
    *,
    sink: str,
    topic: str,
    group: str | None,
    flts: Sequence[filters.Filter],
    mode: str,
) -> dict[str, Any]:
    """The Subscriptions API body `subscribe --sink` sends."""
    config: dict[str, Any] = {"topic": topic}
    if group is not None:
        config["group"] = group
    return {
        "sink": sink,
        "protocol": "HTTP",
        "protocolsettings": {"mode": mode},
        "config": config,
        "filters": filters.list_to_json(flts),
    }


class _Api:
    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http, self.base = http, base
        self.headers: dict[str, str] = {}

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        import aiohttp

        try:
            async with self.http.request(
                method, self.base + path, json=body, headers=self.headers
            ) as resp:
                text = await resp.text()
                doc = _parse(text) if text else None
                if resp.status >= 400:
                    reason = doc.get("error") if isinstance(doc, dict) else text.strip()
                    raise CliError(f"gateway answered {resp.status}: {reason or resp.reason}")
                return doc
        except aiohttp.ClientError as exc:
            raise CliError(f"cannot reach {self.base}: {exc}") from exc

    async def sign_in(self, key_file: Path, topics: Sequence[str]) -> None:
        from policy.identity import Challenge
        from policy.signin import build_message, load_key_file, sign_message

        signer = load_key_file(key_file)
        n = await self.call("GET", "/signin/nonce")
        expires = dt.datetime.fromisoformat(str(n["expires_at"]).replace("Z", "+00:00"))
        challenge = Challenge(n["nonce"], n["domain"], n["uri"], n["chain_id"], expires.timestamp())
        message = build_message(signer.address, challenge, topics, time.time())
        signature = "0x" + sign_message(signer, message).hex()
        session = await self.call("POST", "/signin", {"message": message, "signature": signature})
        self.headers["Authorization"] = f"Bearer {session['session_token']}"


def _parse(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


async def create_async(args: argparse.Namespace, flts: Sequence[filters.Filter]) -> int:
    """`meshgate subscribe --sink`: create the subscription, print it as one JSON line."""
    if args.http is None:
        raise CliError("--sink needs --http URL (the gateway's HTTP edge: Subscriptions API)")
    body = subscription_body(
        sink=args.sink, topic=args.topic, group=args.group, flts=flts, mode=args.mode
    )
    async with _session() as http:
        api = _Api(http, base_url(args.http))
        if args.key_file is not None:
            await api.sign_in(args.key_file, [args.topic])
        created = await api.call("POST", "/subscriptions", body)
    print(json.dumps(created))
    return 0


async def _list_async(args: argparse.Namespace) -> int:
    from policy.identity import ALL_TOPICS

    async with _session() as http:
        api = _Api(http, base_url(args.gateway))
        if args.key_file is not None:
            await api.sign_in(args.key_file, [ALL_TOPICS])
        subs = await api.call("GET", "/subscriptions")
    if args.json:
        for sub in subs:
            print(json.dumps(sub))
        return 0
    rows = [("ID", "TOPIC", "MODE", "SINK")] + [
        (s["id"], s["config"]["topic"], s["protocolsettings"]["mode"], s["sink"]) for s in subs
    ]
    widths = [max(len(str(r[i])) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return 0


async def _delete_async(args: argparse.Namespace) -> int:
    from policy.identity import ALL_TOPICS

    async with _session() as http:
        api = _Api(http, base_url(args.gateway))
        if args.key_file is not None:
            await api.sign_in(args.key_file, [ALL_TOPICS])
        await api.call("DELETE", f"/subscriptions/{args.id}")
    print(f"deleted {args.id}", file=sys.stderr)
    return 0


def _list(args: argparse.Namespace) -> int:
    return asyncio.run(_list_async(args))


def _delete(args: argparse.Namespace) -> int:
    return asyncio.run(_delete_async(args))
