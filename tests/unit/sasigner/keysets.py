"""A keyset as the operator leaves it: the JwtKeySet's spec, its ring and the Secret (API JSON form),
built from real keys, for the signer's unit tests."""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from keyturn.domain.annotations import KEYSET_LABEL, STATE_ANNOTATION
from keyturn.domain.layout import material_item
from keyturn.domain.model import Key, KeyState, Ring
from keyturn.domain.record import dumps
from keyturn.domain.spec import Spec
from keyturn.domain.spec_parser import parse_spec
from keyturn.keys import new_keys
from keyturn.keys.material import KeyMaterial
from keyturn.keys.pem import load_private_pem

NAMESPACE, NAME = "kube-system", "service-accounts"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SPEC: dict[str, Any] = {
    "algorithm": "ES256",
    "rotation": {"interval": "1d", "publishAhead": "1h", "gracePeriod": "2d", "retention": "3d"},
    "tokens": {"maxLifetime": "1d"},
}
PASSPHRASE = b"a-long-random-passphrase-0123456789"


def b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


@dataclass
class Keyset:
    """One keyset's objects; `secret` and `spec_document` may be damaged by a test at will."""

    spec_document: dict[str, Any]
    spec: Spec
    ring: Ring
    stored: dict[str, str] = field(repr=False)  # kid -> the Secret's PEM
    passphrase: bytes | None = None

    def material(self, kid: str) -> KeyMaterial:
        return load_private_pem(self.stored[kid], self.passphrase, self.ring_key(kid).algorithm)

    def ring_key(self, kid: str) -> Key:
        key = self.ring.find(kid)
        assert key is not None
        return key

    @property
    def current(self) -> Key:
        assert self.ring.current is not None
        return self.ring.current

    def secret(self, *, record: str | None = None) -> dict[str, Any]:
        """The Secret as read from the API (sanitized JSON: base64 data)."""
        return {
            "metadata": {
                "name": self.spec.secret.name,
                "namespace": NAMESPACE,
                "labels": {KEYSET_LABEL: NAME, "app.kubernetes.io/managed-by": "keyturn"},
                "annotations": {STATE_ANNOTATION: dumps(self.ring) if record is None else record},
                "resourceVersion": "42",
            },
            "data": {
                material_item(kid, symmetric=False): b64(pem)
                for kid, pem in self.stored.items()
                if self.ring_key(kid).has_material
            },
        }

    def passphrase_secret(self) -> dict[str, Any] | None:
        if self.passphrase is None:
            return None
        return {"metadata": {"name": "pass"}, "data": {"passphrase": b64(self.passphrase)}}


def _key(fresh: new_keys.Generated, state: KeyState, index: int) -> Key:
    created = T0 - timedelta(days=3 - index)
    demoted = state in (KeyState.PREVIOUS, KeyState.FAILED)
    return Key(
        kid=fresh.fresh.kid,
        state=state,
        algorithm=fresh.fresh.algorithm,
        serial=fresh.fresh.serial,
        created_at=created,
        published_at=created,
        activated_at=created + timedelta(hours=1) if state is not KeyState.NEXT else None,
        demoted_at=T0 - timedelta(hours=1) if demoted else None,
        remove_from_jwks_at=T0 + timedelta(days=2) if demoted else None,
        public_jwk=fresh.fresh.public_jwk,
        fingerprint=fresh.fresh.fingerprint,
    )


def keyset(
    states: tuple[KeyState, ...] = (KeyState.PREVIOUS, KeyState.CURRENT, KeyState.NEXT),
    *,
    encrypted: bool = False,
    **spec_overrides: Any,
) -> Keyset:
    """Keys in `states` (oldest first), generated for the spec (SPEC with `spec_overrides`)."""
    document = copy.deepcopy(SPEC) | spec_overrides
    if encrypted:
        document["secret"] = {"encryption": {"passphraseSecretRef": {"name": "pass", "key": "passphrase"}}}
    generating = parse_spec(NAME, NAMESPACE, document)
    passphrase = PASSPHRASE if encrypted else None
    generated = new_keys.generate(
        generating, first_serial=1, count=len(states), now=T0, passphrase=passphrase, taken=set()
    )
    keys = tuple(_key(g, state, i) for i, (g, state) in enumerate(zip(generated, states, strict=True)))
    spec = parse_spec(NAME, NAMESPACE, json.loads(json.dumps(document)))
    return Keyset(
        spec_document=document,
        spec=spec,
        ring=Ring(keys=keys, serial=len(keys)),
        stored={g.fresh.kid: g.stored for g in generated},
        passphrase=passphrase,
    )
