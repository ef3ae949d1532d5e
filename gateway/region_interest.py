"""Region-wide interest (pure): every replica's readers, merged for the region's one member.

A region on a JetStream cluster is one federation member, but its readers are spread over its
replicas, and only the lease holder runs the federation node (gateway/jetstream_federation.py).
So each replica publishes its own interest — `InterestRegistry.proven()`: topics, filters and
the readers' live proofs, exactly as gateway/interest.py holds them — as one entry under its
replica id (gateway/jetstream_interest.py is the I/O shell), and the holder advertises the
union of its own and every live replica's entries.

Rules (all here, no I/O):

- an entry is live while `at + ttl > now` (`at` = when its replica last wrote it; a replica
  rewrites it every ttl/3 and on every change), so a replica that died stops counting within
  ttl; an entry with `at == 0` is a replica's farewell (it shut down cleanly);
- `merge` is a union by `Interest` (topic, filters); per interest, one proof per reader (the
  latest-expiring), expired proofs dropped, the latest-expiring MAX_PROOFS_PER_TOPIC kept;
- the merge decides nothing about authorization: the proofs travel as the replicas held them
  and the receiving peers judge them against the chain, as for a single gateway.

`decode` raises ValueError for anything malformed (the shell logs and ignores the entry).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from eventmodel import filters
from federation.messages import MAX_PROOFS_PER_TOPIC
from gateway.interest import Interest, ReaderProof, Snapshot


@dataclass(frozen=True, slots=True)
class ReplicaInterest:
    """One replica's entry: what its readers want, as of `at` (unix s; 0 = gone)."""

    replica: str
    at: float
    interests: Mapping[Interest, tuple[ReaderProof, ...]]

    def live(self, now: float, ttl: float) -> bool:
        return self.at > 0 and self.at + ttl > now


def encode(replica: str, proven: Snapshot, at: float) -> bytes:
    """The entry `replica` writes: canonical JSON (sorted), so equal interest = equal bytes."""
    rows = [
        {
            "topic": i.topic,
            "filters": filters.list_to_json(i.filters),
            "proofs": [
                {
                    "address": p.address,
                    "message": p.message,
                    "signature": p.signature.hex(),
                    "expires_at": p.expires_at,
                }
                for p in proofs
            ],
        }
        for i, proofs in proven.items()
    ]
    rows.sort(key=lambda r: json.dumps(r, sort_keys=True))
    doc = {"replica": replica, "at": at, "interests": rows}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def decode(raw: bytes) -> ReplicaInterest:
    """An entry as `encode` wrote it. Raises ValueError if it is not one."""
    try:
        doc: Any = json.loads(raw)
        interests: dict[Interest, tuple[ReaderProof, ...]] = {}
        for row in doc["interests"]:
            interest = Interest(str(row["topic"]), filters.list_from_json(row["filters"]))
            interests[interest] = tuple(
                ReaderProof(
                    str(p["address"]),
                    str(p["message"]),
                    bytes.fromhex(str(p["signature"])),
                    float(p["expires_at"]),
                )
                for p in row["proofs"]
            )
        return ReplicaInterest(str(doc["replica"]), float(doc["at"]), interests)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a region interest entry: {exc!r}") from exc


def merge(own: Snapshot, others: Iterable[ReplicaInterest], *, now: float, ttl: float) -> Snapshot:
    """The region's interest: `own` (this replica's, live) and every live entry of `others`."""
    proofs: dict[Interest, dict[str, ReaderProof]] = {}
    sources = [own] + [e.interests for e in others if e.live(now, ttl)]
    for source in sources:
        for interest, held in source.items():
            by_reader = proofs.setdefault(interest, {})
            for p in held:
                old = by_reader.get(p.address)
                if p.expires_at > now and (old is None or old.expires_at < p.expires_at):
                    by_reader[p.address] = p
    out: Snapshot = {}
    for interest, by_reader in proofs.items():
        ranked = sorted(by_reader.values(), key=lambda p: (-p.expires_at, p.address))
        out[interest] = tuple(ranked[:MAX_PROOFS_PER_TOPIC])
    return out


def next_change(others: Iterable[ReplicaInterest], *, now: float, ttl: float) -> float | None:
    """When the merge next changes by time alone: a live entry dies or one of its proofs
    expires (unix s); None if nothing live is held."""
    times: list[float] = []
    for entry in others:
        if entry.live(now, ttl):
            times.append(entry.at + ttl)
            times.extend(p.expires_at for ps in entry.interests.values() for p in ps)
    later = [t for t in times if t > now]
    return min(later) if later else None


def stale(others: Iterable[ReplicaInterest], *, now: float, ttl: float, keep: float) -> list[str]:
    """Replicas whose entries have been dead for over `keep` seconds (to purge)."""
    return [e.replica for e in others if e.at + ttl + keep <= now]
