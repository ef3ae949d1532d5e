"""`meshgate peers --gateway HOST:PORT [--json]`: the federation peer table a gateway sees."""

from __future__ import annotations

import argparse
import json
from typing import Any

import grpc

from proto import gateway_pb2, gateway_pb2_grpc


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("peers", help="show a gateway's federation peers")
    parser.add_argument("--gateway", required=True, help="HOST:PORT of the gateway's client API")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--timeout", type=float, default=10.0, help="RPC deadline in seconds")
    parser.set_defaults(func=_peers)


def _row(p: gateway_pb2.PeerStatus) -> dict[str, object]:
    return {
        "region": p.region,
        "address": p.address,
        "up": p.up,
        "distance": p.distance,
        "topics": list(p.topics),
        "lag_events": p.lag_events,
        "lag_seconds": round(p.lag_seconds, 3),
        "last_seen": p.last_seen.ToJsonString() if p.HasField("last_seen") else None,
    }


def _peers(args: argparse.Namespace) -> int:
    with grpc.insecure_channel(args.gateway) as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        resp = stub.ListPeers(gateway_pb2.ListPeersRequest(), timeout=args.timeout)
    rows = [_row(p) for p in resp.peers]
    if args.json:
        print(json.dumps({"region": resp.region, "peers": rows}, indent=2))
        return 0
    print(f"region {resp.region or '?'}: {len(rows)} peer(s)")
    header = ("REGION", "ADDRESS", "UP", "DIST", "LAG", "LAG_S", "LAST_SEEN", "TOPICS")
    table = [header] + [
        (
            str(r["region"]),
            str(r["address"]),
            "up" if r["up"] else "down",
            str(r["distance"]),
            str(r["lag_events"]),
            str(r["lag_seconds"]),
            str(r["last_seen"] or "-"),
            ",".join(p.topics) or "-",
        )
        for p, r in zip(resp.peers, rows, strict=True)
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0
