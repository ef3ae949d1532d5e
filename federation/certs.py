"""The federation's identities: a CA, and per region a TLS certificate bound to a signing key.

A gateway certificate names its region three ways (subject CN, SAN DNS `<region>.meshgate`, SAN
URI `meshgate://region/<region>`) and carries the region's Ed25519 event-signing public key in a
private X.509 extension, so the CA's signature vouches for both at once. Peers learn each other's
signing keys from certificates gossiped in `Members`, never from an unsigned claim.

Files of a CA directory: `ca.pem`, `ca.key`. Files of a gateway directory: `ca.pem`,
`gateway.pem`, `gateway.key` (TLS, PEM) and `signing.key` (32-byte Ed25519 seed, hex).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from nacl.signing import SigningKey

from federation.errors import CertificateError
from federation.messages import Member

# A private-arc OID for "Ed25519 event-signing public key of this region" (raw 32 bytes).
SIGNING_KEY_OID = x509.ObjectIdentifier("1.3.6.1.4.1.59999.7.1")
REGION_URI_PREFIX = "meshgate://region/"
DNS_SUFFIX = ".meshgate"
CA_VALIDITY = dt.timedelta(days=3650)
GATEWAY_VALIDITY = dt.timedelta(days=825)

CA_CERT = "ca.pem"
CA_KEY = "ca.key"
GATEWAY_CERT = "gateway.pem"
GATEWAY_KEY = "gateway.key"
SIGNING_KEY = "signing.key"


def region_hostname(region: str) -> str:
    """The TLS name a gateway of `region` must present (dialers pin it via target override)."""
    return f"{region}{DNS_SUFFIX}"


@dataclass(frozen=True)
class Identity:
    """What a gateway needs to take part: TLS material and its event-signing key."""

    region: str
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes
    signing_seed: bytes

    @property
    def verify_key(self) -> bytes:
        return bytes(SigningKey(self.signing_seed).verify_key)


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.write_bytes(data)
    if private:
        path.chmod(0o600)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def create_ca(out_dir: Path, name: str = "meshgate federation CA") -> Path:
    """Create a CA in `out_dir` (created if missing). Raises CertificateError if one exists."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if (out_dir / CA_CERT).exists() or (out_dir / CA_KEY).exists():
        raise CertificateError(f"a CA already exists in {out_dir}")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(out_dir / CA_CERT, cert.public_bytes(serialization.Encoding.PEM))
    _write(out_dir / CA_KEY, _pem_key(key), private=True)
    return out_dir / CA_CERT


def _load_ca(ca_dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    try:
        cert = x509.load_pem_x509_certificate((ca_dir / CA_CERT).read_bytes())
        key = serialization.load_pem_private_key((ca_dir / CA_KEY).read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise CertificateError(f"cannot load the CA from {ca_dir}: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertificateError(f"the CA key in {ca_dir} is not an EC key")
    return cert, key


def issue_gateway(
    ca_dir: Path,
    region: str,
    out_dir: Path,
    hosts: tuple[str, ...] = ("127.0.0.1", "localhost"),
) -> Identity:
    """Issue `region`'s TLS certificate and Ed25519 signing key into `out_dir`.

    `hosts` become extra SANs (IP addresses or DNS names) so seed addresses verify by name too.
    """
    if not region or not all(c.isalnum() or c in "-_" for c in region):
        raise CertificateError(f"invalid region name: {region!r}")
    ca_cert, ca_key = _load_ca(ca_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tls_key = ec.generate_private_key(ec.SECP256R1())
    signing = SigningKey.generate()
    sans: list[x509.GeneralName] = [
        x509.DNSName(region_hostname(region)),
        x509.UniformResourceIdentifier(REGION_URI_PREFIX + region),
    ]
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, region)]))
        .issuer_name(ca_cert.subject)
        .public_key(tls_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + GATEWAY_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.UnrecognizedExtension(SIGNING_KEY_OID, bytes(signing.verify_key)), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    identity = Identity(
        region=region,
        ca_pem=ca_cert.public_bytes(serialization.Encoding.PEM),
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=_pem_key(tls_key),
        signing_seed=bytes(signing),
    )
    _write(out_dir / CA_CERT, identity.ca_pem)
    _write(out_dir / GATEWAY_CERT, identity.cert_pem)
    _write(out_dir / GATEWAY_KEY, identity.key_pem, private=True)
    _write(out_dir / SIGNING_KEY, identity.signing_seed.hex().encode(), private=True)
    return identity


def load_identity(tls_dir: Path) -> Identity:
    """Load a gateway directory written by `issue_gateway`; checks the files belong together."""
    try:
        ca_pem = (tls_dir / CA_CERT).read_bytes()
        cert_pem = (tls_dir / GATEWAY_CERT).read_bytes()
        key_pem = (tls_dir / GATEWAY_KEY).read_bytes()
        seed = bytes.fromhex((tls_dir / SIGNING_KEY).read_text().strip())
    except (OSError, ValueError) as exc:
        raise CertificateError(f"cannot load the gateway identity from {tls_dir}: {exc}") from exc
    if len(seed) != 32:
        raise CertificateError(f"{tls_dir / SIGNING_KEY} is not a 32-byte Ed25519 seed")
    peer = verify_member_certificate(cert_pem, ca_pem)
    if peer.verify_key != bytes(SigningKey(seed).verify_key):
        raise CertificateError(f"{SIGNING_KEY} does not match the key bound into {GATEWAY_CERT}")
    return Identity(peer.region, ca_pem, cert_pem, key_pem, seed)


@dataclass(frozen=True)
class PeerIdentity:
    """What a CA-signed certificate says about a region."""

    region: str
    verify_key: bytes


def verify_member_certificate(cert_pem: bytes, ca_pem: bytes) -> PeerIdentity:
    """Check `cert_pem` was issued by the CA in `ca_pem` and is valid now; return what it binds.

    Raises CertificateError when it is malformed, expired, foreign, or lacks region or key.
    """
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        ca = x509.load_pem_x509_certificate(ca_pem)
    except ValueError as exc:
        raise CertificateError(f"malformed certificate: {exc}") from exc
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise CertificateError("certificate not issued by the federation CA") from exc
    now = dt.datetime.now(dt.UTC)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise CertificateError("certificate expired or not yet valid")
    return PeerIdentity(region=certificate_region(cert), verify_key=_signing_key(cert))


def verified_members(
    members: Sequence[Member], *, ca_pem: bytes, local: str
) -> tuple[list[tuple[Member, bytes]], list[str]]:
    """Gossiped members whose certificate our CA issued for the region they claim, each with its
    signing key; and one line per member refused. Our own region is skipped."""
    ok: list[tuple[Member, bytes]] = []
    refused: list[str] = []
    for m in members:
        if m.region == local:
            continue
        try:
            ident = verify_member_certificate(m.certificate_pem, ca_pem)
        except CertificateError as exc:
            refused.append(f"ignoring member {m.region}: {exc}")
            continue
        if ident.region != m.region:
            refused.append(f"ignoring member {m.region}: certificate names {ident.region}")
            continue
        ok.append((m, ident.verify_key))
    return ok, refused


def certificate_region(cert: x509.Certificate) -> str:
    """The region a certificate names; the SAN URI, CN and DNS name must agree."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound as exc:
        raise CertificateError("certificate has no subject alternative names") from exc
    uris = [u for u in san.get_values_for_type(x509.UniformResourceIdentifier)]
    regions = [u[len(REGION_URI_PREFIX) :] for u in uris if u.startswith(REGION_URI_PREFIX)]
    if len(regions) != 1:
        raise CertificateError("certificate must name exactly one meshgate region")
    region = regions[0]
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not cns or cns[0].value != region:
        raise CertificateError("certificate CN does not match its region")
    if region_hostname(region) not in san.get_values_for_type(x509.DNSName):
        raise CertificateError("certificate lacks the region's DNS name")
    return region


def region_from_pem(cert_pem: bytes) -> str:
    """The region of a PEM certificate that TLS already verified against our CA."""
    try:
        return certificate_region(x509.load_pem_x509_certificate(cert_pem))
    except ValueError as exc:
        raise CertificateError(f"malformed certificate: {exc}") from exc


def _signing_key(cert: x509.Certificate) -> bytes:
    try:
        ext = cert.extensions.get_extension_for_oid(SIGNING_KEY_OID).value
    except x509.ExtensionNotFound as exc:
        raise CertificateError("certificate carries no event-signing key") from exc
    assert isinstance(ext, x509.UnrecognizedExtension)
    if len(ext.value) != 32:
        raise CertificateError("event-signing key in certificate is not 32 bytes")
    return bytes(ext.value)
