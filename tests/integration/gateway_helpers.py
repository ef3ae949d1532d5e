"""Small helpers shared by the gateway integration tests."""

from __future__ import annotations

import urllib.request

from cloudevents.core.v1.event import CloudEvent


def event(
    i: int | str, *, type_: str = "com.example.t", source: str = "/test", **extra: object
) -> CloudEvent:
    attrs: dict[str, object] = {"type": type_, "source": source, "id": str(i), "specversion": "1.0"}
    attrs.update(extra)
    return CloudEvent(attrs, {"n": i})


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.read().decode()


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus text format, or None."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        sample, _, lbls = key.partition("{")
        got = ",".join(sorted(lbls.rstrip("}").split(","))) if lbls else ""
        if sample == name and got == want:
            return float(value)
    return None
