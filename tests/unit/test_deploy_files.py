"""deploy/: the Grafana dashboard, the Prometheus alert rules and the KEDA example name only
metrics the gateways really expose (a renamed metric must not silently blank a panel or an
alert), and each file has the shape its tool loads."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import generate_latest

from federation.metrics import FederationMetrics
from gateway.metrics import GatewayMetrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
METRIC = re.compile(r"\bmeshgate_[a-z_]+")
SUFFIXES = ("_bucket", "_count", "_sum")


def exposed() -> set[str]:
    """Every sample name one gateway with federation exposes (labelled ones once touched)."""
    metrics = GatewayMetrics()
    federation = FederationMetrics(metrics.registry)
    metrics.events_in.labels("t").inc()
    metrics.events_out.labels("t").inc()
    metrics.duplicates.labels("t").inc()
    metrics.consumer_lag.labels("t", "g").set(1)
    metrics.unacked_events.labels("t", "g").set(1)
    metrics.stored_bytes.labels("t").set(1)
    federation.peer_up.labels("p").set(1)
    federation.lag_events.labels("p").set(1)
    federation.lag_seconds.labels("p").set(1)
    federation.rejected.labels("bad_signature").inc()
    text = generate_latest(metrics.registry).decode()
    names = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def check_names(exprs: list[str]) -> None:
    known = exposed()
    assert exprs
    for expr in exprs:
        for name in METRIC.findall(expr):
            assert name in known or any(name + s in known for s in SUFFIXES), (name, expr)


def test_alert_rules_name_real_metrics_and_have_a_summary() -> None:
    doc = yaml.safe_load((DEPLOY / "prometheus" / "meshgate-alerts.yml").read_text())
    rules = [rule for group in doc["groups"] for rule in group["rules"]]
    names = {rule["alert"] for rule in rules}
    for wanted in ("ConsumerLagHigh", "ReplicationLagHigh", "PeerDown", "RejectedEvents"):
        assert "Meshgate" + wanted in names
    assert "MeshgateChainViewStale" in names
    for rule in rules:
        assert rule["annotations"]["summary"] and rule["labels"]["severity"]
    check_names([rule["expr"] for rule in rules])


def test_dashboard_panels_query_real_metrics() -> None:
    dash = json.loads((DEPLOY / "grafana" / "meshgate-dashboard.json").read_text())
    exprs = [t["expr"] for panel in dash["panels"] for t in panel["targets"]]
    assert len({panel["id"] for panel in dash["panels"]}) == len(dash["panels"])
    check_names(exprs)


def test_keda_scales_on_consumer_lag() -> None:
    doc = yaml.safe_load((DEPLOY / "keda" / "scaledobject.yaml").read_text())
    assert doc["kind"] == "ScaledObject"
    [trigger] = doc["spec"]["triggers"]
    assert trigger["type"] == "prometheus"
    assert "meshgate_consumer_lag" in trigger["metadata"]["query"]
    check_names([trigger["metadata"]["query"]])
