from hypothesis import given
from hypothesis import strategies as st

from eventmodel.merkle import merkle_root, tree_with_proofs, verify_inclusion


@given(st.lists(st.binary(max_size=8), min_size=1, max_size=40))
def test_every_leaf_proves_and_nothing_else_does(leaves: list[bytes]) -> None:
    root, proofs = tree_with_proofs(leaves)
    assert root == merkle_root(leaves)
    n = len(leaves)
    for i, leaf in enumerate(leaves):
        assert verify_inclusion(leaf, i, n, proofs[i], root)
        assert not verify_inclusion(leaf + b"x", i, n, proofs[i], root)
        assert not verify_inclusion(leaf, n, n, proofs[i], root)  # index out of range
        if n > 1 and leaves[(i + 1) % n] != leaf:
            assert not verify_inclusion(leaves[(i + 1) % n], i, n, proofs[i], root)


def test_leaf_cannot_pose_as_inner_node() -> None:
    root, _ = tree_with_proofs([b"a", b"b"])
    assert merkle_root([b"a" + b"b"]) != root
