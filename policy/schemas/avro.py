"""Avro schemas: parse (fastavro), validate data, and Avro's schema resolution as the check.

Data is validated in either encoding: JSON (text data, or a JSON `datacontenttype`) as the
plain value (unions unwrapped, fastavro's validation), or Avro binary (binary data, the
schemaless encoding: no container header, no Confluent prefix), which must decode and end
exactly at the data's end.

Compatibility follows the specification's schema resolution (Avro 1.11 "Schema Resolution"):
`reads(writer)` says whether data written with `writer` can be read with this schema:
primitive promotions (int->long->float->double, string<->bytes), records matched by name or
reader alias, each reader field found in the writer (by name or alias) or given a default,
enums whose writer symbols the reader knows (or that have a reader default), arrays, maps,
fixed (same size), and unions on either side. Logical types resolve as their underlying type.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

from policy.schemas.errors import DataInvalid, InvalidSchema
from policy.schemas.payload import Payload, json_value

PROMOTIONS = {
    "int": {"long", "float", "double"},
    "long": {"float", "double"},
    "float": {"double"},
    "string": {"bytes"},
    "bytes": {"string"},
}
PRIMITIVES = frozenset(("null", "boolean", "int", "long", "float", "double", "bytes", "string"))
NAMED = frozenset(("record", "error", "enum", "fixed"))


@dataclass(frozen=True, slots=True, eq=False)
class AvroSchema:
    parsed: Any
    names: dict[str, Any]

    def validate(self, payload: Payload) -> None:
        if payload.text is not None or (payload.binary is not None and payload.is_json()):
            self._validate_json(json_value(payload))
        elif payload.binary is not None:
            self._validate_binary(payload.binary)
        elif payload.proto is not None:
            raise DataInvalid("", "the schema needs Avro or JSON data, the event carries an Any")
        else:
            self._validate_json(None)

    def _validate_json(self, value: Any) -> None:
        import fastavro.validation  # on first use (RSS: only gateways with Avro schemas pay)

        try:
            fastavro.validation.validate(value, self.parsed, raise_errors=True)
        except fastavro.validation.ValidationError as exc:
            first = exc.errors[0] if getattr(exc, "errors", None) else str(exc)
            text = str(first)
            path, _, detail = text.partition(" is ")
            raise DataInvalid(path.replace(".", "/"), f"is {detail}" if detail else text) from None

    def _validate_binary(self, raw: bytes) -> None:
        import fastavro

        stream = io.BytesIO(raw)
        try:
            fastavro.schemaless_reader(stream, self.parsed, None)
        except Exception as exc:  # a decoder at the edge: any failure means "not this schema"
            raise DataInvalid(
                "", f"not Avro binary of this schema ({type(exc).__name__})"
            ) from None
        if stream.tell() != len(raw):
            extra = len(raw) - stream.tell()
            raise DataInvalid("", f"{extra} bytes left after the Avro value")

    def reads(self, writer: AvroSchema) -> str | None:
        """None if data written with `writer` resolves against this schema, else why not."""
        return _Resolution(self.names, writer.names).check(self.parsed, writer.parsed, "")


def parse(document: bytes) -> AvroSchema:
    try:
        raw = json.loads(document.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidSchema(f"not a JSON document: {str(exc)[:200]}") from None
    import fastavro  # on first use: ~1.5 MB of RSS only gateways with Avro schemas pay

    names: dict[str, Any] = {}
    try:
        parsed = fastavro.parse_schema(raw, named_schemas=names)
    except Exception as exc:  # fastavro raises several types for a bad schema
        raise InvalidSchema(f"not a valid Avro schema: {str(exc)[:300]}") from None
    return AvroSchema(parsed, names)


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


class _Resolution:
    def __init__(self, reader_names: dict[str, Any], writer_names: dict[str, Any]) -> None:
        self.reader_names = reader_names
        self.writer_names = writer_names
        self.seen: set[tuple[str, str]] = set()

    def _node(self, schema: Any, names: dict[str, Any]) -> Any:
        while True:
            if isinstance(schema, str):
                if schema in PRIMITIVES:
                    return {"type": schema}
                return names[schema]
            if isinstance(schema, dict) and not isinstance(schema.get("type"), str):
                schema = schema["type"]
                continue
            return schema

    def check(self, reader: Any, writer: Any, path: str) -> str | None:
        r = reader if isinstance(reader, list) else self._node(reader, self.reader_names)
        w = writer if isinstance(writer, list) else self._node(writer, self.writer_names)
        where = path or "/"
        if isinstance(w, list):
            for branch in w:
                reason = self.check(r, branch, path)
                if reason is not None:
                    return reason
            return None
        if isinstance(r, list):
            if any(self.check(branch, w, path) is None for branch in r):
                return None
            return f"at {where}: no branch of the reader's union reads the writer's {w['type']}"
        rtype, wtype = r["type"], w["type"]
        if rtype != wtype and not (rtype == "record" and wtype == "error"):
            if rtype in PROMOTIONS.get(wtype, ()):
                return None
            return f"at {where}: the writer has {wtype}, the reader {rtype}"
        if rtype in NAMED or rtype == "error":
            names = {_short(r["name"]), *(_short(a) for a in r.get("aliases", ()))}
            if _short(w["name"]) not in names:
                return f"at {where}: the writer's {wtype} {w['name']!r}, the reader's {r['name']!r}"
        if rtype in ("record", "error"):
            return self._record(r, w, path)
        if rtype == "enum":
            unknown = [s for s in w["symbols"] if s not in r["symbols"]]
            if unknown and "default" not in r:
                return f"at {where}: the reader's enum lacks {unknown[0]!r} and has no default"
            return None
        if rtype == "fixed" and r["size"] != w["size"]:
            return f"at {where}: fixed size {w['size']} written, {r['size']} read"
        if rtype == "array":
            return self.check(r["items"], w["items"], f"{path}/items")
        if rtype == "map":
            return self.check(r["values"], w["values"], f"{path}/values")
        return None

    def _record(self, r: dict[str, Any], w: dict[str, Any], path: str) -> str | None:
        key = (r["name"], w["name"])
        if key in self.seen:
            return None  # recursive types: assumed to resolve while the rest is checked
        self.seen.add(key)
        written = {f["name"]: f for f in w["fields"]}
        for field in r["fields"]:
            candidates = [field["name"], *field.get("aliases", ())]
            match = next((written[n] for n in candidates if n in written), None)
            here = f"{path}/{field['name']}"
            if match is None:
                if "default" not in field:
                    return (
                        f"at {here}: the reader's field {field['name']!r} has no default "
                        "and the writer has no such field"
                    )
                continue
            reason = self.check(field["type"], match["type"], here)
            if reason is not None:
                return reason
        return None
