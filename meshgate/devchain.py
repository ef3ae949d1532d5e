"""A local Ganache chain as a real process, for tests, the demo and `meshgate chain dev`.

Resource handling: `DevChain.start()` spawns `contracts/node_modules/.bin/ganache` as a
`meshgate.processes.ChildProcess` (its own process group, output to a log file) and returns once
`eth_chainId` answers; `stop()` stops the whole group and waits; `kill9()` is the crash case.
With a `db_path` the chain's state survives `stop()` + `start()` (`restart()`): same accounts,
blocks, contracts; used to test followers across a node restart.

Ganache's `--wallet.deterministic` accounts come from the mnemonic below at m/44'/60'/0'/0/i
(checked against `eth_accounts` by the tests).
"""

from __future__ import annotations

import json
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from eth_account import Account

from meshgate.errors import DevChainError
from meshgate.processes import ChildProcess, free_port

DEV_MNEMONIC = "myth like bonus scare over problem client lizard pioneer submit female collect"
DEV_CHAIN_ID = 1337
DEFAULT_ACCOUNTS = 10
START_TIMEOUT = 30.0  # s; ~1 s when idle, much longer on a loaded 2-core machine
STOP_TIMEOUT = 10.0

REPO_ROOT = Path(__file__).resolve().parent.parent
GANACHE_BIN = REPO_ROOT / "contracts" / "node_modules" / ".bin" / "ganache"


@dataclass(frozen=True)
class DevAccount:
    address: str
    private_key: str  # 0x-prefixed hex


def dev_accounts(count: int = DEFAULT_ACCOUNTS) -> list[DevAccount]:
    """The funded accounts Ganache creates with `--wallet.deterministic`."""
    Account.enable_unaudited_hdwallet_features()
    result = []
    for i in range(count):
        acct = Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}")
        result.append(DevAccount(address=acct.address, private_key="0x" + acct.key.hex()))
    return result


def rpc_call(
    url: str, method: str, params: list[object] | None = None, timeout: float = 2.0
) -> object:
    """One JSON-RPC call over plain HTTP (no web3), for readiness checks and dev-only methods."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
    request = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        reply = json.loads(response.read())
    if "error" in reply:
        raise DevChainError(f"{method}: {reply['error']}")
    return reply["result"]


class DevChain:
    """One Ganache process (restartable on the same port and database)."""

    def __init__(
        self,
        *,
        port: int = 0,
        db_path: Path | None = None,
        accounts: int = DEFAULT_ACCOUNTS,
        chain_id: int = DEV_CHAIN_ID,
    ) -> None:
        self.port = port
        self.db_path = db_path
        self.chain_id = chain_id
        self.account_count = accounts
        self.accounts = dev_accounts(accounts)
        self._child: ChildProcess | None = None
        self.log_path = Path(tempfile.mkdtemp(prefix="meshgate-ganache-")) / "ganache.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child is not None else None

    def running(self) -> bool:
        return self._child is not None and self._child.alive()

    def start(self) -> DevChain:
        """Start Ganache and wait for it to answer; raises DevChainError if it does not."""
        if self.running():
            return self
        if not GANACHE_BIN.exists():
            raise DevChainError(f"{GANACHE_BIN} missing: run `make setup`")
        attempts = 3 if self.port == 0 else 1
        last_error = ""
        for _ in range(attempts):
            if self.port == 0 or attempts > 1:
                self.port = free_port()
            try:
                self._spawn()
                return self
            except DevChainError as exc:  # port taken in the meantime, or a slow start
                last_error = str(exc)
                self.stop()
        raise DevChainError(last_error)

    def _spawn(self) -> None:
        cmd = [
            str(GANACHE_BIN),
            "--server.host", "127.0.0.1",
            "--server.port", str(self.port),
            "--wallet.deterministic",
            "--wallet.totalAccounts", str(self.account_count),
            "--chain.chainId", str(self.chain_id),
            "--logging.quiet",
        ]  # fmt: skip
        if self.db_path is not None:
            Path(self.db_path).mkdir(parents=True, exist_ok=True)
            cmd += ["--database.dbPath", str(self.db_path)]
        self._child = child = ChildProcess(cmd, stdout_path=self.log_path)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if not child.alive():
                raise DevChainError(
                    f"ganache exited ({child.proc.returncode}): {child.stderr_tail(5)[:300]}"
                )
            try:
                if int(str(rpc_call(self.url, "eth_chainId", timeout=1.0)), 16) == self.chain_id:
                    return
            except (OSError, urllib.error.URLError, ValueError, DevChainError):
                pass
            time.sleep(0.1)
        raise DevChainError(f"ganache did not answer on {self.url} within {START_TIMEOUT}s")

    def stop(self) -> None:
        """Stop the process group and wait; idempotent."""
        child, self._child = self._child, None
        if child is not None:
            child.stop(STOP_TIMEOUT)

    def kill9(self) -> None:
        """SIGKILL the process group at once (the crash case); idempotent."""
        child, self._child = self._child, None
        if child is not None:
            child.kill9()

    def restart(self) -> DevChain:
        """Stop and start on the same port (and database, if any)."""
        self.stop()
        deadline = time.monotonic() + START_TIMEOUT
        while True:  # the old socket may linger for a moment
            try:
                self._spawn()
                return self
            except DevChainError:
                self.stop()
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)

    def mine(self, seconds_forward: int = 0) -> None:
        """Move chain time forward (Ganache `evm_increaseTime`) and mine one block."""
        if seconds_forward:
            rpc_call(self.url, "evm_increaseTime", [seconds_forward])
        rpc_call(self.url, "evm_mine", [])

    def __enter__(self) -> DevChain:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
