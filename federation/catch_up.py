"""Catch-up after a lost route: the pure decision of which topics a peer must be re-sent.

Why: routing is interest-only, so while a peer's route for a topic is gone (its link down or
stale, its region restarted, its reader's proof expired, no reader for a while) the pump reads
that topic's events and withholds them, and the peer's cursor moves past them. Without a
record of that, they would never reach the peer once its interest is back.

Rules, per (peer, region, topic), the region being the peer itself or one routed through it,
enforced here and by DataPath:
- A (region, topic) routed through the peer at one read and not at the next opens a *gap* at
  the read's start (`since`): the region may lack that topic's events with seq > since.
- A (region, topic) routed for the first time opens nothing: a region that never showed
  interest gets nothing from before it did (issue 11: no proof, no events).
- While a gap is open, the cursor persisted for the peer is held at `since` (never above), so
  a restart of either side resends from there.
- When the topic is routed again: if this link has read past `since`, the link must rewind
  (`rewind=True`: DataPath raises ReadRewind, the link drains and reconnects, and the new link
  starts from the held cursor, which is <= since). A link that starts at or below `since`
  covers the gap: the gap is *closing* until the peer acks that read, then it is gone. Lost
  again before that ack: open again, at the same `since`. An idle link (nothing new to read)
  is asked too (`idle`), so a route back rewinds without waiting for the next event.
- Re-reads skip, per record, what the peer already holds: a record at or below the highest
  seq the peer acked on any link is sent only when its topic has a gap below it (to the
  regions routed now: one behind the peer that already had it deduplicates too). Receivers
  deduplicate by (topic, source, id), so a resend never stores twice.
- A (region, topic) routed through another peer now drops its gap here: the region moved
  (a route that changes next hop is not caught up; its gap would hold this cursor for ever).
- Relayed events keep the destinations their origin chose: a relay resends them only to
  those (catch-up is complete for this gateway's own events).

Costs and limits: a gap whose topic never comes back holds the peer's cursor for good, so
each new link to that peer re-reads (and skips) the log from there, bounded by the log's
retention. Not persisted: the gaps, the routed set and the acked high-water mark live in
memory; a sender restart keeps the held cursor (so it resends every routed topic from the
earliest gap; the peer deduplicates) but forgets which topics had routes, so a topic whose
route is absent across the sender's restart is not caught up.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

Want = tuple[str, str]  # (region, topic): a region's interest in a topic, routed via a peer


@dataclass
class _Gap:
    since: int
    closing_at: int | None = None  # the read end whose ack closes the gap


@dataclass
class _Peer:
    routed: frozenset[Want] = frozenset()
    gaps: dict[Want, _Gap] = field(default_factory=dict)
    acked: int = -1  # highest seq the peer acked on any link since we started
    read_end: dict[Hashable, int] = field(default_factory=dict)  # per link: last read's end


@dataclass(frozen=True)
class ReadPlan:
    """What to do with one read for a peer: `rewind` (send nothing, restart the link), or send
    the records `wanted(seq, topic)` says."""

    rewind: bool
    acked: int
    gaps: dict[Want, int]  # (region, topic) -> since, for those with a gap

    def wanted(self, seq: int, topic: str) -> bool:
        since = min((s for (_, t), s in self.gaps.items() if t == topic), default=None)
        if since is not None:
            return seq > since
        return seq > self.acked


class CatchUp:
    """Gaps per peer. Pure: fed reads and acks, answers plans and the cursor to persist."""

    def __init__(self) -> None:
        self._peers: dict[str, _Peer] = {}

    def read(
        self,
        peer: str,
        link: Hashable,
        *,
        first: int,
        last: int,
        routed: Iterable[Want],
        elsewhere: Iterable[Want] = (),
    ) -> ReadPlan:
        """A read of records `first`..`last` (seqs) for `peer` on `link`; `routed`: the
        (region, topic) pairs routed through the peer now; `elsewhere`: those routed through
        another peer (their gaps here are dropped: the region moved)."""
        p = self._peers.setdefault(peer, _Peer())
        now = frozenset(routed)
        moved = set(elsewhere) - now
        for want in moved & p.gaps.keys():
            del p.gaps[want]
        start = first - 1
        previous_end = p.read_end.get(link)  # None: this link's first read (from the cursor)
        rewind = False
        for want in p.routed - now - moved:
            gap = p.gaps.get(want)
            if gap is None:
                p.gaps[want] = _Gap(since=start)
            else:
                gap.closing_at = None
        for want in now:
            gap = p.gaps.get(want)
            if gap is None or gap.closing_at is not None:
                continue
            if previous_end is not None and previous_end > gap.since:
                rewind = True
            else:
                gap.closing_at = last
        p.routed = now
        plan = ReadPlan(rewind=rewind, acked=p.acked, gaps={t: g.since for t, g in p.gaps.items()})
        if not rewind:
            p.read_end[link] = last
        return plan

    def idle(self, peer: str, link: Hashable, *, routed: Iterable[Want]) -> bool:
        """A read on `link` found nothing new: True when the link must rewind anyway (a topic
        with a gap it read past is routed again; without a read it would wait for the next
        event). Changes nothing: a topic lost while idle opens its gap at the next read."""
        p = self._peers.get(peer)
        if p is None:
            return False
        end = p.read_end.get(link)
        if end is None:
            return False
        now = set(routed)
        return any(
            gap.closing_at is None and end > gap.since
            for want, gap in p.gaps.items()
            if want in now
        )

    def acked(self, peer: str, seq: int) -> int:
        """The peer acked our log up to `seq`: close the gaps that read covered; returns the
        cursor to persist (the highest ack, held at the earliest open gap)."""
        p = self._peers.setdefault(peer, _Peer())
        p.acked = max(p.acked, seq)
        for want, gap in list(p.gaps.items()):
            if gap.closing_at is not None and gap.closing_at <= seq:
                del p.gaps[want]
        return min([p.acked, *(g.since for g in p.gaps.values())])

    def link_gone(self, link: Hashable) -> None:
        for p in self._peers.values():
            p.read_end.pop(link, None)

    def gaps(self, peer: str) -> dict[Want, int]:
        """Open gaps through `peer`: (region, topic) -> since (for statistics and tests)."""
        p = self._peers.get(peer)
        return {} if p is None else {t: g.since for t, g in p.gaps.items()}
