"""Protobuf schemas: a serialized FileDescriptorSet and the message that events carry.

The document is JSON, `{"message": "shop.v1.Order", "descriptor_set": "<base64>"}`, where the
set is what `protoc --include_imports --descriptor_set_out=F` writes (`document(...)` builds
one). Dependencies missing from the set are taken from the protobuf runtime's own pool when it
has them (the well-known types); anything else is an InvalidSchema naming the file.

Data is validated by parsing it with the message class built from the descriptor: binary data
as the wire encoding, text data as the protobuf JSON mapping, a protobuf Any whose type URL
names the message. Validation is strict: unknown fields (a number this version does not
declare) and missing proto2 required fields are refused, so an event matches the version it
names (`dataschema`) or the newest one.

Compatibility (`reads(writer)`): per field number, in the root message and every message a
field reaches: the type stays in one wire-compatible group (int32/uint32/int64/uint64/bool/
enum, sint32/sint64, fixed32/sfixed32, fixed64/sfixed64, string/bytes, messages compared by
structure), the label stays (repeated or not), and a proto2 `required` field of the reader
must exist in the writer. Added and removed fields are compatible (protobuf skips them).
NOT covered: oneof membership, enum value sets, reserved ranges, default values, options.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from google.protobuf import (
    descriptor,
    descriptor_pb2,
    descriptor_pool,
    json_format,
    message,
    message_factory,
    unknown_fields,
)

from policy.schemas.errors import DataInvalid, InvalidSchema
from policy.schemas.payload import Payload

FD = descriptor.FieldDescriptor
_GROUPS = (
    {FD.TYPE_INT32, FD.TYPE_UINT32, FD.TYPE_INT64, FD.TYPE_UINT64, FD.TYPE_BOOL, FD.TYPE_ENUM},
    {FD.TYPE_SINT32, FD.TYPE_SINT64},
    {FD.TYPE_FIXED32, FD.TYPE_SFIXED32},
    {FD.TYPE_FIXED64, FD.TYPE_SFIXED64},
    {FD.TYPE_STRING, FD.TYPE_BYTES},
    {FD.TYPE_MESSAGE},
    {FD.TYPE_GROUP},
    {FD.TYPE_FLOAT},
    {FD.TYPE_DOUBLE},
)
_TYPE_NAMES = {v: k[len("TYPE_") :].lower() for k, v in vars(FD).items() if k.startswith("TYPE_")}


def _group(field_type: int) -> int:
    return next(i for i, g in enumerate(_GROUPS) if field_type in g)


def document(descriptor_set: bytes, message_name: str) -> bytes:
    """The schema document for `message_name` in a serialized FileDescriptorSet."""
    body = {"message": message_name, "descriptor_set": base64.b64encode(descriptor_set).decode()}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True, eq=False)
class ProtobufSchema:
    descriptor: descriptor.Descriptor
    cls: type[message.Message]

    def validate(self, payload: Payload) -> None:
        msg = self.cls()
        try:
            if payload.proto is not None:
                named = payload.type_url.rsplit("/", 1)[-1]
                if named != self.descriptor.full_name:
                    raise DataInvalid(
                        "", f"the Any holds {named!r}, not {self.descriptor.full_name!r}"
                    )
                msg.ParseFromString(payload.proto)
            elif payload.text is not None:
                json_format.Parse(payload.text, msg)
            elif payload.binary is not None:
                msg.ParseFromString(payload.binary)
        except json_format.ParseError as exc:
            detail = " ".join(str(exc).split())
            raise DataInvalid("", f"not {self.descriptor.full_name} JSON: {detail[:300]}") from None
        except (message.DecodeError, RecursionError):
            raise DataInvalid("", f"not a {self.descriptor.full_name} message") from None
        if not msg.IsInitialized():
            missing: list[str] = msg.FindInitializationErrors()  # type: ignore[attr-defined]
            raise DataInvalid(missing[0].replace(".", "/"), "required field missing")
        _no_unknown_fields(msg, "")

    def reads(self, writer: ProtobufSchema) -> str | None:
        """None if this message reads what `writer` writes (see module), else why not."""
        return _compare(self.descriptor, writer.descriptor, "", set())


def _no_unknown_fields(msg: message.Message, path: str) -> None:
    unknown = unknown_fields.UnknownFieldSet(msg)
    if len(unknown):
        number = unknown[0].field_number
        raise DataInvalid(path, f"field number {number} is not in the schema")
    for field, value in msg.ListFields():
        if field.type != FD.TYPE_MESSAGE:
            continue
        if _message_type(field).GetOptions().map_entry:
            items = list(value.values()) if _is_message_map(field) else []
        elif _is_repeated(field):
            items = list(value)
        else:
            items = [value]
        for i, item in enumerate(items):
            suffix = f"/{i}" if _is_repeated(field) else ""
            _no_unknown_fields(item, f"{path}/{field.name}{suffix}")


def _is_repeated(field: FD) -> bool:
    return bool(field.is_repeated)


def _is_required(field: FD) -> bool:
    return bool(field.is_required)


def _message_type(field: FD) -> descriptor.Descriptor:
    found = field.message_type
    assert found is not None  # a message field always has its type
    return found


def _is_message_map(field: FD) -> bool:
    return bool(_message_type(field).fields_by_name["value"].type == FD.TYPE_MESSAGE)


def _compare(
    reader: descriptor.Descriptor, writer: descriptor.Descriptor, path: str, seen: set[Any]
) -> str | None:
    key = (reader.full_name, writer.full_name)
    if key in seen:
        return None
    seen.add(key)
    for number, r in sorted(reader.fields_by_number.items()):
        w = writer.fields_by_number.get(number)
        here = f"{path}/{r.name}"
        if w is None:
            if _is_required(r):
                return f"at {here}: required field {number} is not in the writer"
            continue
        if _group(r.type) != _group(w.type):
            r_type, w_type = _TYPE_NAMES[r.type], _TYPE_NAMES[w.type]
            return f"at {here}: field {number} changed type ({w_type} written, {r_type} read)"
        if _is_repeated(r) != _is_repeated(w):
            return f"at {here}: field {number} changed between repeated and singular"
        if _is_required(r) and not _is_required(w):
            return f"at {here}: field {number} is required by the reader, optional for the writer"
        if r.type == FD.TYPE_MESSAGE:
            reason = _compare(_message_type(r), _message_type(w), here, seen)
            if reason is not None:
                return reason
    return None


def parse(raw: bytes) -> ProtobufSchema:
    try:
        body = json.loads(raw.decode("utf-8"))
        name = body["message"]
        encoded = base64.b64decode(body["descriptor_set"], validate=True)
        if not isinstance(name, str):
            raise TypeError("message is not a string")
    except (ValueError, UnicodeDecodeError, KeyError, TypeError, binascii.Error) as exc:
        raise InvalidSchema(
            'a Protobuf schema is {"message": NAME, "descriptor_set": BASE64}: ' + str(exc)[:200]
        ) from None
    try:
        files = descriptor_pb2.FileDescriptorSet.FromString(encoded)
    except message.DecodeError:
        raise InvalidSchema("descriptor_set is not a serialized FileDescriptorSet") from None
    pool = _pool(files)
    try:
        found = pool.FindMessageTypeByName(name)
    except KeyError:
        raise InvalidSchema(f"the descriptor set has no message {name!r}") from None
    return ProtobufSchema(found, message_factory.GetMessageClass(found))


def _pool(files: descriptor_pb2.FileDescriptorSet) -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.DescriptorPool()
    pending = {f.name: f for f in files.file}
    added: set[str] = set()
    while pending:
        ready = [f for f in pending.values() if all(d in added for d in f.dependency)]
        if not ready:
            missing = next(d for f in pending.values() for d in f.dependency if d not in added)
            if missing in pending or not _add_runtime_file(pool, missing):
                raise InvalidSchema(f"the descriptor set lacks {missing!r} (--include_imports)")
            added.add(missing)
            continue
        for f in ready:
            try:
                pool.Add(f)
            except (TypeError, ValueError, KeyError) as exc:
                raise InvalidSchema(f"bad descriptor {f.name!r}: {str(exc)[:200]}") from None
            added.add(f.name)
            del pending[f.name]
    return pool


def _add_runtime_file(pool: descriptor_pool.DescriptorPool, name: str) -> bool:
    try:
        known = descriptor_pool.Default().FindFileByName(name)
    except KeyError:
        return False
    proto = descriptor_pb2.FileDescriptorProto()
    known.CopyToProto(proto)
    for dependency in proto.dependency:
        _add_runtime_file(pool, dependency)
    pool.Add(proto)
    return True
