"""Signer: sign with the keyset's current key and kid, following activations and rollbacks.

The key and its kid come from two Secret items. They are always read from the same version of
the volume (see mounts.py): a token signed with the new key under the old kid would be refused
by every verifier, which is exactly the failure a rotation must not cause.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from keyturn.client import mounts
from keyturn.client.errors import KeySourceError
from keyturn.client.file_source import FileSource
from keyturn.client.holder import KeyHolder
from keyturn.client.metrics import ClientMetrics
from keyturn.client.sources import KeySource, StaticSource
from keyturn.keys.algorithms import is_symmetric
from keyturn.keys.jwk import public_jwk
from keyturn.keys.material import KeyMaterial, load_raw_secret
from keyturn.keys.pem import is_encrypted_pem, load_private_pem
from keyturn.keys.thumbprints import thumbprint

__all__ = ["Signer", "SigningKey"]

_RESERVED_HEADERS = frozenset({"alg", "kid"})


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class SigningKey:
    """The key that signs right now and its kid (material redacted from every repr)."""

    material: KeyMaterial
    kid: str

    @property
    def algorithm(self) -> str:
        return self.material.algorithm

    @property
    def kids(self) -> tuple[str, ...]:
        return (self.kid,)

    def describe(self) -> str:
        return f"signing kid {self.kid} ({self.algorithm})"

    def __repr__(self) -> str:
        return f"SigningKey({self.describe()})"


def load_signing_key(
    algorithm: str, key_text: str | None, kid_text: str | None, passphrase: bytes | None, where: str
) -> SigningKey:
    """Parse and check the key (type, size, curve); kid None means the RFC 7638 thumbprint."""
    if not key_text:
        raise KeySourceError(f"{where}: the signing key item is missing or empty")
    try:
        if is_symmetric(algorithm):
            material = load_raw_secret(key_text, algorithm)
        else:
            # A keyset can switch encryption off; the passphrase is then simply not needed.
            secret = passphrase if is_encrypted_pem(key_text) else None
            material = load_private_pem(key_text, secret, algorithm)
        kid = kid_text.strip() if kid_text is not None else thumbprint(material)
    except ValueError as exc:  # keyturn.keys' messages never contain key material
        raise KeySourceError(f"{where}: {exc}") from None
    if not kid:
        raise KeySourceError(f"{where}: the kid item is empty")
    return SigningKey(material, kid)


def _default_key_item(algorithm: str) -> str:
    return "JWT_SECRET" if is_symmetric(algorithm) else "JWT_PRIVATE_KEY"


def _publish_signing(metrics: ClientMetrics, owner: object, key: SigningKey) -> None:
    metrics.set_signing(owner, key.kid)


class Signer(KeyHolder[SigningKey]):
    """Signs tokens with `alg` and `kid` headers; use the `from_*` constructors."""

    def __init__(self, source: KeySource[SigningKey], *, metrics: ClientMetrics | None = None) -> None:
        super().__init__(source, metrics, _publish_signing)

    @classmethod
    def from_dir(
        cls,
        path: str | Path,
        algorithm: str,
        *,
        key_item: str | None = None,
        kid_item: str | None = "JWT_KID",
        passphrase: bytes | None = None,
        passphrase_file: str | Path | None = None,
        check_interval: float = 1.0,
        metrics: ClientMetrics | None = None,
    ) -> Signer:
        """The keyset's Secret mounted as a volume.

        `algorithm` is the keyset's `spec.algorithm` (a PEM cannot tell RS256 from PS256).
        `key_item` defaults to JWT_SECRET for HS* and JWT_PRIVATE_KEY otherwise; `kid_item=None`
        signs with the key's RFC 7638 thumbprint, the kid Keyturn's Thumbprint strategy gives.
        An encrypted PEM needs `passphrase`, or `passphrase_file` (the passphrase Secret
        mounted too; its exact bytes, re-read on change). Raises KeySourceError if the key
        cannot be loaded now; later swaps are picked up within `check_interval` seconds.
        """
        directory = Path(path)
        key_name = key_item or _default_key_item(algorithm)
        names = [key_name] + ([kid_item] if kid_item is not None else [])
        pass_path = Path(passphrase_file) if passphrase_file is not None else None

        def probe() -> object:
            extra = mounts.file_fingerprint(pass_path) if pass_path is not None else None
            return (mounts.dir_fingerprint(directory, names), extra)

        def load() -> tuple[object, SigningKey]:
            fingerprint, items = mounts.read_items(directory, names)
            secret = passphrase
            pass_fingerprint = None
            if pass_path is not None:
                pass_fingerprint, secret = mounts.read_file(pass_path)
            if not items.get(key_name):
                raise KeySourceError(f"{directory}: the signing key item {key_name} is missing or empty")
            kid_text = items.get(kid_item) if kid_item is not None else None
            if kid_item is not None and kid_text is None:
                raise KeySourceError(f"{directory}: the kid item {kid_item} is missing")
            key = load_signing_key(
                algorithm, items.get(key_name), kid_text, secret, f"{directory}/{key_name}"
            )
            return (fingerprint, pass_fingerprint), key

        source = FileSource(
            "signing_key",
            f"signing key in {directory}",
            probe=probe,
            load=load,
            check_interval=check_interval,
        )
        return cls(source, metrics=metrics)

    @classmethod
    def from_env(
        cls,
        algorithm: str,
        *,
        key_var: str | None = None,
        kid_var: str | None = "JWT_KID",
        passphrase: bytes | None = None,
        environ: Mapping[str, str] | None = None,
        metrics: ClientMetrics | None = None,
    ) -> Signer:
        """The Secret as environment variables (`envFrom`), read once: Keyturn rolls the
        Deployment after an activation, and the new pods read the new key."""
        env = os.environ if environ is None else environ
        key_name = key_var or _default_key_item(algorithm)
        kid_text = env.get(kid_var) if kid_var is not None else None
        if kid_var is not None and kid_text is None:
            raise KeySourceError(f"environment variable {kid_var} is not set")
        key = load_signing_key(
            algorithm, env.get(key_name), kid_text, passphrase, f"environment variable {key_name}"
        )
        return cls(StaticSource(key), metrics=metrics)

    # ------------------------------------------------------------------ signing

    @property
    def kid(self) -> str:
        """The kid the next token will carry."""
        return self._source.get().kid

    @property
    def algorithm(self) -> str:
        return self._source.get().algorithm

    def current(self) -> SigningKey:
        """The key the next token is signed with (check `kid` and sign with one snapshot)."""
        return self._source.get()

    def sign(
        self,
        claims: Mapping[str, Any],
        *,
        expires_in: float | None = None,
        headers: Mapping[str, Any] | None = None,
        key: SigningKey | None = None,
    ) -> str:
        """A compact JWS signed with the current key; `alg` and `kid` are always ours.

        `expires_in` (seconds) adds `iat` and `exp` unless the claims already have them.
        `key` pins the snapshot from `current()`, for callers that also report its kid or
        check the token against it: a reload between two calls would otherwise mix keys.
        """
        key = key if key is not None else self._source.get()
        extra = dict(headers or {})
        if _RESERVED_HEADERS & extra.keys():
            raise ValueError("alg and kid are set by the signer and cannot be overridden")
        payload = dict(claims)
        if expires_in is not None:
            now = int(time.time())
            payload.setdefault("iat", now)
            payload.setdefault("exp", now + int(expires_in))
        material = key.material.key
        signing_key = material.encode("utf-8") if isinstance(material, str) else material
        return jwt.encode(payload, signing_key, algorithm=key.algorithm, headers={**extra, "kid": key.kid})

    def public_jwk(self) -> dict[str, str]:
        """The current key's public JWK (asymmetric only): handy for self-checks and tests."""
        key = self._source.get()
        return public_jwk(key.material, key.kid)
