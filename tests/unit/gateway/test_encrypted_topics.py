"""EncryptedTopicRules: every refusal at the client door, the grace on an injected clock, and
the federation door (plaintext refused, older epochs taken, newer ones pause)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from eventmodel.attributes import PbEvent
from eventmodel.encryption import seal_event
from federation.errors import AdmissionPaused
from federation.ports import InboundEvent
from gateway.encrypted_topics import EncryptedTopicRules
from gateway.errors import EncryptionRequired, KeyEpochRefused
from policy.grant_view import GrantView, KeySetRecorded, TopicRegistered

OWNER = "0x" + "ab" * 20
KEY = b"\x07" * 32


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeCatchUp:
    """Stands for ViewCatchUp: 'the chain head' is whatever `pending` holds; wait() applies it."""

    def __init__(self, view: GrantView) -> None:
        self.view = view
        self.pending: list[KeySetRecorded] = []
        self.waits = 0

    async def wait(self) -> None:
        self.waits += 1
        for change in self.pending:
            self.view.apply(change)
        self.pending.clear()


def recorded(epoch: int, seen_at: float, topic: str = "orders") -> KeySetRecorded:
    return KeySetRecorded(
        topic=topic, epoch=epoch, key_set_hash=f"0x{epoch:064x}", block=10 + epoch, seen_at=seen_at
    )


def setup(
    *epochs: int, grace: float = 30.0
) -> tuple[EncryptedTopicRules, GrantView, FakeCatchUp, Clock]:
    view = GrantView()
    view.apply(TopicRegistered(topic="orders", owner=OWNER, block=1, encrypted=True))
    view.apply(TopicRegistered(topic="plain", owner=OWNER, block=2))
    clock = Clock()
    for epoch in epochs:
        view.apply(recorded(epoch, clock.now))
    catch_up = FakeCatchUp(view)
    rules = EncryptedTopicRules(view, catch_up=catch_up, grace=grace, clock=clock)  # type: ignore[arg-type]
    return rules, view, catch_up, clock


def plain(i: int = 0) -> PbEvent:
    pb = PbEvent(id=f"e{i}", source="/s", spec_version="1.0", type="t")
    pb.text_data = "secret marker"
    return pb


def sealed(epoch: int, i: int = 0, topic: str = "orders") -> PbEvent:
    return seal_event(plain(i), topic, epoch, KEY)


def inbound(pb: PbEvent, topic: str = "orders") -> InboundEvent:
    return InboundEvent(topic, pb.SerializeToString(deterministic=True), b"", "zz")


async def refused(rules: EncryptedTopicRules, events: list[PbEvent], kind: type) -> str:
    with pytest.raises(kind) as info:
        await rules.check_publish("orders", events)
    return str(info.value)


# -- client door ---------------------------------------------------------------------------


async def test_sealed_events_under_the_current_epoch_pass() -> None:
    rules, _, catch_up, _ = setup(1, 2)
    await rules.check_publish("orders", [sealed(2, 0), sealed(2, 1)])
    assert catch_up.waits == 0  # an allowed publish never waits for the chain


async def test_topics_not_encrypted_and_unknown_topics_are_not_this_rules_business() -> None:
    rules, _, _, _ = setup(1)
    await rules.check_publish("plain", [plain()])
    await rules.check_publish("nowhere", [plain()])


async def test_plaintext_is_refused_with_the_topic_named() -> None:
    rules, _, _, _ = setup(1)
    text = await refused(rules, [sealed(1, 0), plain(1)], EncryptionRequired)
    assert text == "topic 'orders' is encrypted: event 'e1' has no mgepoch (plaintext?)"


@pytest.mark.parametrize(
    "tamper, reason",
    [
        (lambda pb: pb.attributes["mgepoch"].__setattr__("ce_string", "1"), "must be an Integer"),
        (lambda pb: pb.__setattr__("text_data", "x"), "sealed data must be binary"),
        (lambda pb: pb.__setattr__("binary_data", b"short"), "under"),
    ],
)
async def test_events_not_in_the_sealed_shape_are_refused(
    tamper: Callable[[PbEvent], None], reason: str
) -> None:
    rules, _, _, _ = setup(1)
    pb = sealed(1)
    tamper(pb)
    assert reason in await refused(rules, [pb], EncryptionRequired)


async def test_no_key_set_on_chain_is_refused_after_a_catch_up() -> None:
    rules, _, catch_up, _ = setup()
    text = await refused(rules, [sealed(1)], KeyEpochRefused)
    assert "has no key set on chain yet" in text
    assert catch_up.waits == 1


async def test_an_epoch_newer_than_the_view_catches_up_before_deciding() -> None:
    rules, _, catch_up, clock = setup(1)
    catch_up.pending.append(recorded(2, clock.now))  # rotated a block ago
    await rules.check_publish("orders", [sealed(2)])
    assert catch_up.waits == 1
    text = await refused(rules, [sealed(5)], KeyEpochRefused)
    assert text == "topic 'orders': epoch 5 is not on chain (current epoch 2)"
    assert catch_up.waits == 2


async def test_an_older_epoch_passes_inside_the_grace_and_is_refused_after_it() -> None:
    rules, view, _, clock = setup(1, grace=30.0)
    clock.now += 100  # epoch 1 is old news; epoch 2 arrives now
    view.apply(recorded(2, clock.now))
    await rules.check_publish("orders", [sealed(1)])
    clock.now += 30.0
    await rules.check_publish("orders", [sealed(1)])  # the bound itself is still inside
    clock.now += 0.5
    text = await refused(rules, [sealed(2, 0), sealed(1, 1)], KeyEpochRefused)
    assert "event 'e1' is sealed under epoch 1, older than the current epoch 2" in text
    assert "grace of 30s passed" in text
    await rules.check_publish("orders", [sealed(2)])


async def test_a_zero_grace_refuses_any_older_epoch_at_once() -> None:
    rules, view, _, clock = setup(1, grace=0.0)
    clock.now += 1
    view.apply(recorded(2, clock.now))
    clock.now += 0.001
    await refused(rules, [sealed(1)], KeyEpochRefused)


def test_a_negative_grace_is_a_configuration_error() -> None:
    with pytest.raises(ValueError):
        EncryptedTopicRules(GrantView(), grace=-1)


# -- federation door ------------------------------------------------------------------------


async def test_admit_refuses_plaintext_and_undecodable_and_takes_sealed() -> None:
    rules, _, _, _ = setup(1)
    verdicts = await rules.admit(
        [
            inbound(sealed(1, 0)),
            inbound(plain(1)),
            InboundEvent("orders", b"\xff\xff", b"", "zz"),
            inbound(plain(2), topic="plain"),
        ]
    )
    assert list(verdicts) == [None, "plaintext", "invalid_event", None]


async def test_admit_takes_older_epochs_long_after_the_grace() -> None:
    rules, view, _, clock = setup(1, grace=30.0)
    view.apply(recorded(2, clock.now))
    clock.now += 3600
    assert list(await rules.admit([inbound(sealed(1))])) == [None]


async def test_admit_pauses_on_an_epoch_newer_than_the_view_until_it_catches_up() -> None:
    rules, _, catch_up, clock = setup(1)
    with pytest.raises(AdmissionPaused, match="epoch 3 not in this view yet \\(current 1\\)"):
        await rules.admit([inbound(sealed(3))])
    assert catch_up.waits == 1
    catch_up.pending.append(recorded(2, clock.now))
    catch_up.pending.append(recorded(3, clock.now))
    assert list(await rules.admit([inbound(sealed(3)), inbound(sealed(2, 1))])) == [None, None]
    assert catch_up.waits == 2  # one catch-up for the whole batch
