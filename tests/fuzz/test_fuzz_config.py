"""Fuzz the gateway's TOML config file: `read_config_file` then `settings.resolve`.

Documented outcome: `GatewaySettings`, or one `SettingsError` line naming the file or the
setting. Inputs: documents with the real keys (top level, [retention], [retention.topics.X],
[registry], [federation]) holding values of every TOML type, documents with unknown keys and
wrong shapes, and both mutated character by character into arbitrary text.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshgate.config_file import FEDERATION_KEYS, REGISTRY_KEYS, read_config_file
from meshgate.errors import SettingsError
from meshgate.settings import GatewaySettings, resolve
from tests.fuzz.budget import fuzz_settings
from tests.fuzz.pb_strategies import text

TOP_KEYS = (
    "region",
    "listen",
    "data_dir",
    "metrics_port",
    "max_event_bytes",
    "max_message_bytes",
    "ack_timeout",
    "max_ack_pending",
    "retention_interval",
    "shutdown_grace",
    "open",
    "host",
    "port",
)
RETENTION_KEYS = ("max_age_seconds", "max_bytes")

scalars = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(),
    text,
    st.sampled_from(
        ["eu", "127.0.0.1:0", "[::1]:7443", "30s", "500ms", "0x" + "ab" * 20, "ws://x"]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=2),
    max_leaves=6,
)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def table(name: str | None, pairs: dict[str, Any]) -> str:
    head = "" if name is None else f"[{name}]\n"
    return head + "".join(f"{json.dumps(k)} = {toml_value(v)}\n" for k, v in pairs.items())


def pairs(keys: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.one_of(st.sampled_from(keys), text), values, max_size=4)


@st.composite
def documents(draw: st.DrawFn) -> str:
    parts = [table(None, draw(pairs(TOP_KEYS)))]
    if draw(st.booleans()):
        parts.append(table("retention", draw(pairs(RETENTION_KEYS))))
        for topic in draw(st.lists(st.sampled_from(["orders", "a.b", "", "x y"]), max_size=2)):
            parts.append(
                table(f"retention.topics.{json.dumps(topic)}", draw(pairs(RETENTION_KEYS)))
            )
    for name, keys in (("registry", REGISTRY_KEYS), ("federation", FEDERATION_KEYS)):
        if draw(st.booleans()):
            parts.append(table(name, draw(pairs(keys))))
    doc = "\n".join(parts)
    if draw(st.integers(0, 4)) == 0:  # mutate: the text is no longer (good) TOML
        for _ in range(draw(st.integers(1, 3))):
            at = draw(st.integers(0, len(doc)))
            doc = doc[:at] + draw(text) + doc[at + draw(st.integers(0, 3)) :]
    return doc


@pytest.fixture(scope="module")
def config_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-config") / "gateway.toml"


@fuzz_settings()
@given(doc=documents())
def test_config_files_resolve_or_raise_one_settings_error(config_path: Path, doc: str) -> None:
    config_path.write_text(doc, encoding="utf-8", errors="surrogatepass")
    try:
        settings = resolve({}, {}, read_config_file(config_path))
    except SettingsError as exc:
        assert "\n" not in str(exc).strip() or "\n" in doc, str(exc)
        return
    assert isinstance(settings, GatewaySettings)


def test_a_non_string_data_dir_is_a_settings_error(config_path: Path) -> None:
    """Found by fuzzing: `data_dir = false` was a TypeError traceback, not one line."""
    config_path.write_text('data_dir = false\nregion = "eu"\nopen = true\n')
    with pytest.raises(SettingsError):
        resolve({}, {}, read_config_file(config_path))
