from __future__ import annotations

import pytest

from ledger.errors import BadAddress, BadTopicName
from ledger.names import check_topic_name, checksum_address, topic_key

GOOD = "0x90F8bf6A479f320ead074411a4B0e7944Ea8c9C1"


def test_topic_names_follow_the_gateway_rule() -> None:
    for ok in ("a", "orders.eu-1", "A_b-c.d", "9" + "x" * 127):
        assert check_topic_name(ok) == ok
    for bad in ("", "-a", ".a", "a b", "a/b", "x" * 129, "é"):
        with pytest.raises(BadTopicName):
            check_topic_name(bad)


def test_topic_key_is_keccak_of_the_name() -> None:
    assert topic_key("").hex() == (
        "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    )
    assert len(topic_key("orders")) == 32


def test_checksum_address() -> None:
    assert checksum_address(GOOD) == GOOD
    assert checksum_address(GOOD.lower()) == GOOD
    assert checksum_address("0x" + GOOD[2:].upper()) == GOOD
    with pytest.raises(BadAddress, match="checksum"):
        checksum_address(GOOD.replace("F8b", "f8B"))
    for bad in ("", "0x1234", "hello", GOOD + "00"):
        with pytest.raises(BadAddress, match="not an Ethereum address"):
            checksum_address(bad)
