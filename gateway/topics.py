"""Topic names: one rule shared with the ledger (`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)."""

from __future__ import annotations

import re

from gateway.errors import InvalidTopicName

TOPIC_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_topic_name(name: str) -> str:
    """Return `name` unchanged, or raise InvalidTopicName naming the rule."""
    if not TOPIC_NAME.fullmatch(name):
        raise InvalidTopicName(
            f"invalid topic name {name!r}: must match ^[A-Za-z0-9][A-Za-z0-9._-]{{0,127}}$"
        )
    return name
