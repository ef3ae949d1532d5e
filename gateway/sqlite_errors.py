"""SQLite failures named as store errors: the one translation, so raw sqlite3 errors never leave
the SQLite store.

- SQLITE_FULL (disk or database full), or ENOSPC -> StoreFull ("store full: ...").
- I/O, busy, locked, read-only, cannot-open, out of memory -> StoreUnavailable: they pass.
- anything else (a bug, a corrupt file) -> StoreError, which status.py sends as INTERNAL.
"""

from __future__ import annotations

import errno
import sqlite3

from gateway.errors import StoreError, StoreFull, StoreUnavailable

# Primary result codes of failures that pass (space, I/O, locks), not bugs.
_TRANSIENT = {
    sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_BUSY,
    sqlite3.SQLITE_LOCKED,
    sqlite3.SQLITE_READONLY,
    sqlite3.SQLITE_CANTOPEN,
    sqlite3.SQLITE_NOMEM,
    sqlite3.SQLITE_PROTOCOL,
}


def store_error(exc: BaseException, what: str) -> StoreError:
    """The store error for a failure of `what` ("write", "read", ...): see the module doc."""
    if isinstance(exc, StoreError):
        return exc
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    if primary == sqlite3.SQLITE_FULL or (isinstance(exc, OSError) and exc.errno == errno.ENOSPC):
        return StoreFull(f"store full: {exc}")
    if primary in _TRANSIENT or isinstance(exc, OSError):
        return StoreUnavailable(f"store {what} failed: {exc}")
    return StoreError(f"store {what} failed: {exc}")
