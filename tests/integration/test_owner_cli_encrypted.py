"""The owner's CLI on an encrypted topic (issue 12), against a real Ganache and a real registry
gateway that receives the key sets. The commands run in-process (`meshgate.cli.main`);
tests/integration/test_owner_cli.py runs the installed script itself."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount

from ledger.keys import write_keystore
from meshgate.cli import main
from policy import key_sets
from tests.support.chain_fixtures import DeployedRegistry
from tests.support.gateway_process import GatewayProcess
from tests.support.registry_gateway import registry_gateway
from tests.support.waiting import free_port

pytestmark = [pytest.mark.chain, pytest.mark.timeout(240)]

PASSWORD = "correct horse"


@pytest.fixture
def gateway(tmp_path: Path, registry: DeployedRegistry) -> Iterator[GatewayProcess]:
    with registry_gateway(tmp_path / "gw", registry) as gw:
        yield gw


class Cli:
    """`meshgate ...` run in this process (`meshgate.cli.main`: the same parsers and
    commands as the installed script, without a second of start-up per command)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
        self.monkeypatch, self.capsys = monkeypatch, capsys

    def run(self, *args: str, env: dict[str, str]) -> tuple[int, str, str]:
        for name in [k for k in os.environ if k.startswith("MESHGATE_")]:
            self.monkeypatch.delenv(name)
        for name, value in {"MESHGATE_KEY_PASSWORD": PASSWORD, **env}.items():
            self.monkeypatch.setenv(name, value)
        self.capsys.readouterr()
        code = main(list(args))
        out, err = self.capsys.readouterr()
        return code, out, err

    def ok(self, *args: str, env: dict[str, str]) -> str:
        code, out, err = self.run(*args, env=env)
        assert code == 0, err
        return out

    def fails(self, expected: str, *args: str, env: dict[str, str]) -> None:
        code, out, err = self.run(*args, env=env)
        assert code == 1 and "Traceback" not in err, (out, err)
        assert err.startswith("meshgate: ") and err.count("\n") == 1 and expected in err, err


def keystore(tmp_path: Path, account: LocalAccount, name: str) -> str:
    path = tmp_path / f"{name}.json"
    write_keystore(path, bytes(account.key), PASSWORD, light=True)
    return str(path)


def test_register_encrypted_grant_revoke_and_history_through_the_cli(
    tmp_path: Path,
    registry: DeployedRegistry,
    gateway: GatewayProcess,
    funded_account: Callable[[], LocalAccount],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cli = Cli(monkeypatch, capsys)
    ok, fails = cli.ok, cli.fails
    owner, alice, bob = funded_account(), funded_account(), funded_account()
    files = {n: keystore(tmp_path, a, n) for n, a in (("owner", owner), ("alice", alice))}
    chain = {"MESHGATE_RPC": registry.chain.url, "MESHGATE_REGISTRY": registry.address}
    as_owner = chain | {"MESHGATE_KEY_FILE": files["owner"]}
    with_gw = as_owner | {"MESHGATE_GATEWAY": gateway.listen}
    topic = f"cli-enc-{uuid.uuid4().hex[:8]}"

    out = ok("keys", "announce", "--key-file", files["alice"], env=chain)
    assert out.startswith("announced X25519 key ") and alice.address in out
    again = ok("keys", "announce", "--key-file", files["alice"], env=chain)
    assert "already on chain" in again

    # No gateway: refused before any transaction.
    fails("needs --gateway", "owner", "register", topic, "--encrypted", env=as_owner)
    assert registry.client().owner_of(topic) is None

    out = ok("owner", "register", topic, "--encrypted", env=with_gw)
    assert f"registered {topic!r} (encrypted)" in out
    assert "announced the owner's X25519 key" in out
    assert "key epoch 1 " in out and "sealed to 1:" in out

    out = ok("owner", "grant", topic, alice.address, env=with_gw)
    assert "key epoch 1 " in out and "re-issued" in out and f"{alice.address} (reader)" in out
    # publish/subscribe seal and open through the client, with the key file and the chain.
    ok(
        "publish", "--gateway", gateway.listen, "--topic", topic, "--type", "t.a",
        "--source", "/cli", "--data", '{"secret": "cli-plaintext"}', "--key-file", files["owner"],
        env=chain,
    )  # fmt: skip
    got = ok(
        "subscribe", "--gateway", gateway.listen, "--topic", topic, "--count", "1",
        "--key-file", files["alice"], env=chain,
    )  # fmt: skip
    assert json.loads(got)["data"] == {"secret": "cli-plaintext"}
    assert b"cli-plaintext" not in b"".join(
        p.read_bytes() for p in gateway.data_dir.rglob("*") if p.is_file()
    )
    out = ok("owner", "grant", topic, bob.address, env=with_gw)
    assert f"no key for {bob.address}: no X25519 key announced on chain" in out
    assert "key epoch" not in out  # nothing to re-issue for a reader without a key

    fails("needs --gateway", "owner", "revoke", topic, alice.address, env=as_owner)
    down = as_owner | {"MESHGATE_GATEWAY": f"127.0.0.1:{free_port()}"}  # nobody listens
    fails("does not answer", "owner", "revoke", topic, alice.address, env=down)
    assert registry.client().can_read(topic, alice.address)  # nothing was sent

    out = ok("owner", "revoke", topic, alice.address, env=with_gw)
    assert "key epoch 2 " in out and "revoke on an encrypted topic" in out
    assert alice.address not in out.split("\n", 1)[1]  # only the revoke line names her

    out = ok("owner", "grant", topic, alice.address, "--history", env=with_gw)
    assert "key epoch 1 " not in out and "key epoch 2 " in out  # she still holds epoch 1
    assert f"{alice.address} already holds the key of epoch 1" in out

    out = ok("owner", "rotate", topic, env=with_gw)
    assert "key epoch 3 " in out and "(rotated)" in out
    table = ok("owner", "show", topic, env=chain)
    assert "data     encrypted, key epoch 3" in table

    # Every key set the CLI made is held by the gateway and recorded on chain.
    held = _held(gateway, topic)
    assert sorted(d.epoch for d in held) == [1, 1, 2, 2, 3]
    out = ok("owner", "transfer", topic, bob.address, env=as_owner)
    assert f"note: {topic!r} is encrypted" in out and "owner rotate" in out
    plain = topic + "-plain"
    registry.client(owner).register(plain)
    fails("is not encrypted", "owner", "rotate", plain, env=with_gw)


def _held(gateway: GatewayProcess, topic: str) -> list[key_sets.KeySetDocument]:
    import grpc

    from proto import gateway_pb2, gateway_pb2_grpc

    with grpc.insecure_channel(gateway.listen) as channel:
        reply = gateway_pb2_grpc.GatewayStub(channel).GetKeySets(
            gateway_pb2.GetKeySetsRequest(topic=topic), timeout=10
        )
    return [key_sets.decode(bytes(k.document)) for k in reply.key_sets]
