"""One spelling for Ethereum addresses inside policy: lower-case 0x-hex.

Chain events, SIWE messages and CLI input spell addresses in mixed (EIP-55) or lower case;
comparing them as strings is only safe after normalising them here.
"""

from __future__ import annotations

import re

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


def normalize_address(address: str) -> str:
    """Return `address` in lower case; raise ValueError if it is not 0x + 40 hex digits."""
    if not _ADDRESS.match(address):
        raise ValueError(f"not an Ethereum address: {address!r}")
    return address.lower()
