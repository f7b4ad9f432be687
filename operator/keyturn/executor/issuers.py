"""Which keyset claims which spec.jwks.issuer: an in-memory index fed by the JwtKeySet events.

An issuer names one key set, so the first keyset to claim it (the older by creationTimestamp,
then by namespace/name) keeps it and a later one is Stalled with IssuerConflict. The index only
knows the keysets this operator watches; the JWKS server applies the same rule to what it sees.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from keyturn.domain.issuer import IssuerError, parse_issuer
from keyturn.domain.spec import HMAC_ALGORITHMS


@dataclass(frozen=True, order=True)
class _Claim:
    created: str  # RFC 3339 UTC ("2026-01-01T00:00:00Z"): its text order is time order
    namespace: str
    name: str


def issuer_key(issuer: str) -> str:
    """Two spellings of one issuer are one claim: the host is case-insensitive, a final / is noise."""
    try:
        parsed = parse_issuer(issuer)
    except IssuerError:
        return issuer
    port = f":{parsed.port}" if parsed.port is not None else ""
    return f"{parsed.host}{port}{parsed.path}"


class IssuerIndex:
    def __init__(self) -> None:
        self._claims: dict[tuple[str, str], tuple[str, _Claim]] = {}

    def update(self, namespace: str, name: str, issuer: str | None, created: str) -> set[tuple[str, str]]:
        """Record a keyset's issuer (None: it claims none); returns the other keysets whose claim
        this may have changed, so that they can be looked at again."""
        before = self._claims.pop((namespace, name), None)
        if issuer:
            self._claims[(namespace, name)] = (issuer_key(issuer), _Claim(created, namespace, name))
        touched = {before[0]} if before else set()
        if issuer:
            touched.add(issuer_key(issuer))
        return {ref for ref, (key, _) in self._claims.items() if key in touched and ref != (namespace, name)}

    def forget(self, namespace: str, name: str) -> set[tuple[str, str]]:
        return self.update(namespace, name, None, "")

    def rival(self, issuer: str, namespace: str, name: str, created: str) -> str | None:
        key = issuer_key(issuer)
        own = self._claims.get((namespace, name))
        mine = own[1] if own and own[0] == key else _Claim(created, namespace, name)
        earlier = [c for k, c in self._claims.values() if k == key and c < mine]
        first = min(earlier, default=None)
        return f"{first.namespace}/{first.name}" if first else None


def issuer_of(spec: object) -> str | None:
    """spec.jwks.issuer of a raw JwtKeySet spec when it is one Keyturn would publish under (a valid
    issuer on an asymmetric keyset): an invalid claim must not hold a valid one back."""
    if not isinstance(spec, Mapping):
        return None
    jwks, algorithm = spec.get("jwks"), spec.get("algorithm")
    value = jwks.get("issuer") if isinstance(jwks, Mapping) else None
    if not isinstance(value, str) or (isinstance(algorithm, str) and algorithm in HMAC_ALGORITHMS):
        return None
    try:
        parse_issuer(value)
    except IssuerError:
        return None
    return value
