"""How a region's store is laid out in ONE JetStream stream: subjects, headers, records (pure).

One stream per region, `MESHGATE_<REGION>`, subjects `mg.<region>.>`, `max_msgs_per_subject: 1`
(every subject is a key: only its latest message counts), no age or size limits (retention is
the gateway's explicit purges, so heads are never aged out by the stream):

    mg.<r>.v                    the layout's version (LAYOUT_VERSION), written when created
    mg.<r>.e.<topic>.<key>      an event, named by its dedup key = dedup_key(source, id), so
                                its subject IS its (topic, source, id); header Mg-Offset = its
                                offset; its stream sequence is the store's global `seq`
    mg.<r>.o.<topic>            the topic head, body = the topic's next offset; header
                                Mg-Last-Delta = its batch's last seq - its own seq
                                and Mg-Next = its body (followers see headers only)
    mg.<r>.g.<topic>.<group>    a durable group record (JSON)
    mg.<r>.c.<name>             a federation cursor, body = seq
    mg.<r>.l.<name>             a lease among the region's gateways (gateway/jetstream_lease.py)
    mg.<r>.i.<replica>          a replica's readers' interest (gateway/jetstream_interest.py)
    mg.<r>.w.<replica>          a replica's roster entry: its forward inbox, until when it is
                                live (gateway/jetstream_roster.py)

Beside the stream, never stored: `_mgw.<r>.<replica>`, a replica's forward inbox (core NATS
request/reply, gateway/jetstream_forward.py: rows of a topic it writes, from another replica).

Invariants (enforced by gateway/jetstream_store.py, each publish being one atomic batch):

- a batch writes heads first, then events, so the batch's ack sequence is the seq of its last
  event and the events' seqs are the last `n` sequences of the batch;
- every head carries `Nats-Expected-Last-Subject-Sequence` = the head's sequence as last seen
  (0: a new topic) and every event `... = 0` (create if absent): a concurrent writer in
  another process, or an event stored before, fails the WHOLE batch, which is then re-planned.
  So offsets stay dense per topic, in sequence order, and (topic, source, id) is stored once,
  with no time window (`Nats-Msg-Id` and its `duplicate_window` are not used), for as long as
  the event is stored: retention and deletions forget it, as in the SQLite store, whose unique
  index goes with the row. One message per event, not an event and a key.

Names are encoded as one subject token: [A-Za-z0-9_-] stay, every other byte becomes `~XX`.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from gateway.store import StoredEvent

H_OFFSET = "Mg-Offset"
H_ORIGIN = "Mg-Origin"
H_RECEIVED = "Mg-Received"
H_REPLICATION = "Mg-Replication"  # base64; absent for local publishes
H_EXPECT_SUBJECT_SEQ = "Nats-Expected-Last-Subject-Sequence"
H_LAST_DELTA = "Mg-Last-Delta"  # on a head: its batch's last sequence minus the head's own
H_NEXT = "Mg-Next"  # on a head: its body (the next offset), for headers-only followers
# payload bytes ever appended to the topic, through this event (on an event) or through the
# head's batch (on a head): the bytes stored from event e on are head - (e's - len(e)), with
# no scan (gateway/jetstream_reads.py, topic_figures)
H_BYTES = "Mg-Bytes"

_PLAIN = re.compile(rb"[A-Za-z0-9_-]")
_ALL_PLAIN = re.compile(r"[A-Za-z0-9_-]*")
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_~-]+")


@functools.lru_cache(maxsize=4096)
def token(name: str) -> str:
    """`name` as one subject token (no '.', '*', '>' or whitespace); reversible.

    Cached, with a fast path for plain names: the writer names every key and event subject
    through it (a per-byte encoding of each was ~30% of the append path's CPU)."""
    if _ALL_PLAIN.fullmatch(name) and name.isascii():
        return name
    return "".join(chr(b) if _PLAIN.fullmatch(bytes([b])) else f"~{b:02X}" for b in name.encode())


def untoken(tok: str) -> str:
    if not _TOKEN_CHARS.fullmatch(tok):
        raise ValueError(f"not a store token: {tok!r}")
    out = bytearray()
    i = 0
    while i < len(tok):
        if tok[i] == "~":
            out.append(int(tok[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(ord(tok[i]))
            i += 1
    return out.decode()


LAYOUT_VERSION = "2"  # 1: an event per offset subject plus a dedup-key subject per event


def stream_name(region: str) -> str:
    return "MESHGATE_" + token(region).replace("~", "_").upper()


def dedup_key(source: str, event_id: str) -> str:
    """A fixed-size token for (source, id): sha256 of both, length-prefixed (no ambiguity)."""
    raw = f"{len(source)}:{source}\x00{event_id}".encode()
    return hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True, slots=True)
class Layout:
    """The subjects of one region's stream."""

    region: str

    @property
    def stream(self) -> str:
        return stream_name(self.region)

    @property
    def root(self) -> str:
        return f"mg.{token(self.region)}"

    @property
    def all_subjects(self) -> str:
        return f"{self.root}.>"

    @property
    def all_events(self) -> str:
        return f"{self.root}.e.>"

    @property
    def all_heads(self) -> str:
        return f"{self.root}.o.*"

    def topic_events(self, topic: str) -> str:
        return f"{self.root}.e.{token(topic)}.*"

    def event(self, topic: str, key: str) -> str:
        """The subject of `topic`'s event whose dedup key is `key` (= dedup_key(source, id))."""
        return f"{self.root}.e.{token(topic)}.{key}"

    @property
    def version(self) -> str:
        return f"{self.root}.v"

    def head(self, topic: str) -> str:
        return f"{self.root}.o.{token(topic)}"

    def group(self, topic: str, group: str) -> str:
        return f"{self.root}.g.{token(topic)}.{token(group)}"

    def all_groups(self) -> str:
        return f"{self.root}.g.>"

    def cursor(self, name: str) -> str:
        return f"{self.root}.c.{token(name)}"

    @property
    def all_cursors(self) -> str:
        return f"{self.root}.c.*"

    def interest(self, replica: str) -> str:
        return f"{self.root}.i.{token(replica)}"

    @property
    def all_interest(self) -> str:
        return f"{self.root}.i.*"

    def member(self, replica: str) -> str:
        return f"{self.root}.w.{token(replica)}"

    @property
    def all_members(self) -> str:
        return f"{self.root}.w.*"

    def inbox(self, replica: str) -> str:
        """A replica's forward inbox: outside the stream's subjects, so never stored."""
        return f"_mgw.{token(self.region)}.{token(replica)}"

    def topic_of(self, subject: str) -> str:
        """The topic of an event or head subject."""
        parts = subject.split(".")
        return untoken(parts[3])

    def name_of(self, subject: str) -> str:
        """The name of a cursor or lease subject."""
        return untoken(subject.split(".")[3])


def event_headers(
    offset: int,
    origin: str,
    replication: bytes | None,
    received_at: float,
    appended_bytes: int,
) -> dict[str, str]:
    """The headers of `event`'s record (its subject carries its topic and dedup key)."""
    headers = {
        H_OFFSET: str(offset),
        H_ORIGIN: origin,
        H_RECEIVED: repr(received_at),
        H_BYTES: str(appended_bytes),
    }
    if replication is not None:
        headers[H_REPLICATION] = base64.b64encode(replication).decode()
    return headers


def appended_bytes(headers: Mapping[str, str]) -> int:
    """H_BYTES of a head or event; 0 on one written before it existed (only differences of
    it are read, and `topic_figures` checks the first event has it)."""
    return int(headers.get(H_BYTES, 0))


def stored_event(
    layout: Layout, seq: int, subject: str, headers: dict[str, str], payload: bytes
) -> StoredEvent:
    blob = headers.get(H_REPLICATION)
    return StoredEvent(
        seq=seq,
        topic=layout.topic_of(subject),
        offset=int(headers[H_OFFSET]),
        payload=payload,
        origin_region=headers[H_ORIGIN],
        replication=base64.b64decode(blob) if blob is not None else None,
        received_at=float(headers[H_RECEIVED]),
        size=len(payload),
    )
