import stat
from pathlib import Path

import pytest

from policy.errors import KeyFileError, SessionInvalid
from policy.identity import Identity
from policy.sessions import (
    SessionTokens,
    load_or_create_secret,
    new_secret,
    session_secret_path,
)

IDENTITY = Identity(address="0x" + "ab" * 20, expires_at=1000.0, topics=frozenset({"t", "u"}))


def test_token_round_trips_until_expiry() -> None:
    tokens = SessionTokens(new_secret())
    token = tokens.issue(IDENTITY)
    assert tokens.check(token, now=999.0) == IDENTITY
    with pytest.raises(SessionInvalid, match="expired"):
        tokens.check(token, now=1000.0)


def test_unscoped_identity_round_trips() -> None:
    tokens = SessionTokens(new_secret())
    identity = Identity(address="0x" + "cd" * 20, expires_at=5.5, topics=None)
    assert tokens.check(tokens.issue(identity), now=0.0) == identity


def test_token_from_another_gateway_is_rejected() -> None:
    token = SessionTokens(new_secret()).issue(IDENTITY)
    with pytest.raises(SessionInvalid, match="not issued by this gateway"):
        SessionTokens(new_secret()).check(token, now=0.0)


def test_altered_token_is_rejected() -> None:
    tokens = SessionTokens(new_secret())
    payload, mac = tokens.issue(IDENTITY).split(".")
    forged_payload = (
        SessionTokens(new_secret())
        .issue(Identity(address="0x" + "ee" * 20, expires_at=1e12, topics=None))
        .split(".")[0]
    )
    with pytest.raises(SessionInvalid):
        tokens.check(f"{forged_payload}.{mac}", now=0.0)
    for garbage in ("", "a.b.c", "%%%.%%%", payload):
        with pytest.raises(SessionInvalid):
            tokens.check(garbage, now=0.0)


def test_short_secret_refused() -> None:
    with pytest.raises(ValueError):
        SessionTokens(b"short")


def test_the_secret_is_created_once_0600_and_kept(tmp_path: Path) -> None:
    path = session_secret_path(tmp_path)
    first = load_or_create_secret(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret(path) == first  # a restart reads the same secret
    token = SessionTokens(first).issue(IDENTITY)
    assert SessionTokens(load_or_create_secret(path)).check(token, now=999.0) == IDENTITY


def test_a_secret_file_others_can_read_or_garbage_is_refused(tmp_path: Path) -> None:
    path = session_secret_path(tmp_path)
    load_or_create_secret(path)
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_or_create_secret(path)
    path.write_text("not hex\n")
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match="delete it"):
        load_or_create_secret(path)
    assert len(load_or_create_secret(tmp_path / "new-dir" / "session.key")) == 32
    (tmp_path / "a-file").write_text("")
    with pytest.raises(KeyFileError, match="cannot create"):
        load_or_create_secret(tmp_path / "a-file" / "session.key")
