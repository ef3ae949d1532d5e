"""What a CloudEvent is, once: attributes and their types, string forms, filters, SDK mapping.

Below `gateway` and `federation`; imports only `proto` and third-party libraries.

- `eventmodel.attributes`: names, the CloudEvents v1.0 type system, the canonical string form
  of every value, and `validate` (every door calls it).
- `eventmodel.filters`: the Subscriptions API filter dialects, matching, limits, JSON form.
- `eventmodel.filter_codec`: filters <-> protobuf `meshgate.v1.Filter`.
- `eventmodel.sdk`: the SDK's CloudEvent <-> protobuf `io.cloudevents.v1.CloudEvent`.
- `eventmodel.merkle`: RFC 9162 Merkle trees (federation batches, publisher batches).
- `eventmodel.provenance`: publisher-signed events (sign a batch, verify one event).
- `eventmodel.errors`: what they raise.
"""
