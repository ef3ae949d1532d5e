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

Proven interest (reader-signed, see messages.InterestProof): with a `judge`, a region's topic
interest counts only while the judge accepts it for that region (the region the route is for:
the advertising peer itself at distance 0, a region behind it otherwise). The judge verifies
the readers' proofs and grants in the host's own view and answers the interest trimmed to its
valid proofs plus how long it holds; routes and what we advertise onward carry only those
proofs, so the next gateway can judge them again. A distance-0 entry that names another region
than the peer is dropped. The host calls `rejudge()` when its access view changes and at
`next_expiry()`. Without a judge every interest counts (an open gateway: no owner to protect).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from federation.messages import Interest, RegionInterest, TopicInterest

MAX_DISTANCE = 16


@dataclass(frozen=True)
class Judged:
    """An accepted topic interest: trimmed to its valid proofs, valid until `until` (unix s;
    None: until the view changes)."""

    interest: TopicInterest
    until: float | None


# (region the interest is for, its topic interest) -> accepted, or None (refused).
Judge = Callable[[str, TopicInterest], Judged | None]


@dataclass(frozen=True)
class Route:
    region: str
    next_hop: str
    distance: int  # hops from this gateway
    topics: tuple[TopicInterest, ...]
    stale: bool = False  # remembered, not currently advertised


class RoutingTable:
    """Pure routing state of one gateway. Not thread-safe; owned by one event loop."""

    def __init__(self, local_region: str, judge: Judge | None = None) -> None:
        self.local_region = local_region
        self._judge = judge
        self._local: tuple[TopicInterest, ...] = ()
        self._received: dict[str, dict[str, RegionInterest]] = {}  # peer -> region -> as sent
        self._adverts: dict[str, dict[str, RegionInterest]] = {}  # the same, judged
        self._refused: dict[str, int] = {}  # peer -> topic interests refused at last judging
        self._expiry: dict[str | None, float] = {}  # peer (None: remembered) -> earliest end
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
        self._received[peer] = {}
        self._versions.pop(peer, None)
        self._recompute()

    def peer_advertised(self, peer: str, interest: Interest) -> bool:
        """Apply `peer`'s full advertisement (older versions ignored); True when routes changed."""
        if peer not in self._adverts:
            return False
        if interest.version <= self._versions.get(peer, -1):
            return False
        self._versions[peer] = interest.version
        self._received[peer] = {
            ri.region: ri
            for ri in interest.regions
            if ri.region != self.local_region
            and ri.distance < MAX_DISTANCE
            and (ri.distance > 0 or ri.region == peer)
        }
        self._judge_peer(peer)
        return self._recompute()

    def peer_down(self, peer: str) -> bool:
        """`peer`'s link is gone; its routes are withdrawn (and remembered). True when changed."""
        self._adverts.pop(peer, None)
        self._received.pop(peer, None)
        self._refused.pop(peer, None)
        if (end := self._expiry.pop(peer, None)) is not None:  # its routes are remembered
            self._expiry[None] = min(self._expiry.get(None, end), end)
        self._versions.pop(peer, None)
        return self._recompute()

    def rejudge(self) -> bool:
        """Judge every received interest again (the view changed, or a proof expired)."""
        for peer in list(self._received):
            self._judge_peer(peer)
        ends: list[float] = []
        for region, old in list(self._remembered.items()):
            topics, _ = self._accepted(region, old.topics, ends)
            self._remembered[region] = replace(old, topics=topics)
        self._set_expiry(None, ends)
        return self._recompute()

    # ---- outputs ------------------------------------------------------------------------------

    @property
    def local_interest(self) -> tuple[TopicInterest, ...]:
        return self._local

    def peers(self) -> list[str]:
        return sorted(self._adverts)

    def next_expiry(self) -> float | None:
        """When an accepted interest stops holding (unix s): call `rejudge()` then."""
        return min(self._expiry.values(), default=None)

    def refused(self, peer: str) -> int:
        """How many topic interests of `peer`'s last advertisement the judge refused."""
        return self._refused.get(peer, 0)

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

    def _judge_peer(self, peer: str) -> None:
        """Recompute `peer`'s judged advertisement from what it sent."""
        refused = 0
        ends: list[float] = []
        judged: dict[str, RegionInterest] = {}
        for region, ri in self._received[peer].items():
            topics, dropped = self._accepted(region, ri.topics, ends)
            refused += dropped
            judged[region] = replace(ri, topics=topics)
        self._adverts[peer] = judged
        self._refused[peer] = refused
        self._set_expiry(peer, ends)

    def _set_expiry(self, key: str | None, ends: list[float]) -> None:
        if ends:
            self._expiry[key] = min(ends)
        else:
            self._expiry.pop(key, None)

    def _accepted(
        self, region: str, topics: tuple[TopicInterest, ...], ends: list[float]
    ) -> tuple[tuple[TopicInterest, ...], int]:
        if self._judge is None:
            return topics, 0
        out = []
        for ti in topics:
            verdict = self._judge(region, ti)
            if verdict is None:
                continue
            out.append(verdict.interest)
            if verdict.until is not None:
                ends.append(verdict.until)
        return tuple(out), len(topics) - len(out)

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
