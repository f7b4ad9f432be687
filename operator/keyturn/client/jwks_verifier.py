"""JwksVerifier: verify tokens against the JWKS Keyturn publishes, following every rotation."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Unpack

from keyturn.client.errors import VerificationError
from keyturn.client.file_source import FileSource
from keyturn.client.http_source import HttpSource, display_url
from keyturn.client.jwks import ASYMMETRIC_ALGORITHMS, JwksSnapshot, parse_jwks
from keyturn.client.reasons import ValidationReason
from keyturn.client.sources import KeySource, StaticSource
from keyturn.client.tokens import ClaimRules, decode, read_header, refuse
from keyturn.client.verifier_base import BaseVerifier, VerifierOptions

__all__ = ["JwksVerifier"]


class JwksVerifier(BaseVerifier[JwksSnapshot]):
    """Verifies asymmetric tokens (RS*, PS*, ES*, EdDSA) with the key their kid names.

    The kid selects the key and the key's own `alg` decides the algorithm: a token whose header
    asks for anything else (HS256 with the public key as an HMAC secret, PS256 against an RS256
    key, `none`) is refused as `wrong_alg`. A kid that is not in the JWKS makes the source look
    again right away (a stat for files; a rate-limited refetch for URLs) before the token is
    refused as `unknown_kid`, so a key published a moment ago is never refused for long.
    """

    def __init__(
        self,
        source: KeySource[JwksSnapshot],
        *,
        algorithms: Collection[str] | None = None,
        **options: Unpack[VerifierOptions],
    ) -> None:
        if algorithms is not None:
            unknown = [a for a in algorithms if a not in ASYMMETRIC_ALGORITHMS]
            if unknown:
                allowed = ", ".join(ASYMMETRIC_ALGORITHMS)
                raise ValueError(f"algorithms {unknown} cannot come from a JWKS; allowed: {allowed}")
        self._algorithms = frozenset(algorithms) if algorithms is not None else None
        super().__init__(source, **options)

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        *,
        check_interval: float = 1.0,
        algorithms: Collection[str] | None = None,
        **options: Unpack[VerifierOptions],
    ) -> JwksVerifier:
        """A JWKS file, typically `<mount>/jwks.json` of the `<keyset>-jwks` ConfigMap volume.

        Raises KeySourceError if it cannot be loaded now. Later swaps are picked up on use (at
        most `check_interval` seconds late) or by `start_watching`. Do not mount it with
        `subPath`: the kubelet never updates subPath mounts.
        """
        file = Path(path)
        source = FileSource.of_file(
            "jwks_file", f"JWKS {file}", file, parse_jwks, check_interval, withdraw=JwksSnapshot.without
        )
        return cls(source, algorithms=algorithms, **options)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        cache_ttl: float = 300.0,
        min_refetch_interval: float = 10.0,
        timeout: float = 5.0,
        headers: Mapping[str, str] | None = None,
        algorithms: Collection[str] | None = None,
        **options: Unpack[VerifierOptions],
    ) -> JwksVerifier:
        """A JWKS served over HTTP(S), cached for `cache_ttl` seconds.

        Keep `cache_ttl` at or below the keyset's `tokens.verifierCacheTTL`: Keyturn relies on
        it to know when every verifier has seen a newly published key. Raises KeySourceError if
        the first fetch fails. Redirects are never followed and `timeout` bounds the whole fetch.
        """
        source = HttpSource(
            url,
            what=f"JWKS {display_url(url)}",
            parse=parse_jwks,
            ttl=cache_ttl,
            min_refetch_interval=min_refetch_interval,
            timeout=timeout,
            headers=dict(headers or {}),
            withdraw=JwksSnapshot.without,
        )
        return cls(source, algorithms=algorithms, **options)

    @classmethod
    def from_jwks(
        cls,
        document: Mapping[str, Any] | str | bytes,
        *,
        algorithms: Collection[str] | None = None,
        **options: Unpack[VerifierOptions],
    ) -> JwksVerifier:
        """A fixed JWKS document (no reload): for tests and one-off tools."""
        return cls(StaticSource(parse_jwks(document)), algorithms=algorithms, **options)

    def _check(self, token: str, rules: ClaimRules) -> tuple[dict[str, Any], str | None]:
        header = read_header(token)
        kid = header.kid
        if kid is None:
            raise refuse(ValidationReason.MISSING_KID, None)
        snapshot, key = self._find(lambda s: s.keys.get(kid))
        if key is None:
            raise refuse(ValidationReason.UNKNOWN_KID if snapshot.keys else ValidationReason.NO_KEYS, kid)
        if header.alg != key.algorithm:
            raise VerificationError(
                ValidationReason.WRONG_ALG, kid, f"the key {kid} is for {key.algorithm} only"
            )
        if self._algorithms is not None and key.algorithm not in self._algorithms:
            raise VerificationError(
                ValidationReason.WRONG_ALG, kid, f"{key.algorithm} is not in the allow-list"
            )
        return decode(token, key.key, key.algorithm, rules, kid), kid
