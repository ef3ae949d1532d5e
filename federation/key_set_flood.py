"""`KeySetFlood`: which key sets go to which peer link, sans I/O (issue 12).

Key sets are small, rare and public (sealed keys only); every region should hold every
verified one, so they are flooded, not routed. Validity comes from the chain and the owner's
signature, which only the host can check (the `KeySetSource` port): the flood carries a set
onward only once its host accepted it, so a certified rogue region cannot spread a forged set
past its first honest neighbour.

State: `held` (every set this gateway accepted, by topic and a digest of document and
signature) and, per linked
peer, the keys that peer is known to have: sent to it on this link, or received from it.

Rules:
- link up: send the peer every held set (in chunks of MAX_KEY_SETS_PER_MESSAGE and about
  CHUNK_BYTES); a reconnected link starts afresh (the peer may have lost nothing, but a set it
  refused while its view lagged is offered again);
- received from a peer: the peer has it from now on (never sent back to it); a key the peer
  already sent on this link, or that is held, is not checked again (a peer repeating itself
  costs nothing); the rest go to the host to check, one by one;
- accepted (by the host, from a peer or from PutKeySet through the port's store): held, and
  sent once to every linked peer that does not have it;
- refused: dropped (the sender offers it again on its next link up).
Loop freedom: a set is forwarded only when it first becomes held, so each region forwards it
at most once per link; a peer is never sent what it sent us.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from federation.messages import MAX_KEY_SETS_PER_MESSAGE, TopicKeySet

CHUNK_BYTES = 2 * 1024 * 1024  # below the federation's message limit, with room
Key = tuple[str, bytes]


def key_of(key_set: TopicKeySet) -> Key:
    """The signature is part of a set's identity: a copy of a genuine document under a forged
    signature, sent first, must not shadow the genuine set (it is checked on its own)."""
    digest = hashlib.sha256(len(key_set.document).to_bytes(8, "big"))
    digest.update(key_set.document)
    digest.update(key_set.signature)
    return key_set.topic, digest.digest()


@dataclass(frozen=True)
class SendKeySets:
    peer: str
    sets: tuple[TopicKeySet, ...]


class KeySetFlood:
    def __init__(self) -> None:
        self._held: dict[Key, TopicKeySet] = {}
        self._has: dict[str, set[Key]] = {}

    @property
    def held(self) -> int:
        return len(self._held)

    def peers(self) -> list[str]:
        return sorted(self._has)

    def link_up(self, peer: str) -> list[SendKeySets]:
        """A link to `peer` streams: offer it everything held."""
        self._has[peer] = set(self._held)
        return _chunks(peer, self._held.values())

    def link_down(self, peer: str) -> None:
        self._has.pop(peer, None)

    def received(self, peer: str, sets: Sequence[TopicKeySet]) -> list[TopicKeySet]:
        """What the host must check, of what `peer` sent (see the rules)."""
        has = self._has.get(peer)
        if has is None:  # not linked (a late message of a closed link): ignore
            return []
        out = []
        for key_set in sets:
            key = key_of(key_set)
            if key in has or key in self._held:
                has.add(key)
                continue
            has.add(key)
            out.append(key_set)
        return out

    def accepted(self, key_set: TopicKeySet) -> list[SendKeySets]:
        """The host holds `key_set` (verified): hold it and send it where it is missing."""
        key = key_of(key_set)
        if key in self._held:
            return []
        self._held[key] = key_set
        sends = []
        for peer, has in sorted(self._has.items()):
            if key not in has:
                has.add(key)
                sends.append(SendKeySets(peer, (key_set,)))
        return sends


def _chunks(peer: str, sets: Iterable[TopicKeySet]) -> list[SendKeySets]:
    out: list[SendKeySets] = []
    chunk: list[TopicKeySet] = []
    size = 0
    for key_set in sets:
        n = len(key_set.document) + len(key_set.signature)
        if chunk and (len(chunk) >= MAX_KEY_SETS_PER_MESSAGE or size + n > CHUNK_BYTES):
            out.append(SendKeySets(peer, tuple(chunk)))
            chunk, size = [], 0
        chunk.append(key_set)
        size += n
    if chunk:
        out.append(SendKeySets(peer, tuple(chunk)))
    return out
