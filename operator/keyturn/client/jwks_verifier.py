"""JwksVerifier: verify tokens against the JWKS Keyturn publishes, following every rotation."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from keyturn.client import mounts
from keyturn.client.errors import VerificationError
from keyturn.client.jwks import ASYMMETRIC_ALGORITHMS, JwksSnapshot, parse_jwks
from keyturn.client.metrics import ClientMetrics
from keyturn.client.reasons import Reason
from keyturn.client.sources import FileSource, HttpSource, KeySource, StaticSource
from keyturn.client.tokens import decode, read_header, refuse
from keyturn.client.verifier_base import DEFAULT_LEEWAY_S, DEFAULT_REQUIRE, BaseVerifier

__all__ = ["JwksVerifier"]

_Maker = Callable[[Callable[[JwksSnapshot], None], ClientMetrics], KeySource[JwksSnapshot]]


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
        make_source: _Maker,
        *,
        algorithms: Collection[str] | None = None,
        metrics: ClientMetrics | None = None,
        audience: str | Iterable[str] | None = None,
        issuer: str | Sequence[str] | None = None,
        leeway: float | timedelta = DEFAULT_LEEWAY_S,
        require: Sequence[str] = DEFAULT_REQUIRE,
    ) -> None:
        if algorithms is not None:
            unknown = [a for a in algorithms if a not in ASYMMETRIC_ALGORITHMS]
            if unknown:
                allowed = ", ".join(ASYMMETRIC_ALGORITHMS)
                raise ValueError(f"algorithms {unknown} cannot come from a JWKS; allowed: {allowed}")
        self._algorithms = frozenset(algorithms) if algorithms is not None else None
        super().__init__(
            make_source, metrics=metrics, audience=audience, issuer=issuer, leeway=leeway, require=require
        )

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        *,
        check_interval: float = 1.0,
        algorithms: Collection[str] | None = None,
        metrics: ClientMetrics | None = None,
        audience: str | Iterable[str] | None = None,
        issuer: str | Sequence[str] | None = None,
        leeway: float | timedelta = DEFAULT_LEEWAY_S,
        require: Sequence[str] = DEFAULT_REQUIRE,
    ) -> JwksVerifier:
        """A JWKS file, typically `<mount>/jwks.json` of the `<keyset>-jwks` ConfigMap volume.

        Raises KeySourceError if it cannot be loaded now. Later swaps are picked up on use (at
        most `check_interval` seconds late) or by `start_watching`. Do not mount it with
        `subPath`: the kubelet never updates subPath mounts.
        """
        file = Path(path)

        def load() -> tuple[object, JwksSnapshot]:
            fingerprint, data = mounts.read_file(file)
            return fingerprint, parse_jwks(data)

        def make(
            on_change: Callable[[JwksSnapshot], None], metrics_: ClientMetrics
        ) -> FileSource[JwksSnapshot]:
            return FileSource(
                source="jwks_file",
                what=f"JWKS {file}",
                probe=lambda: mounts.file_fingerprint(file),
                load=load,
                describe=JwksSnapshot.describe,
                on_change=on_change,
                check_interval=check_interval,
                metrics=metrics_,
            )

        return cls(
            make,
            algorithms=algorithms,
            metrics=metrics,
            audience=audience,
            issuer=issuer,
            leeway=leeway,
            require=require,
        )

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
        metrics: ClientMetrics | None = None,
        audience: str | Iterable[str] | None = None,
        issuer: str | Sequence[str] | None = None,
        leeway: float | timedelta = DEFAULT_LEEWAY_S,
        require: Sequence[str] = DEFAULT_REQUIRE,
    ) -> JwksVerifier:
        """A JWKS served over HTTP(S), cached for `cache_ttl` seconds.

        Keep `cache_ttl` at or below the keyset's `tokens.verifierCacheTTL`: Keyturn relies on
        it to know when every verifier has seen a newly published key. Raises KeySourceError if
        the first fetch fails.
        """

        def make(
            on_change: Callable[[JwksSnapshot], None], metrics_: ClientMetrics
        ) -> HttpSource[JwksSnapshot]:
            return HttpSource(
                url,
                what=f"JWKS {url}",
                parse=parse_jwks,
                describe=JwksSnapshot.describe,
                on_change=on_change,
                ttl=cache_ttl,
                min_refetch_interval=min_refetch_interval,
                timeout=timeout,
                metrics=metrics_,
                headers=dict(headers or {}),
            )

        return cls(
            make,
            algorithms=algorithms,
            metrics=metrics,
            audience=audience,
            issuer=issuer,
            leeway=leeway,
            require=require,
        )

    @classmethod
    def from_jwks(
        cls,
        document: Mapping[str, Any] | str | bytes,
        *,
        algorithms: Collection[str] | None = None,
        metrics: ClientMetrics | None = None,
        audience: str | Iterable[str] | None = None,
        issuer: str | Sequence[str] | None = None,
        leeway: float | timedelta = DEFAULT_LEEWAY_S,
        require: Sequence[str] = DEFAULT_REQUIRE,
    ) -> JwksVerifier:
        """A fixed JWKS document (no reload): for tests and one-off tools."""
        snapshot = parse_jwks(document)

        def make(on_change: Callable[[JwksSnapshot], None], _: ClientMetrics) -> StaticSource[JwksSnapshot]:
            on_change(snapshot)
            return StaticSource(snapshot)

        return cls(
            make,
            algorithms=algorithms,
            metrics=metrics,
            audience=audience,
            issuer=issuer,
            leeway=leeway,
            require=require,
        )

    def _check(
        self,
        token: str,
        *,
        audience: str | Iterable[str] | None,
        issuer: str | Sequence[str] | None,
        leeway: float | timedelta,
        require: tuple[str, ...],
    ) -> tuple[dict[str, Any], str | None]:
        header = read_header(token)
        kid = header.kid
        if kid is None:
            raise refuse(Reason.MISSING_KID, None)
        snapshot = self._source.get()
        key = snapshot.keys.get(kid)
        if key is None:
            snapshot = self._source.refresh_now()
            key = snapshot.keys.get(kid)
        if key is None:
            raise refuse(Reason.UNKNOWN_KID if snapshot.keys else Reason.NO_KEYS, kid)
        if header.alg != key.algorithm:
            raise VerificationError(Reason.WRONG_ALG, kid, f"the key {kid} is for {key.algorithm} only")
        if self._algorithms is not None and key.algorithm not in self._algorithms:
            raise VerificationError(Reason.WRONG_ALG, kid, f"{key.algorithm} is not in the allow-list")
        claims = decode(
            token,
            key.key,
            key.algorithm,
            kid=kid,
            audience=audience,
            issuer=issuer,
            leeway=leeway,
            require=require,
        )
        return claims, kid
