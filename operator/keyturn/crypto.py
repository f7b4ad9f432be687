"""Key material for Keyturn: generation, serialization, thumbprints, signing and self-tests.

This is the only module that ever holds private keys or HMAC secrets. Everything else in the
operator passes `KeyMaterial` around opaquely, so the rule "no secret in status, events, logs or
metrics" (DESIGN.md invariant 8) is enforced here: `repr`/`str` of a `KeyMaterial` and every
exception message raised by this module are free of key material.

The heavy lifting is delegated to `cryptography` (keys, PEM) and PyJWT (JWS, JWK members); the
hand-written parts are only what those libraries do not offer: the RFC 7638 canonical form, the
kid template and a minimal DER walk that pins the PEM encryption to AES-256.

All functions are synchronous and free of global mutable state, so the operator can run them in
worker threads (RSA-4096 generation takes up to a second).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import string
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final, Literal, TypeAlias, cast

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, HMACAlgorithm, OKPAlgorithm, RSAAlgorithm

__all__ = [
    "ALGORITHMS",
    "FAMILY",
    "RSA_KEY_SIZES",
    "Family",
    "KeyMaterial",
    "KeySelfTestError",
    "PrivateKey",
    "TokenVerificationError",
    "family",
    "generate",
    "hash_size",
    "is_encrypted_pem",
    "is_symmetric",
    "load_private_pem",
    "load_raw_secret",
    "private_jwk",
    "private_pem",
    "public_jwk",
    "public_key_from_jwk",
    "public_pem",
    "raw_secret",
    "render_kid_template",
    "secret_fingerprint",
    "self_test",
    "sign",
    "thumbprint",
    "verify",
]

Family: TypeAlias = Literal["RSA", "EC", "OKP", "HMAC"]
PrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
_VerificationKey: TypeAlias = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | bytes

# Immutable on purpose: the module is used from several threads at once.
FAMILY: Final[Mapping[str, Family]] = MappingProxyType(
    {
        "RS256": "RSA",
        "RS384": "RSA",
        "RS512": "RSA",
        "PS256": "RSA",
        "PS384": "RSA",
        "PS512": "RSA",
        "ES256": "EC",
        "ES384": "EC",
        "ES512": "EC",
        "EdDSA": "OKP",
        "HS256": "HMAC",
        "HS384": "HMAC",
        "HS512": "HMAC",
    }
)
ALGORITHMS: Final[tuple[str, ...]] = tuple(FAMILY)
RSA_KEY_SIZES: Final[tuple[int, ...]] = (2048, 3072, 4096)
DEFAULT_RSA_KEY_SIZE: Final = 2048
MIN_RSA_KEY_SIZE: Final = 2048
# Upper bound only guards against a typo allocating huge buffers; the contract sets no maximum.
MAX_SECRET_LENGTH: Final = 4096

_HASH_SIZE: Final[Mapping[str, int]] = MappingProxyType(
    {alg: 64 if alg == "EdDSA" else int(alg[2:]) // 8 for alg in ALGORITHMS}
)
_EC_CURVES: Final[Mapping[str, tuple[type[ec.EllipticCurve], str]]] = MappingProxyType(
    {
        "ES256": (ec.SECP256R1, "P-256"),
        "ES384": (ec.SECP384R1, "P-384"),
        "ES512": (ec.SECP521R1, "P-521"),
    }
)
_JWK_KTY: Final[Mapping[Family, str]] = MappingProxyType(
    {"RSA": "RSA", "EC": "EC", "OKP": "OKP", "HMAC": "oct"}
)
# Public members per kty; RFC 7638 section 3.2 requires exactly these (plus kty) in a thumbprint.
_PUBLIC_MEMBERS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {"RSA": ("n", "e"), "EC": ("crv", "x", "y"), "OKP": ("crv", "x"), "oct": ("k",)}
)
_PRIVATE_MEMBERS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {"RSA": ("d", "p", "q", "dp", "dq", "qi"), "EC": ("d",), "OKP": ("d",), "oct": ()}
)

_KID_RE: Final = re.compile(r"[A-Za-z0-9._-]{1,128}")
_KID_PLACEHOLDERS: Final = frozenset({"date", "time", "n", "name", "namespace"})

_ENCRYPTED_PEM_HEADER: Final = "-----BEGIN ENCRYPTED PRIVATE KEY-----"
# DER of OID 2.16.840.1.101.3.4.1.42 (aes256-CBC, RFC 3565) and 1.2.840.113549.1.5.13 (PBES2).
_OID_AES256_CBC: Final = bytes.fromhex("60864801650304012a")
_OID_PBES2: Final = bytes.fromhex("2a864886f70d01050d")

_SELF_TEST_AUDIENCE: Final = "keyturn-self-test"
_SELF_TEST_LIFETIME_S: Final = 60


class KeySelfTestError(Exception):
    """A freshly generated or loaded key failed its sign-and-verify check and must not be published."""


class TokenVerificationError(Exception):
    """A token did not verify; kept separate from ValueError, which means "bad input"."""


@dataclass(frozen=True, eq=False, repr=False, slots=True)
class KeyMaterial:
    """One signing key: the private key object, or for HS* the HMAC secret text.

    For HS* the secret *string* is the key: its UTF-8 bytes are what HMAC uses, exactly as an
    application that reads it from an env var like JWT_SECRET would. Equality is identity
    (eq=False) so that secrets are never compared with a short-circuiting ``==``.
    """

    algorithm: str
    key: PrivateKey | str

    def __post_init__(self) -> None:
        _check_key(self.algorithm, self.key)

    def __repr__(self) -> str:
        return f"KeyMaterial(alg={self.algorithm}, <redacted>)"

    __str__ = __repr__


# --------------------------------------------------------------------------- algorithms


def _check_algorithm(algorithm: object) -> Family:
    if not isinstance(algorithm, str):
        raise ValueError(f"algorithm must be a string, not {type(algorithm).__name__}")
    if algorithm.strip().lower() == "none":
        raise ValueError("algorithm 'none' (unsigned tokens) is never allowed")
    fam = FAMILY.get(algorithm)
    if fam is None:
        raise ValueError(f"unsupported algorithm {algorithm[:32]!r}; expected one of {', '.join(ALGORITHMS)}")
    return fam


def family(algorithm: str) -> Family:
    """Key family of a JWA algorithm; raises ValueError for anything Keyturn does not sign with."""
    return _check_algorithm(algorithm)


def hash_size(algorithm: str) -> int:
    """Digest size in bytes of the algorithm's hash (EdDSA: 64, Ed25519 hashes with SHA-512).

    For HS* this is also the minimum HMAC key size (RFC 7518 section 3.2).
    """
    _check_algorithm(algorithm)
    return _HASH_SIZE[algorithm]


def is_symmetric(algorithm: str) -> bool:
    """True for HS*: such keys are never published in the JWKS."""
    return _check_algorithm(algorithm) == "HMAC"


def _check_key(algorithm: str, key: object) -> None:
    """Reject a key whose type, curve or size does not fit the algorithm (messages never show the key)."""
    fam = _check_algorithm(algorithm)
    if fam == "RSA":
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{algorithm} needs an RSA private key, got {_kind(key)}")
        if key.key_size < MIN_RSA_KEY_SIZE:
            raise ValueError(f"RSA key of {key.key_size} bits is too small; at least {MIN_RSA_KEY_SIZE}")
    elif fam == "EC":
        curve_type, crv = _EC_CURVES[algorithm]
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{algorithm} needs an EC {crv} private key, got {_kind(key)}")
        if not isinstance(key.curve, curve_type):
            raise ValueError(f"{algorithm} needs curve {crv}, got {key.curve.name}")
    elif fam == "OKP":
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise ValueError(f"{algorithm} needs an Ed25519 private key, got {_kind(key)}")
    else:
        if not isinstance(key, str):
            raise ValueError(f"{algorithm} needs the HMAC secret as a string, got {_kind(key)}")
        minimum = _HASH_SIZE[algorithm]
        size = len(key.encode("utf-8"))
        if size < minimum:
            raise ValueError(f"{algorithm} secret is {size} bytes; at least {minimum} are required")
        if key != key.strip():
            raise ValueError(f"{algorithm} secret has leading or trailing whitespace")


def _kind(key: object) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        return f"RSA-{key.key_size}"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return f"EC {key.curve.name}"
    if isinstance(key, str):
        return "an HMAC secret"
    return type(key).__name__


# --------------------------------------------------------------------------- generation


def generate(algorithm: str, key_size: int | None = None, secret_length: int | None = None) -> KeyMaterial:
    """Create a fresh key for `algorithm`.

    key_size applies to RS*/PS* only (2048, 3072 or 4096; default 2048) and secret_length to
    HS* only (bytes of entropy, default and minimum the hash size); passing either for another
    family is a ValueError so a misconfiguration is not silently ignored.
    """
    fam = _check_algorithm(algorithm)
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
        key = ec.generate_private_key(_EC_CURVES[algorithm][0]())
    elif fam == "OKP":
        key = ed25519.Ed25519PrivateKey.generate()
    else:
        minimum = _HASH_SIZE[algorithm]
        length = minimum if secret_length is None else secret_length
        if isinstance(length, bool) or not isinstance(length, int):
            raise ValueError(f"secretLength must be an integer number of bytes, got {length!r}")
        if length < minimum:
            raise ValueError(f"secretLength for {algorithm} must be at least {minimum} bytes, got {length}")
        if length > MAX_SECRET_LENGTH:
            raise ValueError(f"secretLength must be at most {MAX_SECRET_LENGTH} bytes, got {length}")
        # The text (base64url, no padding) is the key, so it survives env vars and YAML unchanged.
        key = _b64url(secrets.token_bytes(length))
    return KeyMaterial(algorithm, key)


# --------------------------------------------------------------------------- JWK


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _library_jwk(material: KeyMaterial) -> dict[str, Any]:
    """Full JWK members from PyJWT (which pads EC coordinates to the curve size, RFC 7518 6.2.1.2)."""
    key = material.key
    if isinstance(key, str):
        return HMACAlgorithm.to_jwk(key, as_dict=True)
    if isinstance(key, rsa.RSAPrivateKey):
        return RSAAlgorithm.to_jwk(key, as_dict=True)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return ECAlgorithm.to_jwk(key, as_dict=True)
    return OKPAlgorithm.to_jwk(key, as_dict=True)


def _jwk(material: KeyMaterial, kid: str, *, private: bool) -> dict[str, str]:
    if not isinstance(kid, str) or not kid:
        raise ValueError("kid must be a non-empty string")
    full = _library_jwk(material)
    kty = _JWK_KTY[family(material.algorithm)]
    members = _PUBLIC_MEMBERS[kty] + (_PRIVATE_MEMBERS[kty] if private else ())
    # Whitelist rather than copy: nothing PyJWT adds (key_ops, ...) or a private member can slip in.
    out = {"kty": kty, "kid": kid, "use": "sig", "alg": material.algorithm}
    out.update({name: str(full[name]) for name in members})
    return out


def public_jwk(material: KeyMaterial, kid: str) -> dict[str, str]:
    """RFC 7517 public JWK for the JWKS; HS* raises ValueError because a symmetric key is never published."""
    if is_symmetric(material.algorithm):
        raise ValueError(f"{material.algorithm} keys are symmetric and have no public JWK")
    return _jwk(material, kid, private=False)


def private_jwk(material: KeyMaterial, kid: str) -> dict[str, str]:
    """Full private JWK (HS*: kty oct with k) for the Secret's `jwk`/`jwks` formats only."""
    return _jwk(material, kid, private=True)


def thumbprint(key: KeyMaterial | Mapping[str, Any]) -> str:
    """RFC 7638 SHA-256 thumbprint (base64url, no padding) of the public JWK.

    Accepts a KeyMaterial or any JWK mapping; only the required public members are hashed, so a
    private JWK gives the same value as its public half. For HS* it is the thumbprint of the
    symmetric JWK {"k", "kty"}: a one-way hash of a secret with at least 256 bits of entropy, so
    publishing it as a kid reveals nothing usable, but it does let anyone holding a candidate
    secret confirm it, which is why HS* secrets must never be low-entropy.
    """
    jwk: Mapping[str, Any] = _library_jwk(key) if isinstance(key, KeyMaterial) else key
    kty = jwk.get("kty")
    if not isinstance(kty, str) or kty not in _PUBLIC_MEMBERS:
        raise ValueError("JWK has a missing or unsupported 'kty' (expected RSA, EC, OKP or oct)")
    required: dict[str, str] = {"kty": kty}
    for name in _PUBLIC_MEMBERS[kty]:
        value = jwk.get(name)
        if not isinstance(value, str) or not value:
            raise ValueError(f"{kty} JWK lacks the required member {name!r}")
        required[name] = value
    canonical = json.dumps(required, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return _b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


# --------------------------------------------------------------------------- PEM / raw secret


def _private_key(material: KeyMaterial, what: str) -> PrivateKey:
    if isinstance(material.key, str):
        raise ValueError(f"{material.algorithm} keys are HMAC secrets and have no {what}; use raw_secret")
    return material.key


def private_pem(material: KeyMaterial, passphrase: bytes | None = None) -> str:
    """PKCS#8 PEM; with a passphrase, encrypted PKCS#8 (PBES2, PBKDF2-HMAC-SHA256, AES-256-CBC).

    cryptography's BestAvailableEncryption fixes the PBKDF2 iteration count (2048 in
    cryptography 50) and offers no PKCS#8 builder to raise it, so the passphrase itself must be
    high-entropy (e.g. `openssl rand -base64 32`), never a human password. The cipher is checked
    after serialization, so a future library change can never silently weaken it below AES-256.
    """
    key = _private_key(material, "PEM")
    if passphrase is None:
        encryption: serialization.KeySerializationEncryption = serialization.NoEncryption()
    else:
        if not isinstance(passphrase, bytes) or not passphrase:
            raise ValueError("passphrase must be non-empty bytes")
        encryption = serialization.BestAvailableEncryption(passphrase)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption).decode(
        "ascii"
    )
    if passphrase is not None:
        # Check the very bytes we return, not a second serialization (each one has a fresh salt/IV).
        body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
        if _pkcs8_cipher_oid(base64.b64decode(body)) != _OID_AES256_CBC:
            raise RuntimeError("cryptography did not encrypt the PKCS#8 key with AES-256-CBC")
    return pem


def _der_tlv(data: bytes, pos: int = 0) -> tuple[int, bytes, int]:
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


def _pkcs8_cipher_oid(der: bytes) -> bytes:
    """Encryption-scheme OID of a PBES2 EncryptedPrivateKeyInfo (RFC 5958, RFC 8018 A.4)."""
    sequence, oid = 0x30, 0x06
    _, epki, _ = _der_tlv(der)  # EncryptedPrivateKeyInfo
    _, alg_id, _ = _der_tlv(epki)  # encryptionAlgorithm
    tag, scheme, pos = _der_tlv(alg_id)
    if tag != oid or scheme != _OID_PBES2:
        raise ValueError("PKCS#8 key is not PBES2-encrypted")
    _, params, _ = _der_tlv(alg_id, pos)  # PBES2-params
    _, _, pos = _der_tlv(params)  # keyDerivationFunc
    tag, enc_scheme, _ = _der_tlv(params, pos)  # encryptionScheme
    if tag != sequence:
        raise ValueError("malformed PBES2 parameters")
    tag, cipher, _ = _der_tlv(enc_scheme)
    if tag != oid:
        raise ValueError("malformed PBES2 encryption scheme")
    return cipher


def public_pem(material: KeyMaterial) -> str:
    """SubjectPublicKeyInfo PEM, the form verifiers read from JWT_PUBLIC_KEY."""
    key = _private_key(material, "public key")
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode("ascii")


def raw_secret(material: KeyMaterial) -> str:
    """The HMAC secret text, exactly what goes into an env var such as JWT_SECRET (HS* only)."""
    if not isinstance(material.key, str):
        raise ValueError(f"{material.algorithm} is asymmetric and has no raw secret; use private_pem")
    return material.key


def is_encrypted_pem(pem: str) -> bool:
    """Whether a stored PEM is encrypted PKCS#8, so callers can migrate keys when encryption is toggled."""
    return _ENCRYPTED_PEM_HEADER in pem


def load_private_pem(pem: str, passphrase: bytes | None, algorithm: str) -> KeyMaterial:
    """Reload a key the operator stored, checking that it fits `algorithm` (type, curve, RSA >= 2048)."""
    if is_symmetric(algorithm):
        raise ValueError(f"{algorithm} keys are stored as raw secrets; use load_raw_secret")
    encrypted = is_encrypted_pem(pem)
    if encrypted and passphrase is None:
        raise ValueError("the private key PEM is encrypted but no passphrase was given")
    if not encrypted and passphrase is not None:
        raise ValueError("a passphrase was given but the private key PEM is not encrypted")
    try:
        key = serialization.load_pem_private_key(pem.encode("ascii"), password=passphrase)
    except (ValueError, TypeError, UnsupportedAlgorithm, UnicodeError) as exc:
        # cryptography's messages never quote key bytes; keep them for diagnosis.
        hint = "wrong passphrase or corrupt PEM" if encrypted else "corrupt PEM"
        raise ValueError(f"could not load the private key ({hint}): {exc}") from exc
    return KeyMaterial(algorithm, cast(PrivateKey, key))  # type checked by KeyMaterial itself


def load_raw_secret(secret: str, algorithm: str) -> KeyMaterial:
    """Reload a stored HMAC secret; its UTF-8 bytes are the key, unchanged."""
    if not is_symmetric(algorithm):
        raise ValueError(f"{algorithm} is asymmetric; use load_private_pem")
    return KeyMaterial(algorithm, secret)


# --------------------------------------------------------------------------- sign / verify


def _signing_key(material: KeyMaterial) -> PrivateKey | bytes:
    return material.key.encode("utf-8") if isinstance(material.key, str) else material.key


def sign(material: KeyMaterial, claims: Mapping[str, Any], kid: str) -> str:
    """Compact JWS with `alg` and `kid` in the header, so verifiers pick the key from the JWKS."""
    if not isinstance(kid, str) or not kid:
        raise ValueError("kid must be a non-empty string")
    return jwt.encode(
        dict(claims), _signing_key(material), algorithm=material.algorithm, headers={"kid": kid}
    )


def public_key_from_jwk(jwk: Mapping[str, Any], algorithm: str) -> _VerificationKey:
    """Verification key from a JWK, refusing one meant for another algorithm or use.

    Only the public members (for oct: k) are read, and errors never echo the JWK: PyJWT's own
    messages would print the whole dict, private members included.
    """
    fam = _check_algorithm(algorithm)
    kty = _JWK_KTY[fam]
    if jwk.get("kty") != kty:
        raise ValueError(f"{algorithm} needs a JWK with kty {kty!r}")
    if jwk.get("alg", algorithm) != algorithm:
        raise ValueError(f"JWK is for another algorithm than {algorithm}")
    if jwk.get("use", "sig") != "sig":
        raise ValueError("JWK is not a signature key (use != 'sig')")
    if fam == "EC" and jwk.get("crv") != _EC_CURVES[algorithm][1]:
        raise ValueError(f"{algorithm} needs curve {_EC_CURVES[algorithm][1]}")
    if fam == "OKP" and jwk.get("crv") != "Ed25519":
        raise ValueError("EdDSA keys must use curve Ed25519")
    members = {"kty": kty} | {name: jwk.get(name) for name in _PUBLIC_MEMBERS[kty]}
    try:
        loaded: object = jwt.get_algorithm_by_name(algorithm).from_jwk(members)
    except (jwt.PyJWTError, ValueError, TypeError, KeyError):
        raise ValueError(f"the JWK is not a valid {algorithm} key") from None
    expected: type | tuple[type, ...] = {
        "RSA": rsa.RSAPublicKey,
        "EC": ec.EllipticCurvePublicKey,
        "OKP": ed25519.Ed25519PublicKey,
        "HMAC": bytes,
    }[fam]
    if not isinstance(loaded, expected):
        raise ValueError(f"the JWK is not a valid {algorithm} public key")
    return cast(_VerificationKey, loaded)


def public_pem_from_jwk(jwk: Mapping[str, Any], algorithm: str) -> str:
    """SubjectPublicKeyInfo PEM from a published JWK, so public items never need the private key."""
    if is_symmetric(algorithm):
        raise ValueError(f"{algorithm} keys are symmetric: there is no public PEM")
    key = public_key_from_jwk(jwk, algorithm)
    assert not isinstance(key, bytes)
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def verify(
    token: str,
    key: KeyMaterial | Mapping[str, Any],
    algorithm: str,
    *,
    kid: str | None = None,
    audience: str | None = None,
    require: Sequence[str] = (),
    leeway: float = 0,
) -> dict[str, Any]:
    """Verify a token with exactly `algorithm` against a JWK (public, or oct for HS*) or a KeyMaterial.

    Raises TokenVerificationError for a bad token and ValueError for an unusable key. `kid`,
    when given, must equal the header's kid, which is how verifiers select keys.
    """
    _check_algorithm(algorithm)
    vkey: _VerificationKey
    if isinstance(key, KeyMaterial):
        if key.algorithm != algorithm:
            raise ValueError(f"key is for {key.algorithm}, not {algorithm}")
        vkey = key.key.encode("utf-8") if isinstance(key.key, str) else key.key.public_key()
    else:
        vkey = public_key_from_jwk(key, algorithm)
    try:
        if kid is not None and jwt.get_unverified_header(token).get("kid") != kid:
            raise TokenVerificationError(f"token kid does not match {kid!r}")
        return jwt.decode(
            token,
            vkey,
            algorithms=[algorithm],
            audience=audience,
            leeway=leeway,
            options={"require": list(require), "enforce_minimum_key_length": True},
        )
    except jwt.PyJWTError as exc:
        raise TokenVerificationError(f"{type(exc).__name__}: {exc}") from exc


def self_test(material: KeyMaterial, kid: str) -> None:
    """Sign a short-lived token and verify it the way a consumer would, before the key is published.

    Asymmetric keys are verified against their *public JWK* (so the JWKS entry itself is proven),
    HS* keys against an oct JWK built from the raw secret text (the env-var form). A tampered
    copy of the token must then fail, which proves the check can fail at all.
    """
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": "keyturn",
        "sub": "keyturn-self-test",
        "aud": _SELF_TEST_AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + _SELF_TEST_LIFETIME_S,
        "jti": secrets.token_urlsafe(16),
    }
    alg = material.algorithm
    try:
        jwk = private_jwk(material, kid) if is_symmetric(alg) else public_jwk(material, kid)
        token = sign(material, claims, kid)
        header = jwt.get_unverified_header(token)
        if header.get("alg") != alg or header.get("kid") != kid:
            raise KeySelfTestError("token header does not carry the expected alg and kid")
        decoded = verify(
            token, jwk, alg, kid=kid, audience=_SELF_TEST_AUDIENCE, require=("exp", "iat"), leeway=5
        )
        if decoded != claims:
            raise KeySelfTestError("verified claims differ from the signed claims")
        head, _, signature = token.split(".")
        forged_claims = {**claims, "jti": secrets.token_urlsafe(16)}
        forged_payload = _b64url(json.dumps(forged_claims, separators=(",", ":")).encode("utf-8"))
        forged = f"{head}.{forged_payload}.{signature}"
        try:
            verify(forged, jwk, alg, audience=_SELF_TEST_AUDIENCE, leeway=5)
        except TokenVerificationError:
            pass
        else:
            raise KeySelfTestError("a tampered token verified")
    except KeySelfTestError as exc:
        raise KeySelfTestError(f"self-test of kid {kid!r} ({alg}) failed: {exc}") from None
    except Exception as exc:
        raise KeySelfTestError(
            f"self-test of kid {kid!r} ({alg}) failed: {type(exc).__name__}: {exc}"
        ) from exc


# --------------------------------------------------------------------------- audit / kid


def secret_fingerprint(material: KeyMaterial) -> str:
    """First 16 hex chars of SHA-256 over the public key (DER SPKI) or the HMAC secret's UTF-8 bytes.

    For audit records, which must name a key without containing it. Plain SHA-256 on purpose so
    an auditor can recompute it: `openssl pkey -pubout -outform DER | sha256sum` or
    `printf %s "$JWT_SECRET" | sha256sum`. 64 bits shown of a >=256-bit secret reveal nothing usable.
    """
    if isinstance(material.key, str):
        data = material.key.encode("utf-8")
    else:
        data = material.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    return hashlib.sha256(data).hexdigest()[:16]


def render_kid_template(template: str, *, now: datetime, n: int, name: str, namespace: str) -> str:
    """Render a Template-strategy kid; it must fit `[A-Za-z0-9._-]{1,128}` (a Secret data-key suffix).

    `now` must be timezone-aware ({date}/{time} are UTC); format specs are allowed ("{n:03d}"),
    conversions, indexing and attribute access are not.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"malformed kid template {template!r}: {exc}") from None
    for _, field, _, conversion in fields:
        if field is None:
            continue
        if field not in _KID_PLACEHOLDERS:
            raise ValueError(
                f"unknown placeholder {{{field}}} in kid template; "
                f"allowed: {', '.join('{' + p + '}' for p in sorted(_KID_PLACEHOLDERS))}"
            )
        if conversion is not None:
            raise ValueError(f"conversions like !{conversion} are not allowed in kid templates")
    utc = now.astimezone(UTC)
    values = {
        "date": utc.strftime("%Y%m%d"),
        "time": utc.strftime("%H%M%S"),
        "n": n,
        "name": name,
        "namespace": namespace,
    }
    try:
        kid = template.format_map(values)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"kid template {template!r} cannot be rendered: {exc}") from None
    if not _KID_RE.fullmatch(kid):
        if not kid:
            raise ValueError("kid template renders an empty kid")
        if len(kid) > 128:
            raise ValueError(f"kid template renders a kid of {len(kid)} characters; at most 128")
        bad = sorted({ch for ch in kid if not re.fullmatch(r"[A-Za-z0-9._-]", ch)})
        raise ValueError(
            f"kid {kid!r} contains characters not allowed in a kid: {' '.join(repr(c) for c in bad)} "
            "(allowed: letters, digits, '.', '_', '-')"
        )
    return kid
