"""sasigner/legacy.py: the old public keys (sa.pub), excluded from OIDC discovery, with kube's kids."""

from __future__ import annotations

import base64
import datetime
import hashlib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from keyturn.sasigner.errors import LegacyKeyRefused
from keyturn.sasigner.legacy import kube_key_id, load_file, load_files

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP384R1())


def public_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def der(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def certificate_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sa")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def test_the_kid_is_kube_apiservers_sha256_of_the_pkix_der() -> None:
    """keyIDFromPublicKey: base64.RawURLEncoding(sha256(x509.MarshalPKIXPublicKey(key)));
    the integration test checks it against a token the real apiserver signed from its key file."""
    expected = base64.urlsafe_b64encode(hashlib.sha256(der(RSA_KEY)).digest()).rstrip(b"=").decode()
    assert kube_key_id(der(RSA_KEY)) == expected
    assert len(expected) == 43


def test_an_sa_pub_is_a_verify_only_key_excluded_from_discovery(tmp_path: Path) -> None:
    path = tmp_path / "sa.pub"
    path.write_bytes(public_pem(RSA_KEY))
    (key,) = load_file(path)
    assert key.kid == kube_key_id(der(RSA_KEY))
    assert key.der == der(RSA_KEY)
    assert key.exclude_from_oidc_discovery


def test_every_block_of_a_file_and_certificates_count(tmp_path: Path) -> None:
    path = tmp_path / "keys.pem"
    path.write_bytes(b"comment\n" + public_pem(RSA_KEY) + certificate_pem(EC_KEY) + public_pem(EC_KEY))
    keys = load_file(path)
    assert [k.der for k in keys] == [der(RSA_KEY), der(EC_KEY), der(EC_KEY)]
    assert [k.kid for k in load_files([path, path])] == [kube_key_id(der(RSA_KEY)), kube_key_id(der(EC_KEY))]


def test_an_rsa_public_key_block_is_read(tmp_path: Path) -> None:
    path = tmp_path / "pkcs1.pub"
    path.write_bytes(
        RSA_KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
    )
    assert load_file(path)[0].der == der(RSA_KEY)


PRIVATE_PEM = RSA_KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
)
SMALL_RSA = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - refused on purpose
ED25519_PUBLIC = (
    ed25519.Ed25519PrivateKey.generate()
    .public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(PRIVATE_PEM, "holds a private key", id="sa.key instead of sa.pub"),
        pytest.param(public_pem(SMALL_RSA), "1024 bits is too small", id="RSA-1024"),
        pytest.param(ED25519_PUBLIC, "not an RSA or ECDSA", id="Ed25519"),
        pytest.param(b"", "no PEM public key", id="empty"),
        pytest.param(b"\x00\xff garbage", "no PEM public key", id="garbage"),
        pytest.param(
            b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            "does not load",
            id="damaged block",
        ),
        pytest.param(
            b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
            "not a public key",
            id="another PEM kind",
        ),
        pytest.param(b"-" * (1024 * 1024 + 1), "larger than", id="too large"),
        pytest.param(
            b"-----BEGIN PUBLIC KEY-----\nMAswBQYDKgMEAwIAAQ==\n-----END PUBLIC KEY-----\n",
            "does not load",
            id="a key type cryptography does not know (OID 1.2.3.4)",
        ),
        pytest.param(b"-----BEGIN A-----\n" * 58000, "no PEM public key", id="a megabyte of unclosed BEGINs"),
    ],
)
def test_a_file_that_is_not_a_usable_public_key_is_refused(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "sa.pub"
    path.write_bytes(content)
    with pytest.raises(LegacyKeyRefused, match=message) as raised:
        load_file(path)
    assert str(raised.value).startswith(f"--legacy-public-key {path}")
    assert "MII" not in str(raised.value)  # no key bytes quoted


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LegacyKeyRefused, match="cannot be read"):
        load_file(tmp_path / "absent.pub")
