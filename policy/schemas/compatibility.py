"""Which schema versions are accepted: the one deterministic judgement every region makes.

The chain stores every version the owner added; it cannot judge compatibility. So each gateway
(and the CLI, before it sends a version) runs `judge` over the versions of one (topic, type) in
chain order, and all of them reach the same verdicts from the same chain:

- a version whose document does not parse in its format is not accepted ("invalid schema: ..");
- the first parseable version is accepted;
- a later one is judged under the mode in force when it was added (recorded by the grant view,
  so turning a mode on later does not void versions added under NONE): NONE accepts it;
  otherwise it is compared with the newest accepted version, or with every accepted version for
  the _TRANSITIVE modes; BACKWARD: it reads what they wrote; FORWARD: they read what it writes;
  FULL: both. A different format than the one compared with breaks every mode but NONE;
- a refused version is ignored: later versions are compared with the accepted ones only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from policy.schemas import avro, json_schema, protobuf
from policy.schemas.errors import InvalidSchema, SchemaError
from policy.schemas.model import Format, Mode
from policy.schemas.payload import Payload


class Schema(Protocol):
    def validate(self, payload: Payload) -> None: ...
    def reads(self, writer: Any) -> str | None: ...


class VersionLike(Protocol):
    """policy.grant_view.SchemaVersion (the chain's version and the mode when it was added)."""

    @property
    def version(self) -> int: ...
    @property
    def format(self) -> int: ...
    @property
    def document(self) -> bytes: ...
    @property
    def mode(self) -> int: ...


_PARSERS = {
    Format.JSON: json_schema.parse,
    Format.AVRO: avro.parse,
    Format.PROTOBUF: protobuf.parse,
}


def parse(format: int, document: bytes) -> Schema:
    """The schema in `document`; InvalidSchema (or SchemaError for an unknown format)."""
    return _PARSERS[Format.of(format)](document)  # type: ignore[return-value]


@dataclass(frozen=True, slots=True, eq=False)
class Verdict:
    version: int
    format: Format | None
    document: bytes
    accepted: bool
    reason: str = ""  # why not, when not accepted
    schema: Schema | None = None  # parsed, when accepted


def compare(mode: Mode, new: Schema, new_format: Format, earlier: Sequence[Verdict]) -> str | None:
    """Why `new` breaks `mode` against the accepted `earlier` versions (oldest first), or None."""
    if mode == Mode.NONE or not earlier:
        return None
    against = earlier if mode.transitive else earlier[-1:]
    for old in reversed(against):
        assert old.schema is not None and old.format is not None
        if old.format != new_format:
            return (
                f"breaks {mode.name} against version {old.version}: format changed "
                f"from {old.format.label} to {new_format.label}"
            )
        reason = new.reads(old.schema) if mode.backward else None
        if reason is None and mode.forward:
            reason = old.schema.reads(new)
            reason = None if reason is None else f"{reason} (old version reading new data)"
        if reason is not None:
            return f"breaks {mode.name} against version {old.version}: {reason}"
    return None


def judge(versions: Sequence[VersionLike]) -> tuple[Verdict, ...]:
    """The verdict on each version, in order (see module)."""
    out: list[Verdict] = []
    accepted: list[Verdict] = []
    for v in versions:
        try:
            fmt = Format.of(v.format)
            schema = parse(fmt, v.document)
            mode = Mode.of(v.mode)
        except InvalidSchema as exc:
            out.append(
                Verdict(
                    v.version,
                    _format_or_none(v.format),
                    v.document,
                    False,
                    f"invalid schema: {exc}",
                )
            )
            continue
        except SchemaError as exc:
            out.append(Verdict(v.version, _format_or_none(v.format), v.document, False, str(exc)))
            continue
        try:
            reason = compare(mode, schema, fmt, accepted)
        except RecursionError:
            reason = f"breaks {mode.name}: the schemas are nested too deep to compare"
        verdict = Verdict(
            v.version,
            fmt,
            v.document,
            reason is None,
            reason or "",
            schema if reason is None else None,
        )
        out.append(verdict)
        if verdict.accepted:
            accepted.append(verdict)
    return tuple(out)


def _format_or_none(number: int) -> Format | None:
    try:
        return Format(number)
    except ValueError:
        return None
