"""Fuzz Sign-In with Ethereum: EIP-4361 text and signatures a client can send to SignIn.

Documented outcome: an `Identity`, or one of the `policy.errors.Unauthenticated` family
(`sign-in malformed`, `... replayed`, `... expired`, `... not yet valid`, `... for another
domain`, `... for another chain`, `... forged`); session tokens: an Identity or
`SessionInvalid`. Inputs: arbitrary text, and real signed messages with lines replaced,
dropped, duplicated or edited character by character (dates at the ends of the calendar,
huge chain ids, odd addresses), under their real, a random, or a mangled signature.
"""

from __future__ import annotations

import contextlib
import re

from eth_account import Account
from hypothesis import given
from hypothesis import strategies as st

from policy.errors import Unauthenticated
from policy.identity import Identity, SignInConfig, SignInVerifier
from policy.sessions import SessionTokens, new_secret
from policy.signin import sign_in
from tests.fuzz.budget import fuzz_settings
from tests.fuzz.pb_strategies import text

NOW = 1_800_000_000.0
ACCOUNT = Account.from_key("0x" + "4d" * 32)
CONFIG = SignInConfig(domain="meshgate-eu", uri="meshgate://meshgate-eu", chain_id=1337)
VERIFIER = SignInVerifier(CONFIG)
PROOFS = [
    sign_in(ACCOUNT, VERIFIER.challenge(NOW), topics, NOW)
    for topics in (["orders"], ["orders", "a/b"], ["*"], [])
]

LINE_VALUES = st.one_of(
    text,
    st.sampled_from(
        [
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999Z",
            "10000-01-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-01-01T00:00:00+99:00",
            "1e400",
            str(2**256),
            "-1",
            "0x" + "00" * 20,
            "0x" + "Ab" * 20,
            "meshgate://meshgate-eu",
            "meshgate-eu",
            "1337",
            "- meshgate://topic/*",
            "- " + "x" * 5000,
        ]
    ),
)


@st.composite
def mutated_message(draw: st.DrawFn) -> str:
    lines = draw(st.sampled_from(PROOFS)).message.split("\n")
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["value", "drop", "dup", "char", "insert"]))
        if op == "value":
            head, sep, _ = lines[at].partition(": ")
            lines[at] = head + sep + draw(LINE_VALUES) if sep else draw(LINE_VALUES)
        elif op == "drop" and len(lines) > 1:
            del lines[at]
        elif op == "dup":
            lines.insert(at, lines[at])
        elif op == "char" and lines[at]:
            pos = draw(st.integers(0, len(lines[at]) - 1))
            lines[at] = lines[at][:pos] + draw(text) + lines[at][pos + 1 :]
        else:
            lines.insert(at, draw(LINE_VALUES))
    return "\n".join(lines)


@st.composite
def signatures(draw: st.DrawFn, message: str) -> bytes:
    real = next((p.signature for p in PROOFS if p.message == message), PROOFS[0].signature)
    return draw(
        st.one_of(
            st.just(real),
            st.binary(max_size=70),
            st.binary(min_size=65, max_size=65),
            st.integers(0, 64).map(lambda i: real[:i] + bytes([real[i] ^ 1]) + real[i + 1 :]),
        )
    )


@st.composite
def proofs(draw: st.DrawFn) -> tuple[str, bytes]:
    message = draw(st.one_of(text, mutated_message(), st.sampled_from([p.message for p in PROOFS])))
    return message, draw(signatures(message))


def _fresh_verifier() -> SignInVerifier:
    """A verifier that knows the PROOFS' nonces, unused (so a real proof can get through)."""
    verifier = SignInVerifier(CONFIG)
    expiry = getattr(verifier._nonces, "_expiry", None)  # the registry's own table
    if isinstance(expiry, dict):
        for proof in PROOFS:
            nonce = re.search(r"^Nonce: (\S+)$", proof.message, re.MULTILINE)
            assert nonce is not None
            expiry[nonce[1]] = NOW + 300
    return verifier


def test_the_fresh_verifier_accepts_a_real_proof() -> None:
    """Guards the fuzz target below: a real proof must reach the success path."""
    identity = _fresh_verifier().verify(PROOFS[0].message, PROOFS[0].signature, NOW)
    assert identity.address == ACCOUNT.address.lower()


@fuzz_settings(0.5)
@given(proof=proofs(), now_offset=st.sampled_from([0.0, -600.0, 600.0, 3e7]))  # server clock
def test_sign_in_proofs_verify_or_raise_a_sign_in_error(
    proof: tuple[str, bytes], now_offset: float
) -> None:
    verifier = _fresh_verifier()
    try:
        identity = verifier.verify(proof[0], proof[1], NOW + now_offset)
    except Unauthenticated:
        return
    assert isinstance(identity, Identity)


TOKENS = SessionTokens(new_secret())
GOOD_TOKEN = TOKENS.issue(
    Identity(address=ACCOUNT.address.lower(), expires_at=NOW + 60, topics=None)
)


@fuzz_settings()
@given(
    token=st.one_of(
        text,
        st.text(
            alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=",
            max_size=200,
        ),
        st.integers(0, len(GOOD_TOKEN) - 1).flatmap(
            lambda i: st.sampled_from("A_-.=0z").map(
                lambda c: GOOD_TOKEN[:i] + c + GOOD_TOKEN[i + 1 :]
            )
        ),
    )
)
def test_session_tokens_check_or_raise_session_invalid(token: str) -> None:
    with contextlib.suppress(Unauthenticated):
        TOKENS.check(token, NOW)
