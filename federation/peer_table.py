"""The peer table `ListPeers` reports: one row per known region, computed from the node's state.

Pure: it reads the members, routes and links it is given and returns rows; it decides nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from federation.link import PeerLink
from federation.messages import Member
from federation.routing import Route


@dataclass(frozen=True)
class PeerInfo:
    """One row of the peer table (what `ListPeers` reports)."""

    region: str
    address: str
    up: bool
    lag_events: int
    lag_seconds: float
    last_seen: float  # unix time, 0 if never
    distance: int  # 0 if no route
    topics: tuple[str, ...] = ()  # what that region wants, as routed from here


def peer_table(
    *,
    local_region: str,
    members: Sequence[Member],
    routes: Mapping[str, Route],
    links: Mapping[str, PeerLink],
    last_seq: int,
    last_seen: Mapping[str, float],
    now: float,
) -> list[PeerInfo]:
    """Rows sorted by region; lag is how far the peer's acked cursor is behind `last_seq`."""
    by_region = {m.region: m for m in members}
    out = []
    for region in sorted(set(by_region) | set(routes) | set(links)):
        if region == local_region:
            continue
        link = links.get(region)
        route = routes.get(region)
        member = by_region.get(region)
        lag = max(0, last_seq - link.protocol.acked_seq) if link else 0
        out.append(
            PeerInfo(
                region=region,
                address=member.peer_address if member else "",
                up=link is not None,
                lag_events=lag,
                lag_seconds=(now - link.caught_up_at) if link and lag else 0.0,
                last_seen=link.last_seen if link else last_seen.get(region, 0.0),
                distance=route.distance if route and not route.stale else 0,
                topics=tuple(sorted({t.topic for t in route.topics})) if route else (),
            )
        )
    return out
