"""Where an owner's key sets go and come from: a gateway's PutKeySet / GetKeySets (issue 12).

`KeySetPort` is what meshgate/key_custody.py needs; `GatewayKeySets` is it over one gateway's
client API (synchronous gRPC: the CLI makes one call at a time). A gateway takes a key set only
once the chain recorded it, then floods it to the mesh; it holds only sealed keys.
"""

from __future__ import annotations

from typing import Protocol

import grpc

from meshgate.errors import KeyCustodyError
from proto import gateway_pb2, gateway_pb2_grpc


class KeySetPort(Protocol):
    """Where key sets are delivered and fetched (a gateway's PutKeySet / GetKeySets)."""

    def put(self, topic: str, document: bytes, signature: bytes) -> int: ...

    def get(self, topic: str, from_epoch: int = 0) -> list[tuple[bytes, bytes]]: ...


class GatewayKeySets:
    """`KeySetPort` over a gateway's client API (synchronous gRPC; the CLI's one call each).

    Raises KeyCustodyError naming the gateway and its status for every RPC failure."""

    def __init__(self, target: str, *, timeout: float = 30.0) -> None:
        self.target = target
        self.timeout = timeout
        self._channel = grpc.insecure_channel(target)
        self._stub = gateway_pb2_grpc.GatewayStub(self._channel)

    def __enter__(self) -> GatewayKeySets:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def check_reachable(self, timeout: float = 5.0) -> None:
        """Raise KeyCustodyError unless the gateway answers within `timeout`: checked before an
        owner's transactions, so an epoch is not recorded on chain for a gateway that is down."""
        try:
            grpc.channel_ready_future(self._channel).result(timeout=timeout)
        except grpc.FutureTimeoutError as exc:
            raise KeyCustodyError(
                f"gateway {self.target} does not answer (in {timeout:.0f}s): no key set could be "
                "delivered, so nothing was sent"
            ) from exc

    def put(self, topic: str, document: bytes, signature: bytes) -> int:
        request = gateway_pb2.PutKeySetRequest(
            topic=topic, key_set=gateway_pb2.KeySet(document=document, signature=signature)
        )
        try:
            response = self._stub.PutKeySet(request, timeout=self.timeout, wait_for_ready=True)
        except grpc.RpcError as exc:
            raise KeyCustodyError(
                f"gateway {self.target} refused the key set: {_rpc(exc)}"
            ) from exc
        return int(response.epoch)

    def get(self, topic: str, from_epoch: int = 0) -> list[tuple[bytes, bytes]]:
        request = gateway_pb2.GetKeySetsRequest(topic=topic, from_epoch=from_epoch)
        try:
            response = self._stub.GetKeySets(request, timeout=self.timeout, wait_for_ready=True)
        except grpc.RpcError as exc:
            raise KeyCustodyError(
                f"cannot fetch key sets of {topic!r} from {self.target}: {_rpc(exc)}"
            ) from exc
        return [(bytes(k.document), bytes(k.signature)) for k in response.key_sets]


def _rpc(exc: grpc.RpcError) -> str:
    code = exc.code().name if hasattr(exc, "code") and exc.code() is not None else "RPC_ERROR"
    details = exc.details() if hasattr(exc, "details") else str(exc)
    return f"{code}: {details}"


def target_of(port: KeySetPort) -> str:
    """The gateway a port reaches, for error messages."""
    return str(getattr(port, "target", "?"))
