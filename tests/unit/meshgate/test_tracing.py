"""Tracing's switch: OTEL_TRACES_EXPORTER alone turns it on; off imports no OpenTelemetry."""

from __future__ import annotations

import subprocess
import sys

import pytest

from meshgate.errors import SettingsError
from meshgate.tracing import UNTRACED_CLIENT, UNTRACED_SERVER, exporters_from
from proto import federation_pb2, gateway_pb2
from tests.support.gateway_process import REPO


@pytest.mark.parametrize(
    ("value", "names"),
    [
        (None, ()),
        ("", ()),
        ("none", ()),
        ("otlp", ("otlp",)),
        (" OTLP , console ", ("otlp", "console")),
        ("none,otlp", ("otlp",)),
    ],
)
def test_the_exporters_come_from_one_variable(value: str | None, names: tuple[str, ...]) -> None:
    env = {} if value is None else {"OTEL_TRACES_EXPORTER": value}
    assert exporters_from(env) == names


def test_an_unknown_exporter_is_one_clear_error() -> None:
    with pytest.raises(SettingsError, match="OTEL_TRACES_EXPORTER='zipkin'"):
        exporters_from({"OTEL_TRACES_EXPORTER": "zipkin"})


def test_the_left_out_methods_exist() -> None:
    methods = {
        f"/{service.full_name}/{m.name}"
        for proto in (gateway_pb2, federation_pb2)
        for service in proto.DESCRIPTOR.services_by_name.values()
        for m in service.methods
    }
    assert UNTRACED_SERVER <= UNTRACED_CLIENT <= methods


PROBE = """
import os, sys
os.environ.pop("OTEL_TRACES_EXPORTER", None)
from meshgate.tracing import setup
from eventmodel import event_spans
assert setup(service="probe", region="eu") is None and not event_spans.ON
import meshgate.assemble, meshgate.client
print(sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry"))
"""


def test_off_imports_nothing_of_opentelemetry() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
