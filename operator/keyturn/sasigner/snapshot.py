"""What the signer serves, read from the JwtKeySet and its Secret (or the cache file): a Snapshot.

Everything read here comes from outside (objects anyone with write access could damage, a file
on disk), so reading is total: a Snapshot, or a KeysetRefused / SecretUnusable naming the object
and the field. The current key's material is checked against the record before it may sign: it
must load, be the key the record's fingerprint names and have the public key the record
publishes. No message ever quotes key material or a loader's text about it.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from keyturn.domain.annotations import KEYSET_LABEL, STATE_ANNOTATION
from keyturn.domain.layout import material_item
from keyturn.domain.model import Ring
from keyturn.domain.record import RecordError, loads
from keyturn.domain.spec import Spec, SpecError
from keyturn.domain.spec_parser import parse_spec
from keyturn.keys.detached import material_spki_der, spki_der
from keyturn.keys.material import KeyMaterial
from keyturn.keys.pem import is_encrypted_pem, load_private_pem
from keyturn.keys.thumbprints import secret_fingerprint
from keyturn.sasigner import rules
from keyturn.sasigner.errors import KeysetRefused, SecretUnusable

MAX_PEM = 64 * 1024  # a 4096-bit RSA PKCS#8 PEM is about 3.3 KiB


@dataclass(frozen=True)
class PublicKey:
    """One verification key as FetchKeys sends it: PKIX DER, and whether the OIDC JWKS lists it."""

    kid: str
    der: bytes = field(repr=False)
    exclude_from_oidc_discovery: bool = False


@dataclass(frozen=True, eq=False)
class Snapshot:
    """One keyset's keys as the signer serves them. The private key is only in `signing`, whose
    repr is redacted; the record and the spec hold public facts only."""

    namespace: str
    name: str
    spec_document: Mapping[str, Any] = field(repr=False)  # the JwtKeySet's spec, for the cache
    spec: Spec = field(repr=False)
    record: str = field(repr=False)  # the Secret's keyturn.dev/state annotation, as it was
    ring: Ring = field(repr=False)
    signing_kid: str
    signing: KeyMaterial
    verifying: tuple[PublicKey, ...]
    fetched_at: datetime  # when it was read from the API server (for a cache: when that was)
    resource_version: str  # the Secret's

    @property
    def algorithm(self) -> str:
        return self.signing.algorithm

    @property
    def kids(self) -> tuple[str, ...]:
        return tuple(k.kid for k in self.verifying)

    def same_keys(self, other: Snapshot | None) -> bool:
        """Whether `other` serves the same thing (when it was read aside), i.e. no cache write is due."""
        return (
            other is not None
            and other.record == self.record
            and other.spec_document == self.spec_document
            and secret_fingerprint(other.signing) == secret_fingerprint(self.signing)
        )


def _kind(value: object) -> str:
    return "nothing" if value is None else type(value).__name__


def keyset_spec(namespace: str, name: str, keyset: object) -> tuple[dict[str, Any], Spec]:
    """The JwtKeySet's spec as JSON (for the cache) and typed, or KeysetRefused naming the field."""
    where = f"JwtKeySet {namespace}/{name}"
    if not isinstance(keyset, Mapping):
        raise KeysetRefused(f"{where}: not an object ({_kind(keyset)})")
    raw = keyset.get("spec")
    if not isinstance(raw, Mapping):
        raise KeysetRefused(f"{where}: spec must be an object, not {_kind(raw)}")
    try:
        document = json.loads(json.dumps(raw))  # a plain JSON copy: what the cache stores
        spec = parse_spec(name, namespace, document)
    except (SpecError, ValueError, TypeError, RecursionError) as exc:
        detail = str(exc) if isinstance(exc, SpecError) else "spec is not JSON data"
        raise KeysetRefused(f"{where}: {detail}") from None
    rules.check_servable(spec)
    return document, spec


def _text_items(where: str, data: object) -> dict[str, str]:
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise SecretUnusable(f"{where}: data must be an object, not {_kind(data)}")
    items: dict[str, str] = {}
    for key, value in data.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise SecretUnusable(f"{where}: data items must be base64 strings")
        try:
            items[key] = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue  # not text: no item the signer reads is binary; judged if it is one of them
    return items


def _metadata(where: str, secret: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any], str]:
    meta = secret.get("metadata")
    if not isinstance(meta, Mapping):
        raise SecretUnusable(f"{where}: has no metadata")
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    if not isinstance(labels, Mapping) or not isinstance(annotations, Mapping):
        raise SecretUnusable(f"{where}: labels and annotations must be objects")
    return dict(labels), dict(annotations), str(meta.get("resourceVersion") or "")


def from_secret(
    spec_document: dict[str, Any],
    spec: Spec,
    secret: object,
    passphrase_secret: object,
    fetched_at: datetime,
) -> Snapshot:
    """The Snapshot of a keyset from its Secret (the API's JSON form: base64 `data`)."""
    where = f"Secret {spec.namespace}/{spec.secret.name}"
    if secret is None:
        raise SecretUnusable(f"{where} (spec.secret.name) does not exist yet: the operator creates it")
    if not isinstance(secret, Mapping):
        raise SecretUnusable(f"{where}: not an object ({_kind(secret)})")
    labels, annotations, resource_version = _metadata(where, secret)
    if labels.get(KEYSET_LABEL) != spec.name:
        raise SecretUnusable(
            f"{where}: is not the Secret Keyturn keeps for JwtKeySet {spec.name} "
            f"(label {KEYSET_LABEL} is {str(labels.get(KEYSET_LABEL))[:64]!r})"
        )
    record = annotations.get(STATE_ANNOTATION)
    if not isinstance(record, str):
        raise SecretUnusable(f"{where}: has no key record (annotation {STATE_ANNOTATION})")
    items = _text_items(where, secret.get("data"))
    ring = _ring(where, record)
    signing = rules.signing_key(ring)
    pem = items.get(material_item(signing.kid, symmetric=False)) if signing is not None else None
    passphrase = _passphrase(spec, passphrase_secret) if pem is not None and is_encrypted_pem(pem) else None
    return assemble(spec_document, spec, record, pem, passphrase, fetched_at, resource_version, where=where)


def _passphrase(spec: Spec, secret: object) -> bytes:
    ref = spec.secret.passphrase
    if ref is None:
        raise SecretUnusable(
            f"Secret {spec.namespace}/{spec.secret.name}: the current key is encrypted, but the keyset "
            "names no spec.secret.encryption.passphraseSecretRef"
        )
    where = f"Secret {spec.namespace}/{ref.name} (spec.secret.encryption.passphraseSecretRef)"
    if secret is None:
        raise SecretUnusable(f"{where} does not exist")
    if not isinstance(secret, Mapping):
        raise SecretUnusable(f"{where}: not an object ({_kind(secret)})")
    data = secret.get("data")
    value = data.get(ref.key) if isinstance(data, Mapping) else None
    if not isinstance(value, str):
        raise SecretUnusable(f"{where} has no item {ref.key}")
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise SecretUnusable(f"{where}: item {ref.key} is not base64") from None
    if not decoded:
        raise SecretUnusable(f"{where}: item {ref.key} is empty")
    return decoded


def _ring(where: str, record: str) -> Ring:
    try:
        return loads(record)
    except RecordError as exc:
        raise SecretUnusable(f"{where}: annotation {STATE_ANNOTATION}: {exc}") from None


def assemble(
    spec_document: dict[str, Any],
    spec: Spec,
    record: str,
    pem: str | None,
    passphrase: bytes | None,
    fetched_at: datetime,
    resource_version: str,
    *,
    where: str,
) -> Snapshot:
    """Check the record and the current key's PEM against each other (from a Secret or the cache)."""
    ring = _ring(where, record)
    current = ring.current
    if current is None:
        raise SecretUnusable(f"{where}: the record has no current key yet (the operator makes one)")
    signing_kid = current.kid
    if rules.signing_key(ring) is None:
        raise KeysetRefused(
            f"{where}: the current key {signing_kid} is {current.algorithm}; kube-apiserver accepts "
            f"only {', '.join(rules.SUPPORTED_ALGORITHMS)}"
        )
    item = material_item(signing_kid, symmetric=False)
    if pem is None:
        raise SecretUnusable(f"{where}: has no item {item}, the private key of the current key {signing_kid}")
    if len(pem) > MAX_PEM:
        raise SecretUnusable(f"{where}: item {item} is larger than {MAX_PEM} bytes")
    material = _load(where, item, pem, passphrase, current.algorithm)
    if current.fingerprint and secret_fingerprint(material) != current.fingerprint:
        raise SecretUnusable(f"{where}: item {item} is not the key the record describes (fingerprint)")
    verifying = _verifying(where, ring)
    published = next((k for k in verifying if k.kid == signing_kid), None)
    if published is None or published.der != material_spki_der(material):
        raise SecretUnusable(
            f"{where}: item {item} does not match the public key the record publishes for {signing_kid}"
        )
    return Snapshot(
        namespace=spec.namespace,
        name=spec.name,
        spec_document=spec_document,
        spec=spec,
        record=record,
        ring=ring,
        signing_kid=signing_kid,
        signing=material,
        verifying=verifying,
        fetched_at=fetched_at,
        resource_version=resource_version,
    )


def _load(where: str, item: str, pem: str, passphrase: bytes | None, algorithm: str) -> KeyMaterial:
    try:
        return load_private_pem(pem, passphrase, algorithm)
    except (ValueError, TypeError, UnicodeError):
        hint = "the wrong passphrase or a damaged PEM" if passphrase else "a damaged PEM"
        raise SecretUnusable(
            f"{where}: item {item} does not load as a {algorithm} private key ({hint})"
        ) from None


def _verifying(where: str, ring: Ring) -> tuple[PublicKey, ...]:
    keys = []
    for key in rules.verifying_keys(ring):
        if key.public_jwk is None:
            raise SecretUnusable(f"{where}: the record has no public key (publicJwk) for {key.kid}")
        try:
            der = spki_der(key.public_jwk, key.algorithm)
        except ValueError:
            raise SecretUnusable(
                f"{where}: the record's publicJwk of {key.kid} is not a valid {key.algorithm} public key"
            ) from None
        keys.append(PublicKey(key.kid, der))
    return tuple(keys)
