"""HmacVerifier: the accept-list of shared secrets (current, next, previous) for HS* keysets.

An HMAC keyset has no JWKS: verifiers hold the secrets themselves, from the keyset's Secret.
Keyturn's default items name every secret's kid (`JWT_KID`, `JWT_KID_PREVIOUS`, `JWT_KID_NEXT`);
a keyset with custom items may name only the current one. A token is matched in this order:

1. the header's kid names a secret we can identify: by its kid item, or, when
   the keyset uses Thumbprint kids (detected: the kid item equals the current secret's RFC 7638
   thumbprint), any secret by its thumbprint; or a kid an earlier token proved to belong to one
   of the secrets (learned, forgotten at the next reload);
2. otherwise every secret of the accept-list is tried, current first. A signature that verifies
   proves the header (kid included) was written by a holder of that secret.

The algorithm is checked first and only the configured one is accepted, whatever the header
says, so `none`, other HS* sizes and asymmetric algorithms are `wrong_alg` before any HMAC.
Secrets are used as the UTF-8 bytes of the item, unchanged: Keyturn's secrets are base64url text
and that text is the key (no decoding, no stripping).
"""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Unpack

from keyturn.client.errors import KeySourceError, VerificationError
from keyturn.client.file_source import FileSource
from keyturn.client.reasons import ValidationReason
from keyturn.client.sources import KeySource, StaticSource
from keyturn.client.tokens import ClaimRules, decode, read_header, refuse
from keyturn.client.verifier_base import BaseVerifier, VerifierOptions
from keyturn.keys.thumbprints import thumbprint

__all__ = ["HMAC_ALGORITHMS", "HmacSnapshot", "HmacVerifier"]

HMAC_ALGORITHMS: Final = ("HS256", "HS384", "HS512")
_MIN_BYTES: Final = MappingProxyType({"HS256": 32, "HS384": 48, "HS512": 64})
_MAX_LEARNED: Final = 64


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class _Secret:
    slot: str  # current | next | previous
    kid: str | None  # None: not identifiable (Template kids of next/previous)
    key: bytes

    def __repr__(self) -> str:
        return f"_Secret(slot={self.slot}, kid={self.kid!r}, <redacted>)"


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class HmacSnapshot:
    """One version of the accept-list; `secrets` is in trial order (current, next, previous)."""

    secrets: tuple[_Secret, ...]
    by_kid: Mapping[str, _Secret]

    @property
    def kids(self) -> tuple[str, ...]:
        return tuple(self.by_kid)

    def describe(self) -> str:
        slots = ", ".join(f"{s.slot}{f' ({s.kid})' if s.kid else ''}" for s in self.secrets)
        return f"HMAC secrets [{slots}]"

    def __repr__(self) -> str:
        return f"HmacSnapshot({self.describe()})"


def secret_thumbprint(secret: str) -> str:
    """The kid Keyturn's Thumbprint strategy gives this secret (RFC 7638 over the oct JWK)."""
    k = base64.urlsafe_b64encode(secret.encode("utf-8")).rstrip(b"=").decode("ascii")
    return thumbprint({"kty": "oct", "k": k})


def build_snapshot(
    algorithm: str,
    current: str | None,
    previous: str | None,
    next_: str | None,
    kid: str | None,
    where: str,
    slot_kids: Mapping[str, str | None] | None = None,
) -> HmacSnapshot:
    """Check and arrange the secrets; messages name items and sizes, never contents."""
    if not current:
        raise KeySourceError(f"{where}: the current secret is missing or empty")
    minimum = _MIN_BYTES[algorithm]
    entries: list[tuple[str, str]] = [("current", current)]
    entries += [(slot, value) for slot, value in (("next", next_), ("previous", previous)) if value]
    for slot, value in entries:
        size = len(value.encode("utf-8"))
        if size < minimum:
            raise KeySourceError(f"{where}: the {slot} secret has {size} bytes; {algorithm} needs {minimum}")
    current_kid = kid.strip() if kid and kid.strip() else None
    thumbprints = {slot: secret_thumbprint(value) for slot, value in entries}
    # Thumbprint kids (or no kid item at all, where the thumbprint is the only kid there is)
    # make every secret identifiable; with Template kids only the current one is.
    identifiable = current_kid is None or current_kid == thumbprints["current"]
    named = {slot: k.strip() for slot, k in (slot_kids or {}).items() if k and k.strip()}
    secrets_: list[_Secret] = []
    for slot, value in entries:
        if slot == "current":
            secret_kid: str | None = current_kid or thumbprints["current"]
        else:
            secret_kid = named.get(slot) or (thumbprints[slot] if identifiable else None)
        secrets_.append(_Secret(slot, secret_kid, value.encode("utf-8")))
    by_kid = {s.kid: s for s in secrets_ if s.kid is not None}
    return HmacSnapshot(tuple(secrets_), MappingProxyType(by_kid))


class HmacVerifier(BaseVerifier[HmacSnapshot]):
    """Verifies HS256/384/512 tokens against the keyset's current, next and previous secrets."""

    def __init__(
        self, source: KeySource[HmacSnapshot], *, algorithm: str, **options: Unpack[VerifierOptions]
    ) -> None:
        self.algorithm = _check_algorithm(algorithm)
        self._learned_lock = threading.Lock()
        self._learned: tuple[HmacSnapshot | None, dict[str, _Secret]] = (None, {})
        super().__init__(source, **options)

    @classmethod
    def from_dir(
        cls,
        path: str | Path,
        *,
        algorithm: str = "HS256",
        current_item: str = "JWT_SECRET",
        previous_item: str | None = "JWT_SECRET_PREVIOUS",
        next_item: str | None = "JWT_SECRET_NEXT",
        kid_item: str | None = "JWT_KID",
        previous_kid_item: str | None = "JWT_KID_PREVIOUS",
        next_kid_item: str | None = "JWT_KID_NEXT",
        check_interval: float = 1.0,
        **options: Unpack[VerifierOptions],
    ) -> HmacVerifier:
        """The keyset's Secret mounted as a volume; item names as in `spec.secret.items`.

        Items are re-read after every kubelet swap, so the previous secret stops verifying as
        soon as Keyturn drops it at the end of the grace period (no restart needed).
        """
        directory = Path(path)
        alg = _check_algorithm(algorithm)
        names = [
            n
            for n in (current_item, previous_item, next_item, kid_item, previous_kid_item, next_kid_item)
            if n is not None
        ]

        def parse(items: dict[str, str | None]) -> HmacSnapshot:
            def item(name: str | None) -> str | None:
                return items.get(name) if name is not None else None

            kids = {"previous": item(previous_kid_item), "next": item(next_kid_item)}
            return build_snapshot(
                alg,
                item(current_item),
                item(previous_item),
                item(next_item),
                item(kid_item),
                str(directory),
                kids,
            )

        what = f"HMAC secrets in {directory}"
        source = FileSource.of_items("hmac_secrets", what, directory, names, parse, check_interval)
        return cls(source, algorithm=alg, **options)

    @classmethod
    def from_env(
        cls,
        *,
        algorithm: str = "HS256",
        current_var: str = "JWT_SECRET",
        previous_var: str | None = "JWT_SECRET_PREVIOUS",
        next_var: str | None = "JWT_SECRET_NEXT",
        kid_var: str | None = "JWT_KID",
        previous_kid_var: str | None = "JWT_KID_PREVIOUS",
        next_kid_var: str | None = "JWT_KID_NEXT",
        environ: Mapping[str, str] | None = None,
        **options: Unpack[VerifierOptions],
    ) -> HmacVerifier:
        """The Secret as environment variables (`envFrom`): read once, since a process's
        environment never changes; Keyturn rolls the Deployment to deliver new secrets."""
        env = os.environ if environ is None else environ

        def var(name: str | None) -> str | None:
            return env.get(name) if name is not None else None

        return cls.from_secrets(
            var(current_var) or "",
            previous=var(previous_var),
            next=var(next_var),
            kid=var(kid_var),
            previous_kid=var(previous_kid_var),
            next_kid=var(next_kid_var),
            algorithm=algorithm,
            where=f"environment variable {current_var}",
            **options,
        )

    @classmethod
    def from_secrets(
        cls,
        current: str,
        *,
        previous: str | None = None,
        next: str | None = None,  # the slot's name in the contract
        kid: str | None = None,
        previous_kid: str | None = None,
        next_kid: str | None = None,
        algorithm: str = "HS256",
        where: str = "secrets given in code",
        **options: Unpack[VerifierOptions],
    ) -> HmacVerifier:
        """Fixed secrets (no reload)."""
        alg = _check_algorithm(algorithm)
        kids = {"previous": previous_kid, "next": next_kid}
        snapshot = build_snapshot(alg, current, previous, next, kid, where, kids)
        return cls(StaticSource(snapshot), algorithm=alg, **options)

    def _check(self, token: str, rules: ClaimRules) -> tuple[dict[str, Any], str | None]:
        header = read_header(token)
        kid = header.kid
        if header.alg != self.algorithm:
            raise refuse(ValidationReason.WRONG_ALG, kid)
        if kid is None:
            snapshot, named = self._source.get(), None
        else:
            snapshot, named = self._find(lambda s: self._lookup(s, kid))
        candidates = (named,) if named is not None else snapshot.secrets
        for secret in candidates:
            try:
                claims = decode(token, secret.key, self.algorithm, rules, kid)
            except VerificationError as exc:
                if exc.reason is ValidationReason.BAD_SIGNATURE:
                    continue  # not this secret: try the next one of the accept-list
                raise
            if kid is not None and named is None:
                self._learn(snapshot, kid, secret)
            return claims, kid if kid is not None else secret.kid
        if named is not None or kid is None:
            raise refuse(ValidationReason.BAD_SIGNATURE, kid)
        raise refuse(ValidationReason.UNKNOWN_KID, kid)

    def _lookup(self, snapshot: HmacSnapshot, kid: str) -> _Secret | None:
        secret = snapshot.by_kid.get(kid)
        if secret is not None:
            return secret
        with self._learned_lock:
            learned_for, learned = self._learned
            return learned.get(kid) if learned_for is snapshot else None

    def _learn(self, snapshot: HmacSnapshot, kid: str, secret: _Secret) -> None:
        with self._learned_lock:
            learned_for, learned = self._learned
            if learned_for is not snapshot:
                learned = {}
                self._learned = (snapshot, learned)
            if len(learned) < _MAX_LEARNED:
                learned[kid] = secret


def _check_algorithm(algorithm: str) -> str:
    if algorithm not in HMAC_ALGORITHMS:
        raise ValueError(
            f"HMAC verification needs one of {', '.join(HMAC_ALGORITHMS)}, not {algorithm[:16]!r}"
        )
    return algorithm
