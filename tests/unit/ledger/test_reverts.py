from __future__ import annotations

from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector

from ledger import errors
from ledger.names import topic_key
from ledger.reverts import decode_revert

ADDR = "0x90F8bf6A479f320ead074411a4B0e7944Ea8c9C1"


def _payload(signature: str, types: list[str], values: list[object]) -> str:
    return "0x" + (function_signature_to_4byte_selector(signature) + encode(types, values)).hex()


def test_not_owner_decodes_with_topic_name_and_caller() -> None:
    data = _payload("NotOwner(bytes32,address)", ["bytes32", "address"], [topic_key("t"), ADDR])
    exc = decode_revert(data, "t")
    assert isinstance(exc, errors.NotOwner)
    assert exc.args_ == ("'t'", ADDR)
    assert str(exc) == f"not the owner of topic 't' (caller {ADDR})"


def test_without_topic_name_the_key_is_shown() -> None:
    exc = decode_revert(_payload("UnknownTopic(bytes32)", ["bytes32"], [topic_key("t")]))
    assert isinstance(exc, errors.UnknownTopic)
    assert "0x" + topic_key("t").hex() in str(exc)


def test_every_custom_error_in_the_abi_has_a_class() -> None:
    from ledger.artifact import registry_artifact

    abi_errors = {e["name"] for e in registry_artifact().abi if e["type"] == "error"}
    assert abi_errors == set(errors.REJECTIONS)


def test_unknown_and_empty_data() -> None:
    assert type(decode_revert(None)) is errors.TransactionFailed
    assert type(decode_revert("0x")) is errors.TransactionFailed
    unknown = decode_revert("0xdeadbeef")
    assert type(unknown) is errors.TransactionFailed and "0xdeadbeef" in str(unknown)
