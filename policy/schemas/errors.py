"""Errors of the schema registry core (policy/schemas).

Tree (gateway/status.py maps SchemaError to INVALID_ARGUMENT: every one is the caller's to fix)::

    PolicyError (policy/errors.py)
    └── SchemaError
        ├── InvalidSchema        a schema document does not parse in its format
        ├── Incompatible         a new version breaks the topic's compatibility mode (has a reason)
        ├── UnknownSchemaVersion dataschema names a version that is not there or not accepted
        └── DataInvalid          an event's data does not match its schema (names the path)
"""

from __future__ import annotations

from policy.errors import PolicyError


class SchemaError(PolicyError):
    """Base of every schema error."""


class InvalidSchema(SchemaError):
    pass


class Incompatible(SchemaError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnknownSchemaVersion(SchemaError):
    pass


class DataInvalid(SchemaError):
    """`path` is where the data fails ("/items/0/qty", "field 3 (qty)"; "" for the root)."""

    def __init__(self, path: str, detail: str, context: str = "") -> None:
        super().__init__(f"{context}at {path or '/'}: {detail}")
        self.path = path
        self.detail = detail
