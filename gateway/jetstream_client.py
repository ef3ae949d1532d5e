"""The JetStream requests the store makes, over one nats-py connection.

Only raw JetStream API subjects (`$JS.API...`) and headers, so what goes on the wire is what
the server documents: the stream create/update, atomic batch publish (`Nats-Batch-*`, server
2.12+, stream `allow_atomic`), direct get of one message or of a batch (`allow_direct`,
`batch` + end-of-batch status 204), message delete and subject purge, and the durable
consumers of groups (create-if-absent, no-wait pulls, double acks, naks).

Error handling: every method raises only StoreError kinds (gateway/jetstream_errors.py).
"""

from __future__ import annotations

import asyncio
import functools
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import nats
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg

from gateway.errors import StoreError, StoreUnavailable
from gateway.jetstream_errors import (
    api_error,
    patiently,
    store_error,
)
from gateway.jetstream_frames import hpub, pub, send_frames

T = TypeVar("T")
REQUEST_TIMEOUT = 5.0  # s for one API request; a leader election takes about 2 s
BATCH_ID_BYTES = 9  # 72 random bits in 12 characters, stored with every message (uuid4: 32)
CONNECT_TIMEOUT = 10.0  # s for the first connection to any server
BATCH_PAGE = 1000  # messages per direct-get batch


@dataclass(frozen=True, slots=True)
class Record:
    """One stored message as a direct get returns it."""

    seq: int
    subject: str
    headers: dict[str, str]
    data: bytes


@dataclass(frozen=True, slots=True)
class Put:
    """One message of an atomic batch."""

    subject: str
    data: bytes
    headers: dict[str, str]


class JetStreamClient:
    """Requests on `nc` against one stream. Every method raises only StoreError kinds."""

    def __init__(self, nc: Client, stream: str) -> None:
        self.nc = nc
        self.stream = stream

    @classmethod
    async def connect(
        cls, servers: Sequence[str], stream: str, *, timeout: float = CONNECT_TIMEOUT
    ) -> JetStreamClient:
        try:
            # nats-py retries the first connect as it reconnects (forever here): bound it
            nc = await asyncio.wait_for(
                nats.connect(
                    servers=list(servers),
                    connect_timeout=REQUEST_TIMEOUT,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.25,
                    allow_reconnect=True,
                ),
                timeout,
            )
        except Exception as exc:
            where = ",".join(servers)
            raise StoreUnavailable(f"cannot reach NATS at {where}: {exc}") from exc
        return cls(nc, stream)

    async def close(self) -> None:
        if not self.nc.is_closed:
            await self.nc.close()

    async def api(self, subject: str, body: dict[str, Any], what: str) -> dict[str, Any]:
        try:
            msg = await self.nc.request(subject, json.dumps(body).encode(), REQUEST_TIMEOUT)
            reply: dict[str, Any] = json.loads(msg.data)
        except Exception as exc:
            raise store_error(exc, what) from exc
        error = api_error(reply, what)
        if error is not None:
            raise error
        return reply

    async def ensure_stream(self, subjects: str, replicas: int) -> None:
        """Create the stream, or give an existing one what the store relies on.

        Other settings of an existing stream (replicas, duplicate window, placement) are the
        operator's and stay as they are."""
        needed: dict[str, Any] = {
            "subjects": [subjects],
            "max_msgs_per_subject": 1,
            "allow_atomic": True,
            "allow_direct": True,
            "deny_delete": False,
            "deny_purge": False,
        }
        try:
            info = await self.api(f"$JS.API.STREAM.INFO.{self.stream}", {}, "open")
        except StoreError as exc:
            if "not found" not in str(exc):
                raise
            config = {
                "name": self.stream,
                "storage": "file",
                "num_replicas": replicas,
                "discard": "old",
                **needed,
            }
            await self.api(f"$JS.API.STREAM.CREATE.{self.stream}", config, "open")
            return
        current: dict[str, Any] = info["config"]
        if any(current.get(k) != v for k, v in needed.items()):
            update = {**current, **needed}
            await self.api(f"$JS.API.STREAM.UPDATE.{self.stream}", update, "open")

    async def publish_batch(self, puts: Sequence[Put], what: str) -> int:
        """Store `puts` all-or-nothing; return the sequence of the last one.

        The server holds the batch until its commit message and drops it whole if the
        commit fails, the batch times out (the client died mid-batch), or a leader changes."""
        batch_id = secrets.token_urlsafe(BATCH_ID_BYTES)  # stored with every message: short
        last = len(puts)
        try:
            frames = [
                hpub(
                    put.subject,
                    {**put.headers, "Nats-Batch-Id": batch_id, "Nats-Batch-Sequence": str(i)},
                    put.data,
                )
                for i, put in enumerate(puts[:-1], start=1)
            ]
            if frames:  # framed once, one write (gateway/jetstream_frames.py)
                await send_frames(self.nc, frames, max(len(p.data) for p in puts))
            end = puts[-1]
            headers = {
                **end.headers,
                "Nats-Batch-Id": batch_id,
                "Nats-Batch-Sequence": str(last),
                "Nats-Batch-Commit": "1",
            }
            msg = await self.nc.request(end.subject, end.data, REQUEST_TIMEOUT, headers=headers)
            reply: dict[str, Any] = json.loads(msg.data)
        except Exception as exc:
            raise store_error(exc, what) from exc
        error = api_error(reply, what)
        if error is not None:
            raise error
        return int(reply["seq"])

    async def get_last(self, subject: str) -> Record | None:
        """The last message on `subject` (wildcards allowed), None if there is none."""
        return await patiently(lambda: self._get_one({"last_by_subj": subject}))

    async def get_next(self, seq: int, subject: str) -> Record | None:
        """The first message on `subject` with sequence >= `seq`."""
        body = {"seq": max(1, seq), "next_by_subj": subject}
        return await patiently(lambda: self._get_one(body))

    async def get_first_counted(self, subject: str) -> tuple[Record | None, int]:
        """The first message on `subject` and how many messages match it in all, counted by
        the server (`Nats-Num-Pending` of a batch get of one): one request, no scan."""
        page = await patiently(functools.partial(self._get_page, 1, subject, 1))
        if not page:
            return None, 0
        return page[0], 1 + int(page[0].headers.get("Nats-Num-Pending", 0))

    async def _get_one(self, body: dict[str, Any]) -> Record | None:
        try:
            msg = await self.nc.request(
                f"$JS.API.DIRECT.GET.{self.stream}", json.dumps(body).encode(), REQUEST_TIMEOUT
            )
        except Exception as exc:
            raise store_error(exc, "read") from exc
        return self._record(msg.headers or {}, msg.data)

    def _record(self, headers: dict[str, str], data: bytes) -> Record | None:
        status = headers.get("Status")
        if status == "404":
            return None
        if status is not None:
            code = StoreUnavailable if status in ("503", "408") else StoreError
            raise code(f"store read failed: JetStream {status} {headers.get('Description', '')}")
        return Record(int(headers["Nats-Sequence"]), headers["Nats-Subject"], headers, data)

    async def get_batch(self, seq: int, subject: str, limit: int) -> list[Record]:
        """Up to `limit` messages on `subject` with sequence >= `seq`, in sequence order."""
        out: list[Record] = []
        while len(out) < limit:
            want = min(BATCH_PAGE, limit - len(out))
            page = await patiently(functools.partial(self._get_page, seq, subject, want))
            out.extend(page)
            if len(page) < want:
                break
            seq = page[-1].seq + 1
        return out

    async def _get_page(self, seq: int, subject: str, limit: int) -> list[Record]:
        body = {"seq": max(1, seq), "next_by_subj": subject, "batch": limit}
        inbox = self.nc.new_inbox()
        out: list[Record] = []
        try:
            sub = await self.nc.subscribe(inbox)
            try:
                await self.nc.publish(
                    f"$JS.API.DIRECT.GET.{self.stream}", json.dumps(body).encode(), reply=inbox
                )
                while True:
                    msg = await sub.next_msg(REQUEST_TIMEOUT)
                    headers = msg.headers or {}
                    if headers.get("Status") == "204":  # end of batch
                        return out
                    record = self._record(headers, msg.data)
                    if record is None:  # nothing matched
                        return out
                    out.append(record)
            finally:
                await sub.unsubscribe()
        except StoreError:
            raise
        except Exception as exc:
            raise store_error(exc, "read") from exc

    async def delete(self, seq: int) -> bool:
        """Delete one message; False if it was not there."""
        try:
            reply = await self.api(
                f"$JS.API.STREAM.MSG.DELETE.{self.stream}", {"seq": seq, "no_erase": True}, "delete"
            )
        except StoreError as exc:
            text = str(exc).lower()
            if "no message found" in text or "not found" in text:
                return False
            raise
        return bool(reply.get("success"))

    async def purge(self, subject: str, *, below_seq: int | None = None) -> int:
        """Purge `subject` (below sequence `below_seq` if given); return how many went."""
        body: dict[str, Any] = {"filter": subject}
        if below_seq is not None:
            body["seq"] = below_seq
        reply = await self.api(f"$JS.API.STREAM.PURGE.{self.stream}", body, "purge")
        return int(reply.get("purged", 0))

    async def put(self, subject: str, data: bytes) -> int:
        """One plain (non-batch) message, acknowledged by the stream."""
        try:
            msg = await self.nc.request(subject, data, REQUEST_TIMEOUT)
            reply: dict[str, Any] = json.loads(msg.data)
        except Exception as exc:
            raise store_error(exc, "write") from exc
        error = api_error(reply, "write")
        if error is not None:
            raise error
        return int(reply["seq"])

    # -- durable consumers (gateway/jetstream_groups.py) --------------------------------------

    async def ensure_consumer(self, name: str, config: dict[str, Any]) -> dict[str, Any]:
        """The durable consumer `name`: created with `config` if absent, else as it is (its
        state, i.e. the group's acks, is the cluster's; a second replica joins it)."""
        info_subject = f"$JS.API.CONSUMER.INFO.{self.stream}.{name}"
        try:
            return await self.api(info_subject, {}, "group open")
        except StoreError as exc:
            if "not found" not in str(exc):
                raise
        body = {"stream_name": self.stream, "config": {**config, "durable_name": name}}
        body["action"] = "create"
        try:
            return await self.api(
                f"$JS.API.CONSUMER.CREATE.{self.stream}.{name}", body, "group open"
            )
        except StoreError as exc:
            if "already exists" not in str(exc):
                raise
        return await self.api(info_subject, {}, "group open")  # another replica created it

    async def consumer_info(self, name: str) -> dict[str, Any]:
        return await patiently(
            lambda: self.api(f"$JS.API.CONSUMER.INFO.{self.stream}.{name}", {}, "group read")
        )

    async def pull(self, consumer: str, batch: int) -> list[Msg]:
        """Up to `batch` messages the consumer has for us now (no waiting for new ones).

        Collected by the subscription's callback, with one timer for the whole pull (reading
        them one `next_msg` at a time cost a timer and a task per message)."""
        body = json.dumps({"batch": batch, "no_wait": True}).encode()
        out: list[Msg] = []
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def collect(msg: Msg) -> None:
            if done.done():
                return
            status = (msg.headers or {}).get("Status")
            if status is None:
                out.append(msg)
                if len(out) >= batch:
                    done.set_result(None)
            elif status in ("404", "408", "409"):  # no more now / max ack pending
                done.set_result(None)
            elif status == "503":
                done.set_exception(StoreUnavailable("store group read failed: JetStream 503"))
            # 100 (heartbeat / flow control): keep reading

        inbox = self.nc.new_inbox()
        try:
            sub = await self.nc.subscribe(inbox, cb=collect)
            try:
                subject = f"$JS.API.CONSUMER.MSG.NEXT.{self.stream}.{consumer}"
                await self.nc.publish(subject, body, reply=inbox)
                await asyncio.wait_for(asyncio.shield(done), REQUEST_TIMEOUT)
            finally:
                await sub.unsubscribe()
        except StoreError:
            raise
        except Exception as exc:
            if out:  # what came is leased to us: hand it on rather than let it wait ack_wait
                return out
            raise store_error(exc, "group read") from exc
        return out

    async def ack_many(self, replies: Sequence[str]) -> None:
        """Acknowledge deliveries; return once the consumer recorded ALL of them. Every ack but
        the last is published, the last is a double ack: one connection's acks reach the
        consumer's leader and are applied (for R3: through its log) in order, so the answer to
        the last comes after the others were recorded. Any failure fails the whole call (an ack
        sent twice is harmless: the caller sends them all again)."""
        if not replies:
            return
        try:
            if len(replies) > 1:
                await send_frames(self.nc, [pub(r, b"+ACK") for r in replies[:-1]], 4)
            await self.nc.request(replies[-1], b"+ACK", REQUEST_TIMEOUT)
        except Exception as exc:
            raise store_error(exc, "group ack") from exc

    async def nak(self, reply: str) -> None:
        """Give one delivery back for redelivery now (to any replica)."""
        try:
            await self.nc.publish(reply, b"-NAK")
        except Exception as exc:
            raise store_error(exc, "group nak") from exc
