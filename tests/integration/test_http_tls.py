"""The HTTP edge over TLS (--http-tls-cert/--http-tls-key), and its start-up errors in one line:
a real Gateway in process, a self-signed certificate, a real HTTPS client."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import ssl
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.app import Gateway
from gateway.config import GatewayConfig
from gateway.errors import ConfigError
from gateway.http.config import HttpConfig
from gateway.memory_store import MemoryEventStore


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "http.crt", tmp_path / "http.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_publish_over_https(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    http = HttpConfig(tls_cert=cert, tls_key=key)
    config = GatewayConfig(region="eu", data_dir=tmp_path)
    async with Gateway(config, http=http, store=MemoryEventStore()) as gw:
        assert gw.http is not None and gw.http.url.startswith("https://")
        trust = ssl.create_default_context(cafile=str(cert))
        event = {"specversion": "1.0", "id": "1", "source": "/tls", "type": "t"}
        headers = {"Content-Type": "application/cloudevents+json"}
        async with aiohttp.ClientSession() as session:
            url = f"{gw.http.url}/topics/tls/events"
            async with session.post(url, data=json.dumps(event), headers=headers, ssl=trust) as r:
                assert r.status == 200
                assert (await r.json())["results"][0]["offset"] == 0
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await session.post(url, data=json.dumps(event), headers=headers)  # untrusted


async def test_start_up_errors_are_one_line(tmp_path: Path) -> None:
    config = GatewayConfig(region="eu", data_dir=tmp_path)
    missing = HttpConfig(tls_cert=tmp_path / "no.crt", tls_key=tmp_path / "no.key")
    with pytest.raises(ConfigError, match="cannot load the HTTP TLS certificate"):
        async with Gateway(config, http=missing, store=MemoryEventStore()):
            pass
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = HttpConfig(port=taken.getsockname()[1])
        with pytest.raises(ConfigError, match=r"cannot listen for HTTP on 127\.0\.0\.1:"):
            async with Gateway(config, http=busy, store=MemoryEventStore()):
                pass
