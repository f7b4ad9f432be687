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


MAX_DOCUMENT = 1 << 20  # a ConfigMap holds at most 1 MiB


def kids_of(text: object) -> list[str] | None:
    """The kids a published document lists, or None when it is not a JWKS this module wrote."""
    if not isinstance(text, str) or len(text) > MAX_DOCUMENT:
        return None
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        return None
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list):
        return None
    kids = [k.get("kid") for k in keys if isinstance(k, dict)]
    if len(kids) != len(keys) or not all(isinstance(kid, str) for kid in kids):
        return None
    return [str(kid) for kid in kids]
