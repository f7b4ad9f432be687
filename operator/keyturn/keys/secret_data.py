"""The Secret's data as a pure function of the ring and the stored material.

Deterministic on purpose: the same ring renders the same bytes, so nothing due means no write.
Stored PEMs are copied as they are (never re-encrypted, which would change their bytes).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache

from keyturn.domain.layout import material_item, placements
from keyturn.domain.model import Key, Ring
from keyturn.domain.spec import Spec
from keyturn.keys.algorithms import is_symmetric
from keyturn.keys.jwk import private_jwk
from keyturn.keys.material import KeyMaterial, load_raw_secret
from keyturn.keys.pem import is_encrypted_pem, load_private_pem, public_pem_from_jwk
from keyturn.keys.thumbprints import secret_fingerprint

__all__ = ["MissingMaterial", "material_problems", "render"]


class MissingMaterial(RuntimeError):
    """The record names a key whose private material is not in the Secret, or that material (or the
    record's public key) does not load: either way the Secret was damaged by hand."""


def render(spec: Spec, ring: Ring, stored: Mapping[str, str], *, lenient: bool = False) -> dict[str, str]:
    """Material of every key that still has some, plus the configured items.

    `lenient` (the emergency path of a keyset whose Secret was damaged by hand): a key without its
    material is left out instead of failing the write, and an item that needs it (or that cannot be
    rendered from it) keeps what the Secret holds, so a revocation still lands and nothing more is lost.
    """
    data: dict[str, str] = {}
    missing: set[str] = set()
    for key in ring.keys:
        if key.has_material:
            item = material_item(key.kid, is_symmetric(key.algorithm))
            if item in stored:
                data[item] = stored[item]
            elif lenient:
                missing.add(key.kid)
            else:
                raise MissingMaterial(f"the Secret has no material for key {key.kid} ({item})")
    for placement in placements(ring, spec.secret.items):
        name = placement.item.key
        if missing & {k.kid for k in placement.keys}:
            if name in stored:
                data[name] = stored[name]
            continue
        try:
            data[name] = _format(placement.item.format, placement.keys, stored)
        except ItemMismatch:
            raise  # the spec asks for something the key has not: not damage, a spec the CRD refuses
        except ValueError as exc:  # crypto's loaders raise only ValueError; their text stays out
            if lenient:
                if name in stored:
                    data[name] = stored[name]
                continue
            kids = ", ".join(k.kid for k in placement.keys)
            raise MissingMaterial(
                f"the Secret's item {name} cannot be rendered: the private material or the recorded "
                f"public key of {kids} does not load ({type(exc).__name__})"
            ) from None
    return data


class ItemMismatch(ValueError):
    """An item the key cannot have (public-pem of an HMAC key, an unknown format)."""


def _stored(key: Key, stored: Mapping[str, str]) -> str:
    return stored[material_item(key.kid, is_symmetric(key.algorithm))]


def _format(fmt: str, keys: tuple[Key, ...], stored: Mapping[str, str]) -> str:
    if fmt == "jwks":
        return json.dumps({"keys": [_private_jwk(k, _stored(k, stored)) for k in keys]}, sort_keys=True)
    (key,) = keys
    if fmt == "kid":
        return key.kid
    if fmt in ("pem", "raw"):
        return _stored(key, stored)
    if fmt == "public-pem":
        if key.public_jwk is None:
            raise ItemMismatch(f"{key.kid} is an HMAC key: it has no public PEM")
        return public_pem_from_jwk(dict(key.public_jwk), key.algorithm)
    if fmt == "jwk":
        return json.dumps(_private_jwk(key, _stored(key, stored)), sort_keys=True)
    raise ItemMismatch(f"unknown item format {fmt!r}")


def _private_jwk(key: Key, stored: str) -> dict[str, str]:
    return dict(_private_jwk_cached(key.kid, key.algorithm, stored))


@lru_cache(maxsize=256)
def _private_jwk_cached(kid: str, algorithm: str, stored: str) -> tuple[tuple[str, str], ...]:
    """Parsing an RSA PEM costs milliseconds; cache by content (never logged, never persisted)."""
    material: KeyMaterial
    if is_symmetric(algorithm):
        material = load_raw_secret(stored, algorithm)
    else:
        material = load_private_pem(stored, None, algorithm)
    return tuple(sorted(private_jwk(material, kid).items()))


def material_problems(ring: Ring, stored: Mapping[str, str], passphrase: bytes | None) -> dict[str, str]:
    """Kids whose stored material does not load, or is not the key the record describes (its
    fingerprint differs): the Secret was edited by hand. Absent items are not judged here.

    An encrypted PEM without its passphrase cannot be judged and passes (PassphraseMissing says so).
    """
    problems: dict[str, str] = {}
    for key in ring.keys:
        text = stored.get(material_item(key.kid, is_symmetric(key.algorithm))) if key.has_material else None
        if text is None:
            continue
        if not is_symmetric(key.algorithm) and is_encrypted_pem(text) and passphrase is None:
            continue
        found = _fingerprint(key.algorithm, text, passphrase)
        if found is None:
            problems[key.kid] = "its private key does not load"
        elif key.fingerprint and found != key.fingerprint:
            problems[key.kid] = "its private key is not the one the record describes"
    return problems


@lru_cache(maxsize=4096)
def _fingerprint(algorithm: str, text: str, passphrase: bytes | None) -> str | None:
    """The audit fingerprint of stored material, None when it does not load (cached by content:
    an unchanged Secret is judged once)."""
    try:
        material = (
            load_raw_secret(text, algorithm)
            if is_symmetric(algorithm)
            else load_private_pem(text, passphrase, algorithm)
        )
    except ValueError:
        return None
    return secret_fingerprint(material)
