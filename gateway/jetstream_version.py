"""The store layout's version, kept in the region's stream: a gateway never mixes two layouts.

The layout (gateway/jetstream_layout.py) decides where events, their dedup subjects and offsets
live; a gateway of another layout reading or writing the same stream would break dedup (its
events' subjects would not be found) or offsets. So a new stream is marked with
LAYOUT_VERSION when a store first opens it, and a store refuses (StoreError, one clear line)
a stream marked otherwise, or one holding events but no mark (layout 1, before the mark).
"""

from __future__ import annotations

from gateway.errors import StoreError
from gateway.jetstream_client import JetStreamClient
from gateway.jetstream_layout import LAYOUT_VERSION, Layout


async def check_layout_version(client: JetStreamClient, layout: Layout) -> None:
    """Refuse a stream another layout wrote (StoreError); mark a new one with ours."""
    found = await client.get_last(layout.version)
    if found is not None:
        if found.data.decode(errors="replace") != LAYOUT_VERSION:
            raise StoreError(
                f"stream {layout.stream} has store layout {found.data!r}, this gateway writes "
                f"{LAYOUT_VERSION!r}: drain the region into a new stream (docs/deploying.md)"
            )
        return
    if await client.get_last(layout.all_events) is not None:
        raise StoreError(
            f"stream {layout.stream} holds events of an older store layout (1), this gateway "
            f"writes {LAYOUT_VERSION!r}: drain the region into a new stream (docs/deploying.md)"
        )
    await client.put(layout.version, LAYOUT_VERSION.encode())
