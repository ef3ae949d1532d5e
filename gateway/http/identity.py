"""Identity over HTTP: `GET /signin/nonce`, `POST /signin`, and `Authorization: Bearer <token>`.

The same Sign-In with Ethereum flow as the gRPC GetNonce / SignIn RPCs, through the same
`AccessControl` calls (so the same checks and the same audit entries):

    GET  /signin/nonce  -> {"nonce", "domain", "uri", "chain_id", "expires_at", "registry"}
    POST /signin  {"message": "<EIP-4361 text>", "signature": "0x<65 bytes hex>"}
                        -> {"session_token", "address", "expires_at"}

`registry` is the registry address publishers sign their events for (eventmodel/provenance.py),
as gRPC GetNonce answers it; "" on an open gateway.

Every other route authenticates with `authenticate(request)`: the bearer token becomes
`Credentials(session_token=...)`; no Authorization header means no credentials (an open gateway
lets them in; a registry-backed one answers 401 "no credentials"). Another scheme is 401 too.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from aiohttp import web

from gateway.access import Credentials, Identity
from gateway.errors import InvalidRequest
from gateway.http.body import read_body
from gateway.http.parts import HttpParts, parts_of
from gateway.http.responses import json_response
from policy.errors import Unauthenticated

SIGNIN_BODY_LIMIT = 64 * 1024  # an EIP-4361 message is a few hundred bytes


def bearer_credentials(authorization: str | None) -> Credentials | None:
    """`Authorization` header value -> session-token credentials (None: none sent)."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("Authorization must be 'Bearer <session token>' (POST /signin)")
    return Credentials(session_token=token)


async def authenticate(request: web.Request) -> Identity:
    """The caller of `request`, by the gateway's AccessControl (raises its errors)."""
    credentials = bearer_credentials(request.headers.get("Authorization"))
    return await parts_of(request).access.authenticate(credentials)


def _timestamp(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def parse_signature(text: Any) -> bytes:
    if not isinstance(text, str):
        raise InvalidRequest("signature must be a 0x-prefixed hex string")
    hex_part = text[2:] if text[:2].lower() == "0x" else text
    try:
        return bytes.fromhex(hex_part)
    except ValueError:
        raise InvalidRequest("signature must be a 0x-prefixed hex string") from None


def parse_signin(body: bytes) -> tuple[str, bytes]:
    """`{"message", "signature"}` -> (message, signature bytes). Raises InvalidRequest."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"sign-in body is not JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("message"), str):
        raise InvalidRequest('sign-in body must be {"message": "...", "signature": "0x..."}')
    return doc["message"], parse_signature(doc.get("signature"))


async def get_nonce(request: web.Request) -> web.Response:
    parts = parts_of(request)
    challenge = await parts.access.get_nonce()
    registry = parts.publishers.binding.registry_hex if parts.publishers is not None else ""
    return json_response(
        {
            "nonce": challenge.nonce,
            "domain": challenge.domain,
            "uri": challenge.uri,
            "chain_id": challenge.chain_id,
            "expires_at": _timestamp(challenge.expires_at),
            "registry": registry,
        }
    )


async def sign_in(request: web.Request) -> web.Response:
    parts = parts_of(request)
    body = await read_body(request, SIGNIN_BODY_LIMIT, parts.http.body_timeout)
    message, signature = parse_signin(body)
    session = await parts.access.sign_in(message, signature)
    return json_response(
        {
            "session_token": session.token,
            "address": session.address,
            "expires_at": _timestamp(session.expires_at),
        }
    )


def add_routes(app: web.Application, parts: HttpParts) -> None:
    app.router.add_get("/signin/nonce", get_nonce)
    app.router.add_post("/signin", sign_in)
