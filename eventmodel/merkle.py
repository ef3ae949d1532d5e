"""Merkle trees over event batches (RFC 9162 §2.1 shapes), so each event verifies on its own.

Invariants:
- leaf hash = SHA-256(0x00 || leaf), node hash = SHA-256(0x01 || left || right): a leaf can never
  be passed off as an inner node.
- A tree of n leaves splits at k = the largest power of two below n (left subtree full), which
  fixes the proof shape from (index, count) alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _root(hashes: Sequence[bytes]) -> bytes:
    if len(hashes) == 1:
        return hashes[0]
    k = _split(len(hashes))
    return node_hash(_root(hashes[:k]), _root(hashes[k:]))


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """Root of the tree over `leaves` (raw leaf data). Raises ValueError for no leaves."""
    if not leaves:
        raise ValueError("a Merkle tree needs at least one leaf")
    return _root([leaf_hash(leaf) for leaf in leaves])


def _build(hashes: Sequence[bytes]) -> tuple[bytes, list[list[bytes]]]:
    """Root and per-leaf proofs, each subtree hashed once: O(n log n)."""
    if len(hashes) == 1:
        return hashes[0], [[]]
    k = _split(len(hashes))
    left_root, left_proofs = _build(hashes[:k])
    right_root, right_proofs = _build(hashes[k:])
    proofs = [[*p, right_root] for p in left_proofs] + [[*p, left_root] for p in right_proofs]
    return node_hash(left_root, right_root), proofs


def tree_with_proofs(leaves: Sequence[bytes]) -> tuple[bytes, list[list[bytes]]]:
    """The root and every leaf's inclusion proof (sibling hashes, leaf to root)."""
    if not leaves:
        raise ValueError("a Merkle tree needs at least one leaf")
    return _build([leaf_hash(leaf) for leaf in leaves])


def verify_inclusion(
    leaf: bytes, index: int, count: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """True when `leaf` sits at `index` of a `count`-leaf tree with `root` (RFC 9162 §2.1.3.2)."""
    if not 0 <= index < count:
        return False
    fn, sn = index, count - 1
    r = leaf_hash(leaf)
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root
