"""GetKeySets and PutKeySet (proto/gateway.proto): pb2 in and out of `GatewayKeySets`.

`GatewayService` calls these under gateway/status.py's wrapper, so every error becomes its
status there. No credentials: key sets hold only sealed keys and are valid by the chain and
the owner's signature (gateway/key_sets.py), so anyone may fetch or deliver one. An open
gateway (no registry) has no encrypted topics: RegistryNotConfigured (FAILED_PRECONDITION).
"""

from __future__ import annotations

from gateway.errors import RegistryNotConfigured
from gateway.key_sets import GatewayKeySets
from proto import gateway_pb2

OPEN = "this gateway runs without a registry: it has no encrypted topics or key sets"


def _served(key_sets: GatewayKeySets | None) -> GatewayKeySets:
    if key_sets is None:
        raise RegistryNotConfigured(OPEN)
    return key_sets


def get_key_sets(
    key_sets: GatewayKeySets | None, request: gateway_pb2.GetKeySetsRequest
) -> gateway_pb2.GetKeySetsResponse:
    held, current = _served(key_sets).get(request.topic, request.from_epoch)
    return gateway_pb2.GetKeySetsResponse(
        key_sets=[gateway_pb2.KeySet(document=s.document, signature=s.signature) for s in held],
        current_epoch=current,
    )


async def put_key_set(
    key_sets: GatewayKeySets | None, request: gateway_pb2.PutKeySetRequest
) -> gateway_pb2.PutKeySetResponse:
    held = await _served(key_sets).put(
        request.topic, request.key_set.document, request.key_set.signature
    )
    return gateway_pb2.PutKeySetResponse(epoch=held.epoch)
