"""Small pure parts of the HTTP edge: config, bearer tokens, sign-in bodies, SSE positions, the
status column, and the [http] settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventmodel.attributes import PbEvent
from eventmodel.errors import InvalidEvent, InvalidFilter
from gateway.access import Credentials
from gateway.errors import ConfigError, InvalidRequest, StoreFull, TopicNotFound
from gateway.http.config import HttpConfig
from gateway.http.errors import BodyTooLarge, RequestTimeout, UnsupportedMediaType
from gateway.http.identity import bearer_credentials, parse_signin
from gateway.http.sse import message, parse_filters, start_position
from gateway.status import http_status_for
from gateway.wire import Start
from meshgate.config_file import read_config_file
from meshgate.errors import SettingsError
from meshgate.settings import resolve
from policy.errors import AccessDenied, AccessPaused, CredentialsMissing, Unauthenticated


def test_config_checks() -> None:
    assert HttpConfig().listen == "127.0.0.1:0" and not HttpConfig().tls
    with pytest.raises(ConfigError, match="both"):
        HttpConfig(tls_cert=Path("c.pem"))
    with pytest.raises(ConfigError, match="body_timeout"):
        HttpConfig(body_timeout=0)


def test_bearer_tokens() -> None:
    assert bearer_credentials(None) is None
    assert bearer_credentials("Bearer abc") == Credentials(session_token="abc")
    assert bearer_credentials("bearer  abc ") == Credentials(session_token="abc")
    for bad in ("Basic dXNlcg==", "Bearer", ""):
        with pytest.raises(Unauthenticated):
            bearer_credentials(bad)


def test_signin_body() -> None:
    assert parse_signin(b'{"message": "m", "signature": "0x0a0b"}') == ("m", b"\x0a\x0b")
    for bad in (b"{", b"[]", b'{"message": "m", "signature": "0xzz"}', b'{"signature": "0x"}'):
        with pytest.raises(InvalidRequest):
            parse_signin(bad)


def test_sse_start_positions() -> None:
    assert start_position({}, None) == Start("earliest")
    assert start_position({"from": "latest"}, None) == Start("latest")
    assert start_position({"from": "7"}, None) == Start("offset", offset=7)
    assert start_position({"from": "latest"}, "41") == Start("offset", offset=42)
    for query, last in (({"from": "-1"}, None), ({}, "x")):
        with pytest.raises(InvalidRequest):
            start_position(query, last)


def test_sse_filters_and_messages() -> None:
    assert len(parse_filters('{"exact": {"type": "t"}}')) == 1
    assert len(parse_filters('[{"prefix": {"type": "a"}}, {"suffix": {"type": "b"}}]')) == 2
    with pytest.raises(InvalidRequest):
        parse_filters("{")
    with pytest.raises(InvalidFilter):
        parse_filters('{"nope": 1}')
    pb = PbEvent(id="1", source="/s", spec_version="1.0", type="t", text_data="a\nb")
    frame = message(5, pb.SerializeToString())
    assert frame.startswith(b"id: 5\ndata: {") and frame.endswith(b"}\n\n")
    assert frame.count(b"\n") == 3  # a newline in data never splits the message


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (InvalidEvent("x"), 400),
        (InvalidRequest("x"), 400),
        (BodyTooLarge("x"), 413),
        (UnsupportedMediaType("x"), 415),
        (RequestTimeout("x"), 408),
        (TopicNotFound("x"), 404),
        (CredentialsMissing("x"), 401),
        (AccessDenied("r", "d"), 403),
        (AccessPaused("r", "d"), 503),
        (StoreFull("x"), 507),
        (RuntimeError("x"), None),
    ],
)
def test_http_statuses_come_from_the_one_table(exc: Exception, status: int | None) -> None:
    assert http_status_for(exc) == status


def test_http_settings_from_flags_and_file(tmp_path: Path) -> None:
    base = {"region": "eu", "data": tmp_path, "open": True}
    assert resolve(base, {}, None).http is None
    on = resolve({**base, "http_listen": "0.0.0.0:8080"}, {}, None).http
    assert on is not None and (on.host, on.port) == ("0.0.0.0", 8080)
    path = tmp_path / "g.toml"
    path.write_text("[http]\nlisten = '127.0.0.1:0'\nbody_timeout = '500ms'\nmax_body_bytes = 10\n")
    got = resolve(base, {}, read_config_file(path)).http
    assert got is not None and got.body_timeout == 0.5 and got.max_body_bytes == 10
    flagged = resolve({**base, "http_listen": "127.0.0.1:9"}, {}, read_config_file(path)).http
    assert flagged is not None and flagged.port == 9 and flagged.max_body_bytes == 10
    path.write_text("[http]\nheartbeat = 1\n")
    with pytest.raises(SettingsError, match="--http-listen"):
        resolve(base, {}, read_config_file(path))
    path.write_text("[http]\nlisten = '127.0.0.1:0'\nbogus = 1\n")
    with pytest.raises(SettingsError, match="unknown keys"):
        read_config_file(path)
