"""`ProofFile`: durable groups' reader proofs in DATA/interest_proofs.json, across restarts.

One JSON document: a list of {"topic", "filters" (eventmodel JSON), "address", "message",
"signature" (hex), "expires_at"}. Written whole (temporary file, then rename) whenever a reader
brings a newer proof to a durable group; expired entries are dropped at load. A missing file is
empty; an unreadable or corrupt one is logged and treated as empty (fail closed: the groups then
attract nothing until their readers subscribe again).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from eventmodel import filters
from gateway.interest import Interest, ReaderProof

log = logging.getLogger(__name__)
FILE_NAME = "interest_proofs.json"


class ProofFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> list[tuple[Interest, ReaderProof]]:
        try:
            raw = json.loads(self.path.read_text())
            return [
                (
                    Interest(str(e["topic"]), filters.list_from_json(e["filters"])),
                    ReaderProof(
                        str(e["address"]),
                        str(e["message"]),
                        bytes.fromhex(str(e["signature"])),
                        float(e["expires_at"]),
                    ),
                )
                for e in raw
            ]
        except FileNotFoundError:
            return []
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring %s (%s): durable groups wait for their readers", self.path, exc)
            return []

    def save(self, entries: Sequence[tuple[Interest, ReaderProof]]) -> None:
        doc = [
            {
                "topic": i.topic,
                "filters": filters.list_to_json(i.filters),
                "address": p.address,
                "message": p.message,
                "signature": p.signature.hex(),
                "expires_at": p.expires_at,
            }
            for i, p in entries
        ]
        tmp = self.path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(doc))
            os.replace(tmp, self.path)
        except OSError as exc:  # the proofs still count in memory; only a restart loses them
            log.warning("cannot save %s: %s", self.path, exc)
