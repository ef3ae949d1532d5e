"""The structured-mode JSON form of an event (CloudEvents JSON format, v1.0), for printing.

Renders attribute values in their canonical string form (eventmodel/attributes.py): `time` and
other timestamps as RFC 3339 UTC with as few fraction digits as the value needs, Binary as
Base64. Data: bytes -> `data_base64`; anything else -> `data` as the JSON value it is (a str
stays a JSON string, whatever the content type). With `eventmodel.sdk.from_pb` keeping data's
type, `meshgate subscribe` prints an event as it was published.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

from cloudevents.core.v1.event import CloudEvent

from eventmodel.attributes import datetime_string


def _attribute(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return datetime_string(value)
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    return value


def structured(event: CloudEvent) -> dict[str, Any]:
    """The event as the JSON format's object (attributes, then `data` / `data_base64`)."""
    out = {name: _attribute(v) for name, v in event.get_attributes().items() if v is not None}
    data = event.get_data()
    if isinstance(data, bytes | bytearray):
        out["data_base64"] = base64.b64encode(data).decode("ascii")
    elif data is not None:
        out["data"] = data
    return out


def to_json(event: CloudEvent) -> str:
    """One line of JSON (no trailing newline)."""
    return json.dumps(structured(event))
