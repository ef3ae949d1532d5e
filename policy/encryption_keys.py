"""A reader's or publisher's X25519 key pair, derived from the Ethereum key it already has.

Why derived: the key file a user already holds (policy/signin.py) stays the only secret, so
there is no second file to lose or leak. `meshgate keys announce` records the public half on
chain from that account (`announceKey`), which is what binds it to the address.

Derivation: the 32-byte X25519 private key is BLAKE2b-256 of the Ethereum private key, keyed
with `DOMAIN` (a domain tag: the same Ethereum key used elsewhere never yields this value).
Pure: no I/O. Knowing the public key reveals nothing of the Ethereum key (a one-way hash and
X25519); knowing the Ethereum key gives the X25519 key, by design.
"""

from __future__ import annotations

import hashlib
from typing import Final

from nacl.public import PrivateKey, PublicKey

DOMAIN: Final = b"meshgate/x25519/v1"
KEY_BYTES: Final = 32


def derive_x25519(eth_private_key: bytes) -> PrivateKey:
    """The X25519 private key of the account whose 32-byte secp256k1 key is given.
    Raises ValueError for a key of another length."""
    if len(eth_private_key) != KEY_BYTES:
        raise ValueError(
            f"an Ethereum private key is {KEY_BYTES} bytes, got {len(eth_private_key)}"
        )
    seed = hashlib.blake2b(bytes(eth_private_key), digest_size=KEY_BYTES, key=DOMAIN).digest()
    return PrivateKey(seed)


def public_bytes(private: PrivateKey) -> bytes:
    """The 32 bytes of the public half (what `announceKey` records)."""
    return bytes(private.public_key)


def announced_public_key(eth_private_key: bytes) -> bytes:
    """The public key bytes an account announces: `public_bytes(derive_x25519(key))`."""
    return public_bytes(derive_x25519(eth_private_key))


def public_key(raw: bytes) -> PublicKey:
    """A public key from its 32 bytes (as read from the chain); ValueError for another length
    or the all-zero value (the chain's "never announced")."""
    if len(raw) != KEY_BYTES or raw == bytes(KEY_BYTES):
        raise ValueError(f"an X25519 public key is {KEY_BYTES} non-zero bytes")
    return PublicKey(bytes(raw))
