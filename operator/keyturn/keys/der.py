"""The minimal DER walk that reads which cipher encrypted a PKCS#8 key.

Hand-written because neither `cryptography` nor PyJWT exposes the cipher of an
EncryptedPrivateKeyInfo, and `pem.private_pem` must prove it is AES-256 on the bytes it returns.
It reads only what that takes and fails with ValueError on anything else.
"""

from __future__ import annotations

from typing import Final

__all__ = ["der_tlv", "pkcs8_cipher_oid"]

# DER of OID 1.2.840.113549.1.5.13 (PBES2, RFC 8018).
_OID_PBES2: Final = bytes.fromhex("2a864886f70d01050d")


def der_tlv(data: bytes, pos: int = 0) -> tuple[int, bytes, int]:
    """Read one DER TLV at pos: (tag, content, next position)."""
    if pos + 2 > len(data):
        raise ValueError("truncated DER")
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise ValueError("unsupported DER length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise ValueError("truncated DER")
    return tag, data[pos : pos + length], pos + length


def pkcs8_cipher_oid(der: bytes) -> bytes:
    """Encryption-scheme OID of a PBES2 EncryptedPrivateKeyInfo (RFC 5958, RFC 8018 A.4)."""
    sequence, oid = 0x30, 0x06
    _, epki, _ = der_tlv(der)  # EncryptedPrivateKeyInfo
    _, alg_id, _ = der_tlv(epki)  # encryptionAlgorithm
    tag, scheme, pos = der_tlv(alg_id)
    if tag != oid or scheme != _OID_PBES2:
        raise ValueError("PKCS#8 key is not PBES2-encrypted")
    _, params, _ = der_tlv(alg_id, pos)  # PBES2-params
    _, _, pos = der_tlv(params)  # keyDerivationFunc
    tag, enc_scheme, _ = der_tlv(params, pos)  # encryptionScheme
    if tag != sequence:
        raise ValueError("malformed PBES2 parameters")
    tag, cipher, _ = der_tlv(enc_scheme)
    if tag != oid:
        raise ValueError("malformed PBES2 encryption scheme")
    return cipher
