"""Fresh key material for an algorithm, with the contract's sizes enforced.

Synchronous and free of global mutable state, so the operator runs it in worker threads
(RSA-4096 generation takes up to a second).
"""

from __future__ import annotations

import secrets
from typing import Final

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from keyturn.keys.algorithms import DEFAULT_RSA_KEY_SIZE, EC_CURVES, RSA_KEY_SIZES, check_algorithm, hash_size
from keyturn.keys.material import KeyMaterial, PrivateKey, b64url

__all__ = ["MAX_SECRET_LENGTH", "generate"]

# Upper bound only guards against a typo allocating huge buffers; the contract sets no maximum.
MAX_SECRET_LENGTH: Final = 4096


def generate(algorithm: str, key_size: int | None = None, secret_length: int | None = None) -> KeyMaterial:
    """Create a fresh key for `algorithm`.

    key_size applies to RS*/PS* only (2048, 3072 or 4096; default 2048) and secret_length to
    HS* only (bytes of entropy, default and minimum the hash size); passing either for another
    family is a ValueError so a misconfiguration is not silently ignored.
    """
    fam = check_algorithm(algorithm)
    if key_size is not None and fam != "RSA":
        raise ValueError(f"keySize applies to RSA algorithms only, not {algorithm}")
    if secret_length is not None and fam != "HMAC":
        raise ValueError(f"secretLength applies to HS* algorithms only, not {algorithm}")

    key: PrivateKey | str
    if fam == "RSA":
        size = DEFAULT_RSA_KEY_SIZE if key_size is None else key_size
        if isinstance(size, bool) or not isinstance(size, int) or size not in RSA_KEY_SIZES:
            raise ValueError(
                f"keySize must be one of {', '.join(map(str, RSA_KEY_SIZES))} bits, got {size!r}"
            )
        key = rsa.generate_private_key(public_exponent=65537, key_size=size)
    elif fam == "EC":
        key = ec.generate_private_key(EC_CURVES[algorithm][0]())
    elif fam == "OKP":
        key = ed25519.Ed25519PrivateKey.generate()
    else:
        minimum = hash_size(algorithm)
        length = minimum if secret_length is None else secret_length
        if isinstance(length, bool) or not isinstance(length, int):
            raise ValueError(f"secretLength must be an integer number of bytes, got {length!r}")
        if length < minimum:
            raise ValueError(f"secretLength for {algorithm} must be at least {minimum} bytes, got {length}")
        if length > MAX_SECRET_LENGTH:
            raise ValueError(f"secretLength must be at most {MAX_SECRET_LENGTH} bytes, got {length}")
        # The text (base64url, no padding) is the key, so it survives env vars and YAML unchanged.
        key = b64url(secrets.token_bytes(length))
    return KeyMaterial(algorithm, key)
