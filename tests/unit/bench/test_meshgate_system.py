"""The bench gateways' config file is one the gateway reads, with acks allowed to lag a window."""

from __future__ import annotations

from pathlib import Path

from bench.families import WINDOW
from bench.meshgate_system import gateway_config
from meshgate.config_file import read_config_file


def test_the_bench_config_lets_acks_lag_the_whole_window(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(gateway_config(WINDOW))
    assert read_config_file(path).gateway == {"max_ack_pending": WINDOW}
