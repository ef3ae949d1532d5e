"""Interest routing: which regions want an event, and through which peer each is reached.

Theory of operation (distance vector with split horizon; path and hop limit stop loops):
- Each peer advertises, per region it can reach, that region's distance from the peer and its
  topic interest. Through peer P, region R is at distance(P advertised) + 1.
- The route to R is the live one with the least distance; ties go to the smaller peer name, so
  every gateway picks the same next hop for the same inputs.
- The advertisement for peer P lists this region (distance 0) and every routed region whose next
  hop is not P (split horizon: never tell a peer about routes learnt from it).
- Interest of a region that becomes unreachable is remembered with its last next hop. While that
  peer is linked but has not (yet) re-advertised the region, events for it still go there: a
  restarted relay stores them durably and forwards them once it relearns its own routes.
- Distances above MAX_DISTANCE are dropped (bounds count-to-infinity in a cycle).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from federation.messages import Interest, RegionInterest, TopicInterest

MAX_DISTANCE = 16


@dataclass(frozen=True)
class Route:
    region: str
    next_hop: str
    distance: int  # hops from this gateway
    topics: tuple[TopicInterest, ...]
    stale: bool = False  # remembered, not currently advertised


class RoutingTable:
    """Pure routing state of one gateway. Not thread-safe; owned by one event loop."""

    def __init__(self, local_region: str) -> None:
        self.local_region = local_region
        self._local: tuple[TopicInterest, ...] = ()
        self._adverts: dict[str, dict[str, RegionInterest]] = {}  # peer -> region -> advert
        self._versions: dict[str, int] = {}
        self._routes: dict[str, Route] = {}
        self._remembered: dict[str, Route] = {}

    # ---- inputs -------------------------------------------------------------------------------

    def set_local(self, topics: Iterable[TopicInterest]) -> bool:
        """Replace this region's own interest; True when it changed."""
        new = tuple(sorted(set(topics), key=repr))
        if new == self._local:
            return False
        self._local = new
        return True

    def peer_up(self, peer: str) -> None:
        """A link to `peer` is streaming; it has advertised nothing yet on this link."""
        self._adverts[peer] = {}
        self._versions.pop(peer, None)
        self._recompute()

    def peer_advertised(self, peer: str, interest: Interest) -> bool:
        """Apply `peer`'s full advertisement (older versions ignored); True when routes changed."""
        if peer not in self._adverts:
            return False
        if interest.version <= self._versions.get(peer, -1):
            return False
        self._versions[peer] = interest.version
        self._adverts[peer] = {
            ri.region: ri
            for ri in interest.regions
            if ri.region != self.local_region and ri.distance < MAX_DISTANCE
        }
        return self._recompute()

    def peer_down(self, peer: str) -> bool:
        """`peer`'s link is gone; its routes are withdrawn (and remembered). True when changed."""
        self._adverts.pop(peer, None)
        self._versions.pop(peer, None)
        return self._recompute()

    # ---- outputs ------------------------------------------------------------------------------

    @property
    def local_interest(self) -> tuple[TopicInterest, ...]:
        return self._local

    def peers(self) -> list[str]:
        return sorted(self._adverts)

    def routes(self) -> dict[str, Route]:
        """Live routes, plus remembered ones still usable through a linked peer."""
        table = dict(self._routes)
        for region, old in self._remembered.items():
            if region not in table and old.next_hop in self._adverts:
                table[region] = old
        return table

    def route(self, region: str) -> Route | None:
        return self.routes().get(region)

    def advertisement_for(self, peer: str) -> tuple[RegionInterest, ...]:
        """What to tell `peer` (split horizon)."""
        out = [RegionInterest(self.local_region, 0, self._local)]
        for region, route in sorted(self._routes.items()):
            if route.next_hop != peer and region != peer:
                out.append(RegionInterest(region, route.distance, route.topics))
        return tuple(out)

    def destinations(
        self, topic: str, attributes: dict[str, str], exclude: Iterable[str] = ()
    ) -> tuple[str, ...]:
        """Remote regions whose interest matches the event (sorted)."""
        skip = set(exclude) | {self.local_region}
        return tuple(
            region
            for region, route in sorted(self.routes().items())
            if region not in skip and any(t.wants(topic, attributes) for t in route.topics)
        )

    def partition(self, regions: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """Group destination regions by next hop; regions with no route are left out."""
        table = self.routes()
        out: dict[str, list[str]] = {}
        for region in regions:
            route = table.get(region)
            if route is not None:
                out.setdefault(route.next_hop, []).append(region)
        return {hop: tuple(sorted(rs)) for hop, rs in out.items()}

    # ---- internals ----------------------------------------------------------------------------

    def _recompute(self) -> bool:
        best: dict[str, Route] = {}
        for peer in sorted(self._adverts):
            for region, ri in self._adverts[peer].items():
                cand = Route(region, peer, ri.distance + 1, ri.topics)
                cur = best.get(region)
                if cur is None or (cand.distance, cand.next_hop) < (cur.distance, cur.next_hop):
                    best[region] = cand
        for region, route in self._routes.items():
            if region not in best:
                self._remembered[region] = Route(
                    region, route.next_hop, route.distance, route.topics, stale=True
                )
        for region in best:
            self._remembered.pop(region, None)
        changed = best != self._routes
        self._routes = best
        return changed
