"""The Webhook spec's abuse-protection handshake: what a sink's OPTIONS answer allows (pure)."""

from __future__ import annotations

import pytest

from gateway.webhooks.errors import SinkRefused
from gateway.webhooks.handshake import Allowed, judge

SINK = "http://127.0.0.1:1/hook"


def test_allowed_origin_and_rate() -> None:
    ok = {"WebHook-Allowed-Origin": "meshgate-east", "WebHook-Allowed-Rate": "120"}
    assert judge(200, ok, "meshgate-east", SINK) == Allowed(120)
    assert Allowed(120).min_interval == 0.5
    assert judge(204, {"WebHook-Allowed-Origin": "*"}, "o", SINK) == Allowed(None)
    star = {"WebHook-Allowed-Origin": "o", "WebHook-Allowed-Rate": "*", "Allow": "GET, POST"}
    assert judge(200, star, "o", SINK).min_interval == 0.0


@pytest.mark.parametrize(
    ("status", "headers", "message"),
    [
        (404, {"WebHook-Allowed-Origin": "o"}, "HTTP 404 to OPTIONS"),
        (302, {"WebHook-Allowed-Origin": "o"}, "HTTP 302"),
        (200, {}, "no WebHook-Allowed-Origin"),
        (200, {"WebHook-Allowed-Origin": "evil"}, "allows origin 'evil'"),
        (200, {"WebHook-Allowed-Origin": "o", "Allow": "GET"}, "does not allow POST"),
        (200, {"WebHook-Allowed-Origin": "o", "WebHook-Allowed-Rate": "0"}, "unusable"),
        (200, {"WebHook-Allowed-Origin": "o", "WebHook-Allowed-Rate": "fast"}, "unusable"),
    ],
)
def test_refusals(status: int, headers: dict[str, str], message: str) -> None:
    with pytest.raises(SinkRefused, match=message):
        judge(status, headers, "o", SINK)
