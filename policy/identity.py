"""Sign-In with Ethereum (EIP-4361), server side: nonces, proof verification, topic scope.

Theory of operation: a client asks for a challenge (`SignInVerifier.challenge`): a fresh,
single-use, short-lived nonce plus the domain, URI and chain id its message must name. It
signs an EIP-4361 message (see `policy.signin`) that lists the topics it wants as resources
(`meshgate://topic/<percent-encoded name>`, or the wildcard `meshgate://topic/*` for every
topic). Scope is explicit: a message with no topic resource is valid for no topic (it still
signs in; every publish or subscribe with it fails as out of scope). `SignInVerifier.verify`
checks, in order:
parse -> domain -> URI -> chain id -> expiration / not-before / issued-at -> signature ->
nonce. The nonce is consumed only once everything else holds, so a forged attempt cannot
burn someone's nonce, and a second use of a valid message fails as replayed.

Memory is bounded: at most `max_nonces` outstanding nonces; expired ones are purged on each
issue and, when full, the oldest is dropped (its later use fails as replayed).

Errors (all `policy.errors.Unauthenticated`): SignInMalformed, SignInWrongDomain,
SignInWrongChain, SignInExpired, SignInNotYetValid, SignInForged, SignInReplayed,
SignInOutOfScope.

Interest proofs: a sign-in message that also lists `meshgate://region/<r>` resources is the
reader's signed statement "region r may attract these topics until the expiration time". The
gateway keeps it with the session (`Identity.proof`) and forwards it with its federation
Interest; any other gateway checks it with `verify_interest_proof`: parse -> chain id ->
expiration time present -> issued-at / not-before / expiry -> signature. Domain, URI and
nonce are the subscribing gateway's business (it consumed the nonce); another gateway cannot
check them and does not rely on them. Parsing EIP-4361 is slow (tens of ms), recovering a signer
is not (`statement_signer`): receivers recover first and parse only proofs of granted readers.
The signed fields that count: address, chain id, issued-at, not-before, expiration time and the
region and topic resources.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, unquote

import siwe
from eth_account import Account
from eth_account.messages import encode_defunct

from policy.address import normalize_address
from policy.errors import (
    SignInExpired,
    SignInForged,
    SignInMalformed,
    SignInNotYetValid,
    SignInOutOfScope,
    SignInReplayed,
    SignInWrongChain,
    SignInWrongDomain,
)

TOPIC_RESOURCE_PREFIX = "meshgate://topic/"
REGION_RESOURCE_PREFIX = "meshgate://region/"
# The wildcard resource: every topic. `*` is no legal topic name, and a topic resource
# percent-encodes every reserved character, so no topic's resource can collide with it.
ALL_TOPICS = "*"
ALL_TOPICS_RESOURCE = TOPIC_RESOURCE_PREFIX + ALL_TOPICS
# Clock difference tolerated between a client's issued-at and ours.
DEFAULT_CLOCK_SKEW = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class SignInConfig:
    """What a message must name, and how long nonces and sessions live (seconds)."""

    domain: str
    uri: str
    chain_id: int
    nonce_ttl: float = 300.0
    max_nonces: int = 10_000
    session_ttl: float = 3600.0
    clock_skew: float = DEFAULT_CLOCK_SKEW

    def __post_init__(self) -> None:
        if not self.domain or "/" in self.domain:
            raise ValueError(f"domain must be a host[:port], got {self.domain!r}")
        if self.nonce_ttl <= 0 or self.session_ttl <= 0 or self.max_nonces <= 0:
            raise ValueError("nonce_ttl, session_ttl and max_nonces must be positive")


@dataclass(frozen=True, slots=True)
class Challenge:
    nonce: str
    domain: str
    uri: str
    chain_id: int
    expires_at: float


@dataclass(frozen=True, slots=True)
class SignedStatement:
    """A signed EIP-4361 message as sent: what an interest proof forwards."""

    message: str
    signature: bytes


@dataclass(frozen=True, slots=True)
class Identity:
    """A proven address and its scope: `topics` None = every topic (the wildcard resource);
    otherwise exactly those topics (an empty set: none). `proof`: the signed sign-in, kept
    when it names a region (`meshgate://region/<r>`), to forward as an interest proof."""

    address: str
    expires_at: float
    topics: frozenset[str] | None
    proof: SignedStatement | None = None

    def require_topic(self, topic: str) -> None:
        """Raise SignInOutOfScope unless the proof covers `topic`."""
        if self.topics is None or topic in self.topics:
            return
        if not self.topics:
            raise SignInOutOfScope(
                f"sign-in lists no topic resources, so it is valid for no topic: add "
                f"{topic_resource(topic)} (or {ALL_TOPICS_RESOURCE} for every topic)"
            )
        raise SignInOutOfScope(
            f"sign-in does not list topic {topic!r} among its resources ({topic_resource(topic)})"
        )


def topic_resource(topic: str) -> str:
    """The resource URI naming `topic` (or, for `ALL_TOPICS`, every topic) in a sign-in."""
    if topic == ALL_TOPICS:
        return ALL_TOPICS_RESOURCE
    return TOPIC_RESOURCE_PREFIX + quote(topic, safe="")


def region_resource(region: str) -> str:
    """The resource URI naming `region` in a sign-in that doubles as an interest proof."""
    return REGION_RESOURCE_PREFIX + quote(region, safe="")


def regions_from_resources(resources: list[str] | None) -> frozenset[str]:
    return frozenset(
        unquote(r[len(REGION_RESOURCE_PREFIX) :])
        for r in resources or []
        if r.startswith(REGION_RESOURCE_PREFIX)
    )


@dataclass(frozen=True, slots=True)
class ProvenInterest:
    """What a verified interest proof says: `address` lets `regions` attract `topics` (None:
    every topic) from `not_before` until `expires_at` (unix s)."""

    address: str
    regions: frozenset[str]
    topics: frozenset[str] | None
    not_before: float
    expires_at: float

    def covers(self, region: str, topic: str, now: float) -> bool:
        return (
            region in self.regions
            and (self.topics is None or topic in self.topics)
            and self.not_before <= now < self.expires_at
        )


def statement_signer(message: str, signature: bytes) -> str | None:
    """Who signed `message` (EIP-191), lower-case, if that is the address the EIP-4361 text names
    on its second line; None otherwise. No EIP-4361 parse (~1 ms against tens for the parse), so
    a receiver can drop forged proofs, and proofs of readers it sees no grant for, before
    `verify_interest_proof`."""
    lines = message.split("\n", 2)
    if len(lines) < 2:
        return None
    try:
        recovered = Account.recover_message(encode_defunct(text=message), signature=signature)
    except Exception:  # eth-keys raises BadSignature, ValueError, ... for garbage
        return None
    if recovered.lower() != lines[1].strip().lower():
        return None
    return normalize_address(recovered)


def verify_interest_proof(
    message: str, signature: bytes, *, chain_id: int, now: float, clock_skew: float = 60.0
) -> ProvenInterest:
    """Check a forwarded sign-in as an interest proof (see the module docstring).

    Raises SignInMalformed, SignInWrongChain, SignInExpired, SignInNotYetValid, SignInForged.
    A proof with no expiration time is malformed: interest must end without the reader."""
    try:
        parsed = siwe.SiweMessage.from_message(message)
    except Exception as exc:  # the parser raises ValueError, pydantic errors, ...
        raise SignInMalformed(f"not an EIP-4361 message: {_first_line(exc)}") from exc
    if parsed.chain_id != chain_id:
        raise SignInWrongChain(f"proof is for chain {parsed.chain_id}, ours is {chain_id}")
    if parsed.expiration_time is None:
        raise SignInMalformed("interest proof has no expiration time")
    if parsed.issued_at._datetime.timestamp() > now + clock_skew:
        raise SignInNotYetValid(f"proof issued in the future ({parsed.issued_at})")
    try:
        parsed.verify("0x" + signature.hex(), timestamp=datetime.fromtimestamp(now, tz=UTC))
    except siwe.ExpiredMessage as exc:
        raise SignInExpired(f"proof expired at {parsed.expiration_time}") from exc
    except siwe.NotYetValidMessage as exc:
        raise SignInNotYetValid(f"proof not valid before {parsed.not_before}") from exc
    except siwe.InvalidSignature as exc:
        raise SignInForged(f"signature does not belong to {parsed.address}") from exc
    except siwe.VerificationError as exc:
        raise SignInMalformed(f"proof rejected: {type(exc).__name__}") from exc
    resources = [str(r) for r in parsed.resources or []]
    not_before = parsed.not_before._datetime.timestamp() if parsed.not_before else 0.0
    return ProvenInterest(
        address=normalize_address(parsed.address),
        regions=regions_from_resources(resources),
        topics=topics_from_resources(resources),
        not_before=not_before,
        expires_at=parsed.expiration_time._datetime.timestamp(),
    )


def topics_from_resources(resources: list[str] | None) -> frozenset[str] | None:
    """The scope `resources` grant: None (every topic) if they hold the wildcard resource,
    else the topics they name, an empty set when they name none (no topic)."""
    if ALL_TOPICS_RESOURCE in (resources or []):
        return None
    return frozenset(
        unquote(r[len(TOPIC_RESOURCE_PREFIX) :])
        for r in resources or []
        if r.startswith(TOPIC_RESOURCE_PREFIX)
    )


class NonceRegistry:
    """Single-use, short-lived nonces in bounded memory."""

    def __init__(self, *, ttl: float, capacity: int) -> None:
        self._ttl = ttl
        self._capacity = capacity
        self._expiry: OrderedDict[str, float] = OrderedDict()

    def issue(self, now: float) -> tuple[str, float]:
        """A new nonce and its expiry time."""
        self._purge(now)
        while len(self._expiry) >= self._capacity:
            self._expiry.popitem(last=False)
        nonce = secrets.token_hex(16)
        expires_at = now + self._ttl
        self._expiry[nonce] = expires_at
        return nonce, expires_at

    def check(self, nonce: str, now: float) -> None:
        """Raise SignInReplayed / SignInExpired unless `nonce` could be consumed now."""
        expires_at = self._expiry.get(nonce)
        if expires_at is None:
            raise SignInReplayed(f"nonce {nonce!r} is unknown or was already used")
        if now >= expires_at:
            del self._expiry[nonce]
            raise SignInExpired(f"nonce {nonce!r} expired; ask for a new one")

    def consume(self, nonce: str, now: float) -> None:
        """Use `nonce` up; raises like `check`."""
        self.check(nonce, now)
        del self._expiry[nonce]

    def __len__(self) -> int:
        return len(self._expiry)

    def _purge(self, now: float) -> None:
        expired = [n for n, t in self._expiry.items() if t <= now]
        for nonce in expired:
            del self._expiry[nonce]


class SignInVerifier:
    """Issues challenges and turns signed EIP-4361 messages into `Identity`s."""

    def __init__(self, config: SignInConfig) -> None:
        self.config = config
        self._nonces = NonceRegistry(ttl=config.nonce_ttl, capacity=config.max_nonces)

    def challenge(self, now: float) -> Challenge:
        nonce, expires_at = self._nonces.issue(now)
        c = self.config
        return Challenge(nonce, c.domain, c.uri, c.chain_id, expires_at)

    def outstanding_nonces(self) -> int:
        return len(self._nonces)

    def verify(self, message: str, signature: bytes, now: float) -> Identity:
        """Check a signed message; consume its nonce; return who signed it and for what."""
        try:
            parsed = siwe.SiweMessage.from_message(message)
        except Exception as exc:  # the parser raises ValueError, pydantic errors, ...
            raise SignInMalformed(f"not an EIP-4361 message: {_first_line(exc)}") from exc
        c = self.config
        if parsed.domain != c.domain:
            raise SignInWrongDomain(
                f"message is for domain {parsed.domain!r}, this gateway is {c.domain!r}"
            )
        if str(parsed.uri) != c.uri:
            raise SignInWrongDomain(f"message is for URI {parsed.uri!r}, expected {c.uri!r}")
        if parsed.chain_id != c.chain_id:
            raise SignInWrongChain(
                f"message is for chain {parsed.chain_id}, the registry is on chain {c.chain_id}"
            )
        issued_at = parsed.issued_at._datetime.timestamp()
        if issued_at > now + c.clock_skew:
            raise SignInNotYetValid(f"message issued in the future ({parsed.issued_at})")
        when = datetime.fromtimestamp(now, tz=UTC)
        try:
            parsed.verify("0x" + signature.hex(), timestamp=when)
        except siwe.ExpiredMessage as exc:
            raise SignInExpired(f"message expired at {parsed.expiration_time}") from exc
        except siwe.NotYetValidMessage as exc:
            raise SignInNotYetValid(f"message not valid before {parsed.not_before}") from exc
        except siwe.InvalidSignature as exc:
            raise SignInForged(
                f"signature does not belong to {parsed.address} for this message"
            ) from exc
        except siwe.VerificationError as exc:
            raise SignInMalformed(f"message rejected: {type(exc).__name__}") from exc
        self._nonces.consume(parsed.nonce, now)
        expires_at = now + c.session_ttl
        if parsed.expiration_time is not None:
            expires_at = min(expires_at, parsed.expiration_time._datetime.timestamp())
        resources = [str(r) for r in parsed.resources or []]
        names_region = bool(regions_from_resources(resources))
        return Identity(
            address=normalize_address(parsed.address),
            expires_at=expires_at,
            topics=topics_from_resources(resources),
            proof=SignedStatement(message, signature) if names_region else None,
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
