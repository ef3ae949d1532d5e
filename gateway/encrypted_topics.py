"""`EncryptedTopicRules`: a registry gateway stores only sealed events on an encrypted topic.

An EventRule (gateway/event_rules.py): it runs after the publisher checks, at both storing
doors, and decides from this gateway's view of the chain (policy/grant_view.py: `encrypted`,
`key_epoch` = the newest epoch with the wall time this view learnt of it). Topics that are not
registered encrypted pass untouched. The gateway holds no key: it checks the shape the client
sealed (eventmodel/encryption.py `looks_sealed`, `epoch_of`), never the data itself.

Client door (`check_publish`, all or nothing, one line):

- not sealed (no `mgepoch`, data not binary, too short): EncryptionRequired, INVALID_ARGUMENT
  "topic 'x' is encrypted: event 'id' has no mgepoch (plaintext?)";
- no key set on chain yet (after a catch-up): KeyEpochRefused, FAILED_PRECONDITION;
- an epoch newer than the view's current one: the view catches up to the chain head first
  (the owner may have rotated a block ago), then KeyEpochRefused if still unknown;
- an epoch older than the current one once `grace` seconds have passed since this view saw
  the current epoch: KeyEpochRefused naming both epochs. The grace lets publishers that
  sealed just before a rotation finish; it is the window in which a reader revoked by that
  rotation may still read new events (it holds the older epoch's key). The grace starts when
  this gateway learnt of the epoch, so a gateway restarted gives the grace again.

Federation door (`admit`, a reason per event):

- not sealed: `plaintext` (a certified rogue region cannot inject cleartext);
- an epoch newer than the view (after one catch-up): AdmissionPaused, the batch is resent
  later, when the view has the new epoch;
- an older epoch is accepted: the origin judged it at its client door within its grace and
  acknowledged it to the publisher; the event reaches later regions later (links down, a
  relay, catch-up), so judging the grace again here would drop events the mesh owes its
  readers. The publisher signature (checked first) covers `mgepoch`, so no region can move an
  event to another epoch, and an older epoch's ciphertext is no more readable than it was.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from eventmodel.attributes import PbEvent
from eventmodel.encryption import epoch_of, looks_sealed
from eventmodel.errors import UndecodableEvent
from federation.errors import AdmissionPaused
from federation.ports import InboundEvent
from gateway.config import DEFAULT_ENCRYPTION_GRACE
from gateway.errors import EncryptionRequired, KeyEpochRefused
from gateway.view_catch_up import ViewCatchUp
from policy.grant_view import GrantView, TopicRecord


class EncryptedTopicRules:
    def __init__(
        self,
        view: GrantView,
        *,
        catch_up: ViewCatchUp | None = None,
        grace: float = DEFAULT_ENCRYPTION_GRACE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if grace < 0:
            raise ValueError("encryption grace must be >= 0")
        self._view = view
        self._catch_up = catch_up
        self.grace = grace
        self._clock = clock

    async def _caught_up(self, topic: str) -> TopicRecord | None:
        if self._catch_up is not None:
            await self._catch_up.wait()
        return self._view.topic(topic)

    # -- client door ---------------------------------------------------------------------

    async def check_publish(self, topic: str, events: Sequence[PbEvent]) -> None:
        record = self._view.topic(topic)
        if record is None or not record.encrypted:
            return
        newest = 0
        for pb in events:
            reason = looks_sealed(pb)
            if reason is not None:
                raise EncryptionRequired(f"topic {topic!r} is encrypted: {reason}")
            newest = max(newest, epoch_of(pb) or 0)
        current = record.key_epoch
        if current is None or newest > current.epoch:
            record = await self._caught_up(topic)
            current = None if record is None else record.key_epoch
        if current is None:
            raise KeyEpochRefused(
                f"topic {topic!r} is encrypted but has no key set on chain yet "
                "(the owner publishes epoch 1 at registration)"
            )
        if newest > current.epoch:
            raise KeyEpochRefused(
                f"topic {topic!r}: epoch {newest} is not on chain (current epoch {current.epoch})"
            )
        late = self._clock() - current.seen_at > self.grace
        for pb in events:
            epoch = epoch_of(pb) or 0
            if epoch < current.epoch and late:
                raise KeyEpochRefused(
                    f"topic {topic!r}: event {pb.id!r} is sealed under epoch {epoch}, "
                    f"older than the current epoch {current.epoch} (grace of "
                    f"{self.grace:g}s passed): fetch the key sets and seal again"
                )

    # -- federation door -----------------------------------------------------------------

    async def admit(self, events: Sequence[InboundEvent]) -> Sequence[str | None]:
        out: list[str | None] = []
        needed: dict[str, int] = {}  # topic -> highest epoch seen in this batch
        for ev in events:
            record = self._view.topic(ev.topic)
            if record is None or not record.encrypted:
                out.append(None)
                continue
            try:
                pb = ev.message()
            except UndecodableEvent:
                out.append("invalid_event")
                continue
            if looks_sealed(pb) is not None:
                out.append("plaintext")
                continue
            epoch = epoch_of(pb) or 0
            needed[ev.topic] = max(needed.get(ev.topic, 0), epoch)
            out.append(None)
        unknown = [(t, e) for t, e in needed.items() if not self._known(t, e)]
        if unknown and self._catch_up is not None:  # one catch-up per batch, not per topic
            await self._catch_up.wait()
        for topic, epoch in unknown:
            if not self._known(topic, epoch):
                record = self._view.topic(topic)
                current = None if record is None else record.key_epoch
                have = "none" if current is None else current.epoch
                raise AdmissionPaused(
                    f"topic {topic!r}: epoch {epoch} not in this view yet (current {have})"
                )
        return out

    def _known(self, topic: str, epoch: int) -> bool:
        record = self._view.topic(topic)
        current = None if record is None else record.key_epoch
        return current is not None and epoch <= current.epoch
