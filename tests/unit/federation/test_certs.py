from pathlib import Path

import pytest

from federation.certs import (
    create_ca,
    issue_gateway,
    load_identity,
    region_from_pem,
    verify_member_certificate,
)
from federation.errors import CertificateError


def test_issue_load_and_verify(tmp_path: Path) -> None:
    create_ca(tmp_path / "ca")
    issued = issue_gateway(tmp_path / "ca", "eu-west", tmp_path / "eu")
    loaded = load_identity(tmp_path / "eu")
    assert loaded == issued
    peer = verify_member_certificate(loaded.cert_pem, loaded.ca_pem)
    assert peer.region == "eu-west" == region_from_pem(loaded.cert_pem)
    assert peer.verify_key == loaded.verify_key  # the CA vouches for the signing key


def test_foreign_ca_and_mismatched_key_are_refused(tmp_path: Path) -> None:
    create_ca(tmp_path / "ca")
    create_ca(tmp_path / "other")
    ours = issue_gateway(tmp_path / "ca", "eu", tmp_path / "eu")
    theirs = issue_gateway(tmp_path / "other", "eu", tmp_path / "x")
    with pytest.raises(CertificateError, match="not issued"):
        verify_member_certificate(theirs.cert_pem, ours.ca_pem)
    (tmp_path / "eu" / "signing.key").write_text(theirs.signing_seed.hex())
    with pytest.raises(CertificateError, match="does not match"):
        load_identity(tmp_path / "eu")
    with pytest.raises(CertificateError, match="already exists"):
        create_ca(tmp_path / "ca")
    with pytest.raises(CertificateError):
        issue_gateway(tmp_path / "ca", "bad region", tmp_path / "y")
