"""`GatewayKeySets`: the key sets a registry gateway takes, holds and hands out (issue 12).

One rule for both doors a key set comes through (PutKeySet from anyone, the federation flood
from any peer): it is taken only if this gateway's view of the chain backs it, so no caller
and no region can make a gateway hold a forged set or replace one:

1. the topic is registered encrypted (else NOT_FOUND / FAILED_PRECONDITION);
2. the document's keccak256 is recorded on chain for the topic (`view.key_sets`), under the
   epoch the document names; a hash the view does not know yet first catches the view up to
   the chain head (gateway/view_catch_up.py): an owner puts a set right after its publishKeySet
   transaction, often before the follower has read that block;
3. policy/key_sets.py `verify`: canonical document for this topic, chain and registry, signed
   (EIP-191) by the topic's owner in the view.

Then it is stored durably (gateway/key_set_store.py) before the call answers; the federation
flood (federation/key_set_relay.py) watches the store through the `KeySetSource` port this
class implements and offers the set to every peer.

Errors (gateway/status.py): a malformed, foreign or not-owner-signed set is KeySetError
(INVALID_ARGUMENT, reason named); a hash the chain does not record is KeySetNotAccepted
(FAILED_PRECONDITION, the reason `hash_not_on_chain` in the text). Who may call: anyone; a
set's validity comes from the chain and the owner's signature, and a set holds only sealed
keys, so reading them needs no grant either.
"""

from __future__ import annotations

from collections.abc import Sequence

from eventmodel.provenance import Binding
from federation.messages import TopicKeySet
from gateway.errors import InvalidTopicName, KeySetNotAccepted, TopicNotFound
from gateway.key_set_store import KeySetStore, StoredKeySet, hash_hex
from gateway.topics import check_topic_name
from gateway.view_catch_up import ViewCatchUp
from policy import key_sets
from policy.errors import KeySetError
from policy.grant_view import GrantView, TopicRecord


class GatewayKeySets:
    def __init__(
        self,
        store: KeySetStore,
        view: GrantView,
        binding: Binding,
        catch_up: ViewCatchUp | None = None,
    ) -> None:
        self.store = store
        self._view = view
        self._binding = binding
        self._catch_up = catch_up

    # -- the chain's word ----------------------------------------------------------------

    def encryption_of(self, topic: str) -> tuple[bool, int]:
        """(registered encrypted, current epoch or 0) in this view (TopicInfo)."""
        record = self._view.topic(topic)
        if record is None or not record.encrypted:
            return False, 0
        return True, record.key_epoch.epoch if record.key_epoch is not None else 0

    def _encrypted(self, topic: str, record: TopicRecord | None) -> TopicRecord:
        if record is None:
            raise TopicNotFound(f"no topic {topic!r} on chain")
        if not record.encrypted:
            raise KeySetNotAccepted(
                "not_encrypted", f"topic {topic!r} is not encrypted: it has no key sets"
            )
        return record

    # -- PutKeySet, and what peers send --------------------------------------------------

    async def put(self, topic: str, document: bytes, signature: bytes) -> StoredKeySet:
        """Verify (module docstring), store durably; the set as held. Raises the errors above."""
        check_topic_name(topic)
        key_sets.decode(document)  # malformed: refused before any chain round trip
        key_set_hash = hash_hex(document)
        record = self._view.topic(topic)
        if record is None or not record.encrypted or key_set_hash not in record.key_sets:
            if self._catch_up is not None:
                await self._catch_up.wait()
            record = self._view.topic(topic)
        record = self._encrypted(topic, record)
        try:
            doc = key_sets.verify(
                document,
                signature,
                topic=topic,
                owner=record.owner,
                recorded_epoch=record.key_sets.get(key_set_hash, 0),
                chain_id=self._binding.chain_id,
                registry=self._binding.registry_hex,
            )
        except KeySetError as exc:
            if exc.reason == "hash_not_on_chain":
                raise KeySetNotAccepted(exc.reason, str(exc)) from exc
            raise
        held = StoredKeySet(
            topic=topic,
            epoch=doc.epoch,
            key_set_hash=key_set_hash,
            document=document,
            signature=signature,
        )
        await self.store.put(held)
        return held

    # -- GetKeySets --------------------------------------------------------------------

    def get(self, topic: str, from_epoch: int = 0) -> tuple[list[StoredKeySet], int]:
        """Held sets of an encrypted topic from `from_epoch`, oldest first, and the view's
        current epoch (0 before the first set is on chain)."""
        check_topic_name(topic)
        record = self._encrypted(topic, self._view.topic(topic))
        current = record.key_epoch.epoch if record.key_epoch is not None else 0
        return self.store.for_topic(topic, from_epoch), current

    # -- federation's KeySetSource port --------------------------------------------------

    def key_sets(self) -> Sequence[TopicKeySet]:
        return [TopicKeySet(s.topic, s.document, s.signature) for s in self.store.all()]

    async def wait_key_sets(self, seen_version: int) -> int:
        return await self.store.wait_changed(seen_version)

    async def accept_key_set(self, key_set: TopicKeySet) -> str | None:
        """None once held; else a short reason (a metric label) why it is refused."""
        held = self.store.get(hash_hex(key_set.document))
        if held is not None and (held.topic, held.signature) == (key_set.topic, key_set.signature):
            return None
        try:
            await self.put(key_set.topic, key_set.document, key_set.signature)
        except (KeySetError, KeySetNotAccepted) as exc:
            return exc.reason
        except (TopicNotFound, InvalidTopicName):
            return "unknown_topic"
        return None
