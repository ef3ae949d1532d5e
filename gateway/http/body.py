"""Reading a request body under the size cap and the body deadline (slow-loris protection).

Rules (enforced here, for every route that reads a body):
- a declared Content-Length over the cap is refused (BodyTooLarge, 413) before a byte is read;
- a body without one (chunked) is counted as it streams in and refused the moment it passes
  the cap: memory never holds more than the cap plus one chunk;
- the whole body must arrive within `timeout` of the first read (RequestTimeout, 408), so a
  client trickling a byte a second holds one handler for at most that long. Both errors
  close the connection (gateway.http.responses).
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from gateway.errors import InvalidRequest
from gateway.http.errors import BodyTooLarge, RequestTimeout

CHUNK = 64 * 1024


async def read_body(request: web.Request, limit: int, timeout: float) -> bytes:
    """The whole body. Raises BodyTooLarge or RequestTimeout."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise BodyTooLarge(f"body of {declared} bytes is over the limit of {limit}")
    parts: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            while chunk := await request.content.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge(f"body is over the limit of {limit} bytes")
                parts.append(chunk)
    except TimeoutError:
        raise RequestTimeout(f"body not received within {timeout:g}s") from None
    except (HttpProcessingError, ConnectionResetError) as exc:
        # A broken chunked encoding, a short body, or the client went away mid-body.
        raise InvalidRequest(f"body could not be read: {exc}") from exc
    return b"".join(parts)
