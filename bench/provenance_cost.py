"""The CPU cost of publisher provenance per event, measured in the bench process (issue 11).

One batch of 100 events of 1 KiB `binary_data` (the bench's event): signing it as
`GatewayClient.publish_pb` does (one signature over the Merkle root), and verifying each event
as a gateway does (inclusion proof by hashing, one signer recovery per batch, cached). Best of
five rounds; the throughput effect is the `xregion_pubsub` / `xregion_pubsub_open` pair.
"""

from __future__ import annotations

import time
import uuid

from eth_account import Account

from eventmodel.attributes import PbEvent, parse
from eventmodel.provenance import Binding, ProvenanceVerifier, sign_events

BATCH = 100
ROUNDS = 5


def _events() -> list[PbEvent]:
    return [
        PbEvent(
            id=uuid.uuid4().hex,
            source="/bench/harness",
            spec_version="1.0",
            type="dev.meshgate.bench",
            binary_data=b"\x00" * 1024,
        )
        for _ in range(BATCH)
    ]


def provenance_cost() -> dict[str, float]:
    """Microseconds per event: `sign_us`, `verify_us` (a fresh verifier per round)."""
    key = Account.create()
    binding = Binding(1337, b"\x01" * 20)
    sign = verify = float("inf")
    for _ in range(ROUNDS):
        events = _events()
        started = time.perf_counter()
        sign_events(events, topic="bench", binding=binding, signer=key)
        sign = min(sign, time.perf_counter() - started)
        parsed = [parse(e.SerializeToString(deterministic=True)) for e in events]
        verifier = ProvenanceVerifier(binding)
        started = time.perf_counter()
        for pb in parsed:
            verifier.verify(pb, "bench")
        verify = min(verify, time.perf_counter() - started)
    return {"sign_us": sign / BATCH * 1e6, "verify_us": verify / BATCH * 1e6}


def provenance_note() -> str:
    cost = provenance_cost()
    return (
        f"Publisher provenance (issue 11), measured in this run: signing costs "
        f"{cost['sign_us']:.1f} us an event at the publisher (one secp256k1 signature per "
        f"publish call of {BATCH}), verifying {cost['verify_us']:.1f} us an event at each "
        "gateway that stores it (the origin, every relay and destination). "
        "`publish east, consume west` runs signed, verified gateways with access control; "
        "`... provenance off (open gateways, no registry)` is the same run on an open-mode pair "
        "(no sign-in, no grants, unsigned), so their gap is provenance plus access control."
    )
