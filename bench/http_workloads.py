"""meshgate's HTTP edge as a `Target`: publishing in the CloudEvents HTTP binding's batch mode.

One POST per `publish` call to `/topics/{topic}/events` with Content-Type
`application/cloudevents-batch+json`, answered once its events are durable (the same store
call as the gRPC Publish). Each event is the same 1 KiB `binary_data` CloudEvent the gRPC
families publish, here as `data_base64` in the JSON format. One aiohttp session with
keep-alive connections, up to the family's concurrency. The client's JSON encoding is
measured too, as the gRPC families measure the client's protobuf encoding.

Publish only: the HTTP families measure ingress; reading over HTTP (SSE) is not a family.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

import aiohttp

from bench.meshgate_workloads import new_topic
from bench.procs import BenchError

BATCH_TYPE = "application/cloudevents-batch+json"
PUBLISH_PATH = "POST /topics/{topic}/events, batch mode (aiohttp client, keep-alive)"


def batch_body(payloads: Sequence[bytes]) -> bytes:
    events = [
        {
            "specversion": "1.0",
            "id": uuid.uuid4().hex,
            "source": "/bench/harness",
            "type": "dev.meshgate.bench",
            "data_base64": base64.b64encode(p).decode("ascii"),
        }
        for p in payloads
    ]
    return json.dumps(events, separators=(",", ":")).encode()


@dataclass
class HttpTarget:
    session: aiohttp.ClientSession
    url: str

    async def publish(self, payloads: Sequence[bytes]) -> None:
        body = batch_body(payloads)
        async with self.session.post(
            self.url, data=body, headers={"Content-Type": BATCH_TYPE}
        ) as resp:
            if resp.status != 200:
                raise RuntimeError(f"HTTP publish answered {resp.status}: {await resp.text()}")
            await resp.read()

    def subscribe(self, on_payload: Callable[[bytes], None]) -> AbstractAsyncContextManager[None]:
        raise BenchError("the HTTP families measure ingress only: an HttpTarget cannot subscribe")


@asynccontextmanager
async def http_target(base_url: str, *, concurrency: int) -> AsyncIterator[HttpTarget]:
    """A target on a fresh topic at `base_url` (http://HOST:PORT)."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        yield HttpTarget(session, f"{base_url}/topics/{new_topic('bench-http')}/events")
