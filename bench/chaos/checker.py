"""Pure verdicts over a `History`: LOST, DUP, redeliveries, after-revoke, catch-up time.

Definitions (the report repeats them):
- **LOST**: an acknowledged (source, id) that a witness consumer (a durable group that holds its
  grant throughout) never received, after the run waited its bounded catch-up time.
- **DUP** (after dedup): an extra *stored copy*. Every delivery names the offset of the copy in
  the consumer region's store; a (source, id) delivered at two different offsets was stored
  twice, i.e. the gateway's (source, id) dedup let a copy through (a publisher retry, a
  federation resend, a relay). DUP = sum over keys of (distinct offsets - 1), per consumer.
- **Redelivered**: the same stored copy (same offset) delivered again. At-least-once allows it
  for a copy whose ack had not been made durable before a crash or a stream end; it is
  reported, not a floor.
- **After revoke**: deliveries to a revoked reader received after the moment its gateway was
  seen refusing that reader (a probe subscribe answered PERMISSION_DENIED).
- **Catch-up**: for each heal (a restarted gateway answering, a healed partition, a chain back),
  the time from the heal until every event acknowledged before it reached every witness; the
  run reports the largest. None when something acknowledged never arrived.
- **Failures**: a promise broken that is not a count, e.g. publishes that do not recover once a
  full disk has space again (issue 10 asks for recovery; the run then restarts the gateway, as
  an operator would, to count LOST and DUP anyway).
- **Resumed**: for each heal, the time from the heal to the first delivery at a witness after
  it (links redialed, consumers reconnected); the largest. Catch-up minus resumed is roughly
  the time the backlog took to drain.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from dataclasses import dataclass

from bench.chaos.history import Acked, Delivered, EventKey, History


@dataclass(frozen=True, slots=True)
class Verdict:
    acknowledged: int
    delivered: int  # distinct acknowledged keys every witness received
    lost: int
    dup: int
    redelivered: int
    after_revoke: int
    catch_up_s: float | None
    resumed_s: float | None = None
    lost_sample: tuple[EventKey, ...] = ()
    failures: tuple[str, ...] = ()  # e.g. publishes that never recovered after a full disk

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.dup == 0 and self.after_revoke == 0 and not self.failures


def lost(acked: set[EventKey], received: set[EventKey]) -> set[EventKey]:
    return acked - received


def duplicates(deliveries: Iterable[Delivered]) -> int:
    """Extra stored copies: per (consumer, key), distinct offsets beyond the first."""
    offsets: dict[tuple[str, EventKey], set[int]] = collections.defaultdict(set)
    for d in deliveries:
        offsets[(d.consumer, d.key)].add(d.offset)
    return sum(len(o) - 1 for o in offsets.values())


def redeliveries(deliveries: Iterable[Delivered]) -> int:
    """Deliveries of a copy (consumer, offset) already delivered once."""
    seen = collections.Counter((d.consumer, d.offset) for d in deliveries)
    return sum(n - 1 for n in seen.values())


def after_revoke(deliveries: Iterable[Delivered], applied: dict[str, float]) -> int:
    return sum(1 for d in deliveries if d.consumer in applied and d.at > applied[d.consumer])


def catch_up(
    acked: Iterable[Acked], deliveries: Iterable[Delivered], witnesses: Iterable[str],
    heals: Iterable[float],
) -> float | None:  # fmt: skip
    """Largest (last arrival among events acked before a heal) - heal; 0 if all came before."""
    first: dict[tuple[str, EventKey], float] = {}
    for d in deliveries:
        k = (d.consumer, d.key)
        if k not in first or d.at < first[k]:
            first[k] = d.at
    acked_list = list(acked)
    worst = 0.0
    for heal in heals:
        for w in witnesses:
            for a in acked_list:
                if a.at > heal:
                    continue
                arrived = first.get((w, a.key))
                if arrived is None:
                    return None
                worst = max(worst, arrived - heal)
    return worst


def resumed(deliveries: Iterable[Delivered], heals: Iterable[float]) -> float | None:
    """Largest (first delivery after a heal) - heal; None if nothing came after some heal."""
    times = sorted(d.at for d in deliveries)
    worst = 0.0
    for heal in heals:
        after = next((t for t in times if t > heal), None)
        if after is None:
            return None
        worst = max(worst, after - heal)
    return worst


def judge(history: History) -> Verdict:
    acked = history.acked_keys()
    witnesses = history.witnesses
    missing: set[EventKey] = set()
    for w in witnesses:
        missing |= lost(acked, history.seen.get(w, set()))
    witnessed = [d for d in history.delivered if d.consumer in witnesses]
    return Verdict(
        acknowledged=len(acked),
        delivered=len(acked) - len(missing),
        lost=len(missing),
        dup=duplicates(history.delivered),
        redelivered=redeliveries(history.delivered),
        after_revoke=after_revoke(history.delivered, history.revoke_applied),
        catch_up_s=catch_up(history.acked, witnessed, witnesses, history.heals),
        resumed_s=resumed(witnessed, history.heals),
        lost_sample=tuple(sorted(missing)[:5]),
        failures=tuple(history.failures),
    )
