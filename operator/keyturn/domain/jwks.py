"""The published JWKS document (RFC 7517): public parameters only, current key first."""

from __future__ import annotations

import json
from typing import Any

from keyturn.domain.model import Ring

PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


def build(ring: Ring) -> dict[str, Any]:
    """Every key verifiers must accept, in the order current, next, previous/failed (newest first)."""
    keys = []
    for key in ring.verifying():
        if key.public_jwk is None:
            continue  # an HMAC key is never published
        jwk = dict(key.public_jwk)
        leaked = PRIVATE_MEMBERS & jwk.keys()
        if leaked:
            raise ValueError(f"refusing to publish private member(s) {sorted(leaked)} of {key.kid}")
        keys.append(jwk)
    return {"keys": keys}


def render(document: dict[str, Any]) -> str:
    """Stable text, so an unchanged key set never rewrites the ConfigMap."""
    return json.dumps(document, indent=2, sort_keys=True) + "\n"
