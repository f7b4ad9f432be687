"""keyturn.keys.der: the DER walk finds the cipher of an encrypted PKCS#8 key and answers anything
else, however broken, with ValueError (never IndexError or a wrong OID)."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyturn.keys.der import der_tlv, pkcs8_cipher_oid
from keyturn.keys.material import KeyMaterial
from keyturn.keys.pem import private_pem
from unit.keys.support import PASSPHRASE

# DER content of OID 2.16.840.1.101.3.4.1.42 (aes256-CBC), as RFC 3565 defines it.
AES256_CBC = bytes([2 * 40 + 16, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 42])


def der_of(pem: str) -> bytes:
    return base64.b64decode("".join(line for line in pem.splitlines() if not line.startswith("-----")))


@pytest.fixture(scope="module")
def encrypted(keys: Callable[[str], KeyMaterial]) -> bytes:
    return der_of(private_pem(keys("ES256"), PASSPHRASE))


def test_the_cipher_of_an_encrypted_key_is_found(encrypted: bytes) -> None:
    assert pkcs8_cipher_oid(encrypted) == AES256_CBC


def test_an_unencrypted_key_is_refused(keys: Callable[[str], KeyMaterial]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - PrivateKeyInfo has no algorithm where PBES2 sits
        pkcs8_cipher_oid(der_of(private_pem(keys("ES256"))))


def test_another_encryption_scheme_is_not_pbes2() -> None:
    other_oid = b"\x06\x03\x2a\x03\x04"
    algorithm = b"\x30" + bytes([len(other_oid)]) + other_oid
    with pytest.raises(ValueError, match="not PBES2"):
        pkcs8_cipher_oid(b"\x30" + bytes([len(algorithm)]) + algorithm)


def test_every_truncation_is_a_value_error(encrypted: bytes) -> None:
    for cut in range(len(encrypted)):
        with pytest.raises(ValueError):  # noqa: PT011 - several messages, the type is the point
            pkcs8_cipher_oid(encrypted[:cut])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"\x30", "truncated", id="a tag without a length"),
        pytest.param(b"\x30\x80", "unsupported DER length", id="indefinite length (BER, not DER)"),
        pytest.param(b"\x30\x85\x01\x00\x00\x00\x00", "unsupported DER length", id="a length of five bytes"),
        pytest.param(b"\x30\x82\x01", "unsupported DER length", id="a long length cut short"),
        pytest.param(b"\x30\x05\x00", "truncated", id="content shorter than its length"),
    ],
)
def test_malformed_lengths_are_named(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        der_tlv(data)


def test_a_tlv_and_the_position_after_it() -> None:
    assert der_tlv(b"\x04\x02ab\x05\x00") == (0x04, b"ab", 4)
    assert der_tlv(b"\x04\x02ab\x05\x00", 4) == (0x05, b"", 6)
    assert der_tlv(b"\x04\x81\x03abc") == (0x04, b"abc", 6)


@given(st.binary(max_size=200))
def test_any_bytes_give_an_oid_or_a_value_error(data: bytes) -> None:
    try:
        oid = pkcs8_cipher_oid(data)
    except ValueError:
        return
    assert isinstance(oid, bytes)
