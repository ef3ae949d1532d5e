"""Subscriptions on the region's stream that ride through its leader election.

A stream created a moment ago (the first replica of a region, a test's fresh region) may still be
electing its leader when the store opens: creating a consumer then times out although the
cluster is healthy. Creating an ordered consumer has no effect that a retry could double, so it
is retried like a read (jetstream_client.patiently), for up to OPEN_PATIENCE seconds; what still
fails is StoreUnavailable, never a raw NATS error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import DeliverPolicy

from gateway.jetstream_client import JetStreamClient
from gateway.jetstream_errors import patiently, store_error

OPEN_PATIENCE = 30.0  # s: a leader election takes ~2 s, far longer on a loaded machine


async def watch_new_headers(
    client: JetStreamClient, subject: str, cb: Callable[[Msg], Awaitable[None]]
) -> None:
    """An ordered, headers-only watch of messages on `subject` from now on."""

    async def subscribe() -> None:
        try:
            await client.nc.jetstream().subscribe(
                subject,
                cb=cb,
                ordered_consumer=True,
                headers_only=True,
                deliver_policy=DeliverPolicy.NEW,
            )
        except Exception as exc:
            raise store_error(exc, "head watch") from exc

    await patiently(subscribe, patience=OPEN_PATIENCE)


async def watch_latest(
    client: JetStreamClient, subject: str, cb: Callable[[Msg], Awaitable[None]]
) -> Subscription:
    """An ordered watch of `subject`: the latest message of each matching subject, then every
    new one (a key-value view of those subjects)."""

    async def subscribe() -> Subscription:
        try:
            return await client.nc.jetstream().subscribe(
                subject,
                cb=cb,
                ordered_consumer=True,
                deliver_policy=DeliverPolicy.LAST_PER_SUBJECT,
                stream=client.stream,
            )
        except Exception as exc:
            raise store_error(exc, "watch") from exc

    return await patiently(subscribe, patience=OPEN_PATIENCE)
