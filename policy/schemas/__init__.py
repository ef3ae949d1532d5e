"""Schemas per topic and CloudEvents type (issue 16): pure core, no I/O.

The documents live on chain (addSchema); the grant view hands each gateway the versions in
chain order with the mode in force when each was added. This package decides:

- `model`: formats, compatibility modes, the xRegistry-shaped URIs (`dataschema` values);
- `json_schema`, `avro`, `protobuf`: parse a document, validate a `Payload`, and
  `reads(writer)`, the per-format compatibility check (`json_compat` is JSON Schema's);
- `compatibility.judge`: which versions are accepted, each refusal with its reason;
- `selection`: which accepted version an event is validated against, and the validation.

Errors: policy/schemas/errors.py (all SchemaError, INVALID_ARGUMENT at the gateway).
"""
