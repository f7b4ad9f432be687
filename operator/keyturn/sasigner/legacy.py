"""Legacy verification keys: the public keys the cluster signed with before Keyturn (`sa.pub`).

A cluster that moves to the signer still has tokens signed with its old key (Pods' tokens until
the kubelet replaces them, long-lived ones, Secret-based ones). FetchKeys keeps verifying them
with these keys, marked exclude_from_oidc_discovery: the apiserver accepts them but never lists
them in /openid/v1/jwks, and the signer never signs with them (it has no private half).

Their kid is the one kube-apiserver gave tokens it signed from a key file: base64url of SHA-256
over the public key's PKIX DER (keyIDFromPublicKey in k8s.io/kubernetes pkg/serviceaccount).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from keyturn.keys.algorithms import MIN_RSA_KEY_SIZE
from keyturn.keys.material import b64url
from keyturn.sasigner.errors import LegacyKeyRefused
from keyturn.sasigner.snapshot import PublicKey

MAX_FILE: Final = 1024 * 1024
# A block's body never holds another BEGIN: a file of unclosed BEGINs is scanned once, not once per BEGIN.
_BLOCK: Final = re.compile(
    r"-----BEGIN ([A-Z0-9 ]{1,40})-----\r?\n((?:(?!-----BEGIN ).)*?)-----END \1-----", re.DOTALL
)
_CURVES: Final = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)  # what the apiserver verifies


def kube_key_id(der: bytes) -> str:
    """The kid kube-apiserver puts in tokens it signs with a key file's key."""
    return b64url(hashlib.sha256(der).digest())


def _public_key(path: Path, kind: str, block: bytes) -> object:
    if "PRIVATE" in kind:
        raise LegacyKeyRefused(
            f"--legacy-public-key {path}: holds a private key ({kind}); give the public key (e.g. sa.pub): "
            "the signer only verifies with the old key"
        )
    try:
        if kind == "CERTIFICATE":
            return x509.load_pem_x509_certificate(block).public_key()
        if kind in ("PUBLIC KEY", "RSA PUBLIC KEY"):
            return serialization.load_pem_public_key(block)
    except (ValueError, UnsupportedAlgorithm):
        raise LegacyKeyRefused(f"--legacy-public-key {path}: a {kind} block does not load") from None
    raise LegacyKeyRefused(f"--legacy-public-key {path}: a {kind} block is not a public key or certificate")


def _der(path: Path, key: object) -> bytes:
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_KEY_SIZE:
            raise LegacyKeyRefused(
                f"--legacy-public-key {path}: an RSA key of {key.key_size} bits is too small"
            )
    elif not (isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, _CURVES)):
        raise LegacyKeyRefused(
            f"--legacy-public-key {path}: {type(key).__name__} is not an RSA or ECDSA P-256/384/521 key"
        )
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_file(path: Path) -> tuple[PublicKey, ...]:
    """Every public key of a PEM file (public keys or certificates), as excluded FetchKeys keys."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE + 1)
    except OSError as exc:
        raise LegacyKeyRefused(f"--legacy-public-key {path}: cannot be read ({exc.strerror})") from None
    if len(data) > MAX_FILE:
        raise LegacyKeyRefused(f"--legacy-public-key {path}: larger than {MAX_FILE} bytes")
    text = data.decode("latin-1")  # one character per byte: the blocks are found, never altered
    keys = []
    for match in _BLOCK.finditer(text):
        der = _der(path, _public_key(path, match.group(1), match.group(0).encode("latin-1")))
        keys.append(PublicKey(kube_key_id(der), der, exclude_from_oidc_discovery=True))
    if not keys:
        raise LegacyKeyRefused(f"--legacy-public-key {path}: no PEM public key in it")
    return tuple(keys)


def load_files(paths: Iterable[Path]) -> tuple[PublicKey, ...]:
    """The keys of every file, each kid once."""
    seen: dict[str, PublicKey] = {}
    for path in paths:
        for key in load_file(path):
            seen.setdefault(key.kid, key)
    return tuple(seen.values())
