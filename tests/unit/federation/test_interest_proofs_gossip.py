"""Gossip binds a member's address to its certificate's key: re-pointing is refused (pure)."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from federation.membership import Membership, address_signed, signed_member
from federation.messages import Member

CC_SEED = bytes(range(32))
ZZ_SEED = bytes(range(1, 33))
CC_KEY = bytes(SigningKey(CC_SEED).verify_key)


def membership() -> Membership[str]:
    m: Membership[str] = Membership(
        local_region="eu", seeds=(), mesh=True, reconnect_initial=0.1, reconnect_max=1.0
    )
    m.listening(Member("eu", "eu:1", b"pem"))
    return m


def cc(address: str = "127.0.0.1:7001", version: int = 10) -> Member:
    return signed_member(Member("cc", address, b"cc-cert"), CC_SEED, version)


def test_a_member_signed_by_its_region_key_is_learnt() -> None:
    m = membership()
    assert m.vet(cc(), CC_KEY) is None
    assert m.learn([cc()])
    assert m.member("cc") == cc()


def test_a_third_party_cannot_re_point_a_region_address() -> None:
    m = membership()
    m.learn([cc()])
    unsigned = Member("cc", "127.0.0.1:6666", b"cc-cert", 11)
    by_zz = signed_member(Member("cc", "127.0.0.1:6666", b"cc-cert"), ZZ_SEED, 11)
    moved = replace(cc(), peer_address="127.0.0.1:6666")  # cc's signature, another address
    for forged in (unsigned, by_zz, moved):
        assert m.vet(forged, CC_KEY) == "address_signature"
    ok, refused = m.vet_all([(forged, CC_KEY) for forged in (unsigned, by_zz, moved)])
    assert ok == [] and [r for r, _ in refused] == ["address_signature"] * 3
    assert refused[0][1] == "ignoring member cc at 127.0.0.1:6666: address_signature"
    assert m.member("cc") == cc()


def test_an_older_signed_address_is_refused_a_newer_one_replaces_it() -> None:
    m = membership()
    m.learn([cc("127.0.0.1:7002", version=20)])
    assert m.vet(cc("127.0.0.1:7001", version=10), CC_KEY) == "stale_address"  # a replay
    assert m.vet(cc("127.0.0.1:7003", version=20), CC_KEY) == "stale_address"  # same version
    assert m.vet(cc("127.0.0.1:7002", version=20), CC_KEY) is None  # the same row again
    newer = cc("127.0.0.1:7004", version=30)  # cc restarted elsewhere
    assert m.vet(newer, CC_KEY) is None
    m.learn([newer])
    assert m.member("cc") == newer


@settings(max_examples=200, deadline=None)
@given(
    region=st.text(min_size=1, max_size=12),
    address=st.text(max_size=40),
    version=st.integers(min_value=0, max_value=2**64 - 1),
    field=st.sampled_from(["region", "peer_address", "address_version"]),
    other=st.text(min_size=1, max_size=40),
)
def test_changing_any_signed_field_breaks_the_signature(
    region: str, address: str, version: int, field: str, other: str
) -> None:
    member = signed_member(Member(region, address, b"pem"), CC_SEED, version)
    assert address_signed(member, CC_KEY)
    if field == "address_version":
        changed = replace(member, address_version=(version + 1) % 2**64)
    else:
        current = getattr(member, field)
        changed = replace(member, **{field: current + other})
    assert not address_signed(changed, CC_KEY)
