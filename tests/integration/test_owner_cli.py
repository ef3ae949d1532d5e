"""The owner's CLI end to end: `.venv/bin/meshgate` subprocesses against a real Ganache."""

from __future__ import annotations

import io
import json
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger.config import LedgerConfig
from ledger.registry import RegistryClient
from meshgate.cli import main
from meshgate.devchain import DevChain, rpc_call
from tests.support.chain_fixtures import DeployedRegistry
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.chain, pytest.mark.timeout(300)]  # each CLI start costs seconds

MESHGATE = str(Path(sys.executable).parent / "meshgate")
PASSWORD = "correct horse"
TIMEOUT = 60


def run(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> tuple[int, str, str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MESHGATE_")}
    full_env["MESHGATE_KEY_PASSWORD"] = PASSWORD
    full_env.update(env or {})
    proc = subprocess.run(
        [MESHGATE, *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        env=full_env,
        timeout=TIMEOUT,
    )
    return proc.returncode, proc.stdout, proc.stderr


def ok(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> str:
    code, out, err = run(*args, env=env, stdin=stdin)
    assert code == 0, err
    return out


def fails(expected: str, *args: str, env: dict[str, str] | None = None) -> None:
    code, out, err = run(*args, env=env)
    assert code == 1, (out, err)
    assert err.startswith("meshgate: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert expected in err, err


def bad_checksum(address: str) -> str:
    """The same address with one letter's case flipped: an EIP-55 checksum failure."""
    body = address[2:]
    i = next(i for i, c in enumerate(body) if c.isalpha())
    return "0x" + body[:i] + body[i].swapcase() + body[i + 1 :]


def keystore(tmp_path: Path, account: LocalAccount, name: str) -> Path:
    path = tmp_path / f"{name}.json"
    out = ok("keys", "import", "--out", str(path), "--light-kdf", stdin=account.key.hex() + "\n")
    assert out.strip() == account.address
    return path


def test_keys_new_import_and_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "k" / "new.json"
    address = ok("keys", "new", "--out", str(path), "--light-kdf").strip()
    assert address.startswith("0x") and len(address) == 42
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert PASSWORD not in path.read_text()

    # the rest in-process: same parser and handlers, without seconds of imports per run
    monkeypatch.setenv("MESHGATE_KEY_PASSWORD", PASSWORD)
    capsys.readouterr()
    assert main(["keys", "address", str(path)]) == 0
    assert capsys.readouterr().out.strip() == address
    assert main(["keys", "new", "--out", str(path), "--light-kdf"]) == 1
    assert "already exists" in capsys.readouterr().err

    known = Account.create()
    imported = tmp_path / "imported.json"
    monkeypatch.setattr(sys, "stdin", io.StringIO("0x" + known.key.hex() + "\n"))
    assert main(["keys", "import", "--out", str(imported), "--light-kdf"]) == 0
    assert capsys.readouterr().out.strip() == known.address
    assert known.key.hex() not in imported.read_text()
    monkeypatch.setattr(sys, "stdin", io.StringIO("0x1234\n"))
    assert main(["keys", "import", "--out", str(tmp_path / "bad.json")]) == 1
    assert "64 hex digits" in capsys.readouterr().err
    assert not (tmp_path / "bad.json").exists()


def test_owner_commands_end_to_end(
    tmp_path: Path,
    dev_chain: DevChain,
    funded_account: Callable[[], LocalAccount],
) -> None:
    owner_acct, heir = funded_account(), funded_account()
    reader, pub = Account.create().address, Account.create().address
    key = keystore(tmp_path, owner_acct, "owner")

    out = ok(
        "chain", "deploy", "--rpc", dev_chain.url, "--key-file", str(key), "--chain-id", "1337"
    )
    registry = out.splitlines()[0]
    assert out.splitlines()[1].startswith("tx 0x") and " block " in out

    env = {
        "MESHGATE_RPC": dev_chain.url,
        "MESHGATE_REGISTRY": registry,
        "MESHGATE_KEY_FILE": str(key),
    }
    out = ok("owner", "register", "orders.eu", env=env)
    assert out.startswith("registered 'orders.eu': tx 0x") and " block " in out
    assert "until" in ok("owner", "grant", "orders.eu", reader, "--for", "30d", env=env)
    ok("owner", "grant", "orders.eu", pub.lower(), "--expires", "2099-01-01T00:00:00Z", env=env)
    ok("owner", "allow-publisher", "orders.eu", pub, env=env)

    shown = json.loads(ok("owner", "show", "orders.eu", "--json", env=env))
    assert shown["owner"] == owner_acct.address and shown["version"] == 4
    grants = {g["reader"]: g for g in shown["grants"]}
    assert set(grants) == {reader, pub}
    assert grants[pub]["expires_at"] == 4070908800
    assert abs(grants[reader]["expires_at"] - (shown["chain_time"] + 30 * 86400)) < 120
    assert all(g["status"] == "active" for g in grants.values())
    assert shown["publishers"] == [pub]

    ok("owner", "revoke", "orders.eu", reader, env=env)
    ok("owner", "deny-publisher", "orders.eu", pub, env=env)
    ok("owner", "transfer", "orders.eu", heir.address, env=env)
    fails("not the owner of topic 'orders.eu'", "owner", "grant", "orders.eu", reader, env=env)
    table = ok("owner", "show", "orders.eu", env={k: v for k, v in env.items() if "KEY" not in k})
    assert f"owner    {heir.address}" in table and "version  7" in table
    assert "(no publishers)" in table and reader not in table

    client = RegistryClient(LedgerConfig(rpc_url=dev_chain.url, registry=registry))
    assert client.owner_of("orders.eu") == heir.address
    assert not client.can_read("orders.eu", reader) and client.can_read("orders.eu", pub)


def test_every_user_error_is_one_line(
    tmp_path: Path,
    registry: DeployedRegistry,
    owner: RegistryClient,
    funded_account: Callable[[], LocalAccount],
    topic_name: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The same CLI in-process (the binary costs seconds of imports per run)."""
    outsider = keystore(tmp_path, funded_account(), "outsider")
    broke = keystore(tmp_path, Account.create(), "broke")
    owner_key = keystore(tmp_path, owner.signer, "owner")  # type: ignore[arg-type]
    owner.register(topic_name)
    someone = Account.create().address
    for name in [k for k in os.environ if k.startswith("MESHGATE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("MESHGATE_KEY_PASSWORD", PASSWORD)

    def fails_here(expected: str, *args: str, key: Path | None = outsider, **env: str) -> None:
        with monkeypatch.context() as m:
            m.setenv("MESHGATE_RPC", registry.chain.url)
            m.setenv("MESHGATE_REGISTRY", registry.address)
            if key is not None:
                m.setenv("MESHGATE_KEY_FILE", str(key))
            for k, v in env.items():
                m.setenv(k, v) if v else m.delenv(k)
            capsys.readouterr()
            assert main(list(args)) == 1
            err = capsys.readouterr().err
        assert err.startswith("meshgate: ") and err.count("\n") == 1, err
        assert expected in err, err

    t = topic_name
    fails_here("not the owner of topic", "owner", "grant", t, someone)
    fails_here("not the owner of topic", "owner", "transfer", t, someone)
    fails_here("unknown topic", "owner", "revoke", t + "-x", someone)
    fails_here("unknown topic", "owner", "show", t + "-x")
    fails_here("already registered", "owner", "register", t)
    fails_here("bad address checksum", "owner", "grant", t, bad_checksum(someone))
    fails_here("not an Ethereum address", "owner", "grant", t, "0x1234")
    fails_here("bad topic name", "owner", "register", "bad/name")
    fails_here("insufficient funds", "owner", "register", t + "-b", key=broke)
    fails_here("wrong password", "owner", "register", t + "-p", MESHGATE_KEY_PASSWORD="nope")
    fails_here("chain unreachable", "owner", "show", t, MESHGATE_RPC="http://127.0.0.1:9")
    fails_here("wrong chain id", "owner", "show", t, "--chain-id", "5")
    fails_here("no key", "owner", "register", t + "-k", key=None)
    fails_here("no registry", "owner", "show", t, MESHGATE_REGISTRY="")
    fails_here("keystore not found", "owner", "register", "x", key=tmp_path / "none.json")
    iso = datetime.fromtimestamp(owner.chain_time() - 100, tz=UTC).isoformat()
    fails_here("expiry in the past", "owner", "grant", t, someone, "--expires", iso, key=owner_key)
    fails_here("bad --for", "owner", "grant", t, someone, "--for", "soon", key=owner_key)
    fails_here("no grant", "owner", "revoke", t, someone, key=owner_key)
    fails_here("not a publisher", "owner", "deny-publisher", t, someone, key=owner_key)


def test_chain_dev_runs_until_sigterm(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    proc = subprocess.Popen(
        [MESHGATE, "chain", "dev", "--port", "0", "--keys-dir", str(keys_dir), "--accounts", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "MESHGATE_KEY_PASSWORD": PASSWORD},
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline()
        assert ready.startswith("meshgate chain ready url=http://127.0.0.1:"), ready
        url = ready.split("url=")[1].split()[0]
        accounts = [proc.stdout.readline() for _ in range(2)]
        assert accounts[0].startswith("account 0 0x90F8bf6A479f320ead074411a4B0e7944Ea8c9C1")
        assert rpc_call(url, "eth_chainId") == hex(1337)
        assert ok("keys", "address", str(keys_dir / "account-1.json")).strip() in accounts[1]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        wait_for(lambda: _refused(url), timeout=15, what="ganache to stop")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _refused(url: str) -> bool:
    try:
        rpc_call(url, "eth_chainId", timeout=1.0)
    except OSError:
        return True
    return False
