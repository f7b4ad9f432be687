"""The spec the emergency path acts with when the JwtKeySet's spec does not parse.

A revocation must not wait for someone to fix an unrelated field (a time zone, an interval). What
it needs is where the keys live and how they are laid out: the Secret and JWKS names and the
Secret's items, which the CRD validates on their own, and the algorithm, which the record knows.
Sections are kept if they parse alone; anything else falls back to its default.
"""

from __future__ import annotations

from collections.abc import Mapping

from keyturn.domain.model import Ring
from keyturn.domain.spec import ALGORITHMS, Spec, SpecError
from keyturn.domain.spec_parser import parse_spec

# Tried in this order: the more of the user's layout survives, the better. revokedKids is in every
# attempt: a declarative revocation is part of the emergency path.
_SECTIONS: tuple[tuple[str, ...], ...] = (
    ("revokedKids", "secret", "jwks", "rollout", "keySize", "secretLength"),
    ("revokedKids", "secret", "jwks", "rollout"),
    ("revokedKids", "secret", "jwks"),
    ("revokedKids", "jwks"),
    ("revokedKids",),
    (),
)


def acting_spec(name: str, namespace: str, raw: object, ring: Ring | None) -> Spec:
    """The parsed spec, or the most of it that parses with the record's algorithm."""
    sections = raw if isinstance(raw, Mapping) else {}
    algorithm = _algorithm(sections, ring)
    for keep in _SECTIONS:
        candidate = {"algorithm": algorithm, **{k: sections[k] for k in keep if k in sections}}
        try:
            return parse_spec(name, namespace, candidate)
        except SpecError:
            continue
    return parse_spec(name, namespace, {"algorithm": "RS256"})


def _algorithm(raw: Mapping[str, object], ring: Ring | None) -> str:
    """The keys' own algorithm first: it is what the material in the Secret is."""
    if ring is not None:
        for key in ring.keys:
            if key.algorithm in ALGORITHMS:
                return key.algorithm
    value = raw.get("algorithm")
    return value if isinstance(value, str) and value in ALGORITHMS else "RS256"
