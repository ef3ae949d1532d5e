"""Access policy end to end: Ganache + the registry + real gateway processes + real gRPC.

One chain per module (its own Ganache, so other layers' time travel cannot move its clock);
each test uses its own topic names and a gateway of its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator
from pathlib import Path

import grpc
import pytest
from cloudevents.core.v1.event import CloudEvent
from eth_account import Account
from eth_account.signers.local import LocalAccount

from eventmodel import provenance
from eventmodel import sdk as events
from ledger.keys import write_keystore
from ledger.registry import RegistryClient
from meshgate.client import GatewayClient, Received, Subscription
from meshgate.devchain import DevChain
from policy.audit import audit_path, read_entries
from policy.identity import Challenge
from policy.signin import ALL_TOPICS, build_message, sign_in, sign_message
from proto import gateway_pb2, gateway_pb2_grpc
from tests.support.chain_fixtures import DeployedRegistry, deploy
from tests.support.gateway_process import GatewayProcess
from tests.support.waiting import async_wait_for, wait_for

pytestmark = [pytest.mark.chain, pytest.mark.xdist_group("policy-chain"), pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def policy_chain() -> Iterator[DeployedRegistry]:
    chain = DevChain()
    try:
        chain.start()
        yield deploy(chain)
    finally:
        chain.stop()


@pytest.fixture
def owner(policy_chain: DeployedRegistry) -> RegistryClient:
    return policy_chain.client(Account.from_key(policy_chain.chain.accounts[1].private_key))


@pytest.fixture
def topic() -> str:
    return f"p-{uuid.uuid4().hex[:12]}"


def registry_args(deployed: DeployedRegistry, *extra: str) -> list[str]:
    return [
        "--rpc", deployed.chain.url,
        "--registry", deployed.address,
        "--chain-id", str(deployed.chain.chain_id),
        "--ack-timeout", "2",
        *extra,
    ]  # fmt: skip


@pytest.fixture
def gateway(tmp_path: Path, policy_chain: DeployedRegistry) -> Iterator[GatewayProcess]:
    proc = GatewayProcess(
        tmp_path / "gw", metrics=False, extra_args=registry_args(policy_chain), ready_timeout=60
    )
    try:
        yield proc.start()
    finally:
        proc.stop()
        print(f"--- gateway stderr (tail) ---\n{proc.stderr_tail(40)}")  # shown on failure


def event(n: int) -> CloudEvent:
    return CloudEvent({"type": "t.policy", "source": "/policy-test", "id": f"e{n}"}, {"n": n})


class Reader:
    """Reads a subscription in a task, so tests can wait for counts or the stream's end."""

    def __init__(self, sub: Subscription) -> None:
        self.sub = sub
        self.received: list[Received] = []
        self.error: BaseException | None = None
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for item in self.sub:
                self.received.append(item)
        except grpc.aio.AioRpcError as exc:
            self.error = exc

    async def wait_count(self, n: int, timeout: float = 45) -> None:
        async def enough() -> bool:
            return len(self.received) >= n

        await async_wait_for(enough, timeout=timeout, what=f"{n} events")

    async def wait_end(self, timeout: float = 45) -> grpc.aio.AioRpcError:
        async with asyncio.timeout(timeout):
            await self.task
        assert isinstance(self.error, grpc.aio.AioRpcError), "stream ended without an error"
        return self.error

    async def aclose(self) -> None:
        self.task.cancel()
        await asyncio.wait([self.task])
        await self.sub.aclose()


@pytest.fixture
async def clients() -> AsyncIterator[list[GatewayClient]]:
    made: list[GatewayClient] = []
    try:
        yield made
    finally:
        for client in made:
            await client.aclose()


def client_for(
    made: list[GatewayClient], gw: GatewayProcess, signer: LocalAccount | None
) -> GatewayClient:
    client = GatewayClient(gw.listen, signer=signer, timeout=20)
    made.append(client)
    return client


async def test_granted_reader_receives_others_are_denied(
    gateway: GatewayProcess, owner: RegistryClient, topic: str, clients: list[GatewayClient]
) -> None:
    reader, stranger, publisher = Account.create(), Account.create(), Account.create()
    owner.register(topic)
    owner.grant(topic, reader.address)
    owner.allow_publisher(topic, publisher.address)
    pub = client_for(clients, gateway, publisher)
    await async_wait_for(lambda: _publish_ok(pub, topic), timeout=45, what="grants visible")
    sub = Reader(client_for(clients, gateway, reader).subscribe(topic))
    try:
        await sub.wait_count(1)
        assert sub.received[0].event.get_data() == {"n": 0}
        assert sub.sub.subscribed is not None
        assert sub.sub.subscribed.address == reader.address
    finally:
        await sub.aclose()

    denied = Reader(client_for(clients, gateway, stranger).subscribe(topic))
    error = await denied.wait_end()
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "no grant" in str(error.details())

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await client_for(clients, gateway, reader).publish(topic, event(1))
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "not a publisher" in str(info.value.details())

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await client_for(clients, gateway, None).publish(topic, event(2))
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await client_for(clients, gateway, owner.signer).publish(f"{topic}-unregistered", event(3))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND  # a topic nobody registered
    assert "unknown topic" in str(info.value.details())


async def _publish_ok(client: GatewayClient, topic: str) -> bool:
    try:
        await client.publish(topic, event(0))
    except grpc.aio.AioRpcError as exc:
        if exc.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAVAILABLE):
            return False
        raise
    return True


async def test_revoke_mid_stream_ends_delivery(
    gateway: GatewayProcess, owner: RegistryClient, topic: str, clients: list[GatewayClient]
) -> None:
    reader = Account.create()
    owner.register(topic)
    owner.grant(topic, reader.address)
    pub = client_for(clients, gateway, owner.signer)
    await async_wait_for(lambda: _publish_ok(pub, topic), timeout=45, what="topic visible")
    sub = Reader(client_for(clients, gateway, reader).subscribe(topic))
    try:
        await sub.wait_count(1)
        owner.revoke(topic, reader.address)
        mined = time.monotonic()
        error = await sub.wait_end()
        print(f"revoke mined -> stream ended: {time.monotonic() - mined:.3f}s")
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "revoked" in str(error.details())
        count = len(sub.received)
        await pub.publish(topic, event(5))
        assert len(sub.received) == count
    finally:
        await sub.aclose()
    entries = list(read_entries(audit_path(gateway.data_dir), topic=topic))
    assert [e.decision for e in entries if e.address == reader.address.lower()] == [
        "allow",
        "deny",
    ]


async def test_expiry_mid_stream_ends_delivery_by_wall_clock(
    gateway: GatewayProcess, owner: RegistryClient, topic: str, clients: list[GatewayClient]
) -> None:
    reader = Account.create()
    owner.register(topic)
    owner.grant(topic, reader.address, int(time.time()) + 3600)
    pub = client_for(clients, gateway, owner.signer)
    await async_wait_for(lambda: _publish_ok(pub, topic), timeout=45, what="topic visible")
    sub = Reader(client_for(clients, gateway, reader).subscribe(topic))
    try:
        await sub.wait_count(1)
        # shorten the grant while the stream runs (however slow the machine was so far)
        expires_at = int(time.time()) + 4
        owner.grant(topic, reader.address, expires_at)
        error = await sub.wait_end(timeout=30)  # no block is mined, no event is published
        assert time.time() >= expires_at
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "expired" in str(error.details())
    finally:
        await sub.aclose()


async def _challenge(stub: gateway_pb2_grpc.GatewayStub) -> Challenge:
    n = await stub.GetNonce(gateway_pb2.GetNonceRequest(), timeout=20)
    return Challenge(n.nonce, n.domain, n.uri, n.chain_id, n.expires_at.seconds)


async def _sign_in_error(
    stub: gateway_pb2_grpc.GatewayStub, message: str, signature: bytes
) -> grpc.aio.AioRpcError:
    request = gateway_pb2.SignInRequest(
        proof=gateway_pb2.SignInProof(message=message, signature=signature)
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.SignIn(request, timeout=20)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    return info.value


async def test_bad_sign_ins_are_unauthenticated_and_say_why(
    gateway: GatewayProcess, clients: list[GatewayClient]
) -> None:
    alice, mallory = Account.create(), Account.create()
    stub = client_for(clients, gateway, None).stub
    now = time.time()

    proof = sign_in(alice, await _challenge(stub), ["t"], now)
    request = gateway_pb2.SignInRequest(
        proof=gateway_pb2.SignInProof(message=proof.message, signature=proof.signature)
    )
    answer = await stub.SignIn(request, timeout=20)
    assert answer.address == alice.address and answer.session_token
    replayed = await _sign_in_error(stub, proof.message, proof.signature)
    assert "sign-in replayed" in str(replayed.details())

    old = sign_in(alice, await _challenge(stub), ["t"], now - 120, ttl=60)
    expired = await _sign_in_error(stub, old.message, old.signature)
    assert "sign-in expired" in str(expired.details())

    c = await _challenge(stub)
    evil = Challenge(c.nonce, "evil.example", c.uri, c.chain_id, c.expires_at)
    foreign = sign_in(alice, evil, ["t"], now)
    wrong_domain = await _sign_in_error(stub, foreign.message, foreign.signature)
    assert "sign-in for another domain" in str(wrong_domain.details())
    assert "evil.example" in str(wrong_domain.details())

    message = build_message(alice.address, await _challenge(stub), ["t"], now)
    forged = await _sign_in_error(stub, message, sign_message(mallory, message))
    assert "sign-in forged" in str(forged.details())

    bad_token = gateway_pb2.Credentials(session_token=answer.session_token[:-2] + "xx")
    open_pb = gateway_pb2.SubscriptionOpen(topic="t", credentials=bad_token)
    call = stub.Subscribe(iter([gateway_pb2.SubscribeRequest(open=open_pb)]))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call.read()
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "session invalid" in str(info.value.details())


async def test_sign_in_scope_is_explicit_and_the_client_fills_it(
    gateway: GatewayProcess, owner: RegistryClient, topic: str, clients: list[GatewayClient]
) -> None:
    other = f"{topic}-b"
    owner.register(topic)
    owner.register(other)
    stub = client_for(clients, gateway, None).stub

    async def publish_with(resources: list[str]) -> None:
        proof = sign_in(owner.signer, await _challenge(stub), resources, time.time())
        signed = await stub.SignIn(
            gateway_pb2.SignInRequest(
                proof=gateway_pb2.SignInProof(message=proof.message, signature=proof.signature)
            ),
            timeout=20,
        )
        request = gateway_pb2.PublishRequest(
            topic=topic,
            credentials=gateway_pb2.Credentials(session_token=signed.session_token),
        )
        request.batch.events.append(events.to_pb(event(9)))
        nonce = await stub.GetNonce(gateway_pb2.GetNonceRequest(), timeout=20)
        binding = provenance.Binding.of(nonce.chain_id, nonce.registry)  # issue 11: signed
        provenance.sign_events(
            request.batch.events, topic=topic, binding=binding, signer=owner.signer
        )
        await stub.Publish(request, timeout=20)

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await publish_with([])  # no topic resource: valid for no topic
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "sign-in out of scope" in str(info.value.details())
    assert "no topic resources" in str(info.value.details())
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await publish_with([other])
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    await async_wait_for(
        lambda: _accepted(publish_with([ALL_TOPICS])), timeout=45, what="wildcard scope"
    )

    client = client_for(clients, gateway, owner.signer)  # no signin_topics given
    await client.publish(topic, event(10))
    first = client.credentials
    await client.publish(other, event(11))  # a new topic: signs in again, listing both
    assert client.credentials != first
    second = client.credentials
    async with client.subscribe(topic) as sub:  # already covered: no new sign-in
        async with asyncio.timeout(30):
            assert (await anext(sub)).event is not None
    assert client.credentials == second


async def _accepted(call: Awaitable[None]) -> bool:
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        if exc.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAVAILABLE):
            return False
        raise
    return True


def _cli(*args: str, password: str = "pw", timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meshgate", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "MESHGATE_KEY_PASSWORD": password},
        check=False,
    )


async def test_cli_key_file_sign_in_and_audit_log_verifies_until_edited(
    gateway: GatewayProcess, owner: RegistryClient, topic: str, tmp_path: Path
) -> None:
    reader = Account.create()
    owner_key = tmp_path / "owner.json"
    reader_key = tmp_path / "reader.json"
    write_keystore(owner_key, bytes(owner.signer.key), "pw", light=True)  # type: ignore[union-attr]
    write_keystore(reader_key, bytes(reader.key), "pw", light=True)
    owner.register(topic)
    owner.grant(topic, reader.address)
    publish = (
        "publish", "--gateway", gateway.listen, "--topic", topic, "--type", "t.cli",
        "--source", "/cli", "--data", '{"k": 1}',
    )  # fmt: skip

    def published() -> bool:
        result = _cli(*publish, "--key-file", str(owner_key))
        return result.returncode == 0

    await asyncio.to_thread(wait_for, published, 30, 0.2, "owner's publish accepted")
    denied = await asyncio.to_thread(_cli, *publish, "--key-file", str(reader_key))
    assert denied.returncode == 1 and "PERMISSION_DENIED" in denied.stderr
    wrong = await asyncio.to_thread(_cli, *publish, "--key-file", str(owner_key), password="no")
    assert wrong.returncode == 1 and "password" in wrong.stderr
    read = await asyncio.to_thread(
        _cli, "subscribe", "--gateway", gateway.listen, "--topic", topic,
        "--count", "1", "--key-file", str(reader_key),
    )  # fmt: skip
    assert read.returncode == 0, read.stderr
    assert '"k": 1' in read.stdout or '"k":1' in read.stdout

    data = str(gateway.data_dir)
    verified = await asyncio.to_thread(_cli, "audit", "verify", "--data", data)
    assert verified.returncode == 0, verified.stderr
    shown = await asyncio.to_thread(
        _cli, "audit", "show", "--data", data, "--topic", topic, "--json"
    )
    decisions = [json.loads(line)["decision"] for line in shown.stdout.splitlines()]
    assert "allow" in decisions and "deny" in decisions

    path = audit_path(gateway.data_dir)
    lines = path.read_text().splitlines()
    victim = next(i for i, line in enumerate(lines) if '"deny"' in line)
    lines[victim] = lines[victim].replace('"deny"', '"allow"')
    path.write_text("\n".join(lines) + "\n")
    broken = await asyncio.to_thread(_cli, "audit", "verify", "--data", data)
    assert broken.returncode == 1
    assert f"broken at entry {victim + 1}" in broken.stderr
