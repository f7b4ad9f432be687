"""New keys for the ring (domain `FreshKey`s): generated, named, self-tested and serialized for the Secret.

Blocking (RSA-4096 takes up to a second), so the executor runs it in a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from keyturn.domain.model import FreshKey
from keyturn.domain.spec import KidStrategy, Spec
from keyturn.keys import generation
from keyturn.keys.algorithms import is_symmetric
from keyturn.keys.jwk import public_jwk
from keyturn.keys.kid_templates import render_kid_template
from keyturn.keys.material import KeyMaterial, raw_secret
from keyturn.keys.pem import private_pem
from keyturn.keys.self_test import self_test
from keyturn.keys.thumbprints import secret_fingerprint, thumbprint

__all__ = ["MAX_SERIAL_SKIPS", "Generated", "generate"]

MAX_SERIAL_SKIPS = 1000


@dataclass(frozen=True)
class Generated:
    fresh: FreshKey
    # What the Secret stores for this key: PKCS#8 PEM (encrypted with a passphrase) or HMAC secret.
    # Never in a repr (the explicit __repr__ below says so too) nor compared.
    stored: str = field(repr=False, compare=False)

    def __repr__(self) -> str:
        return f"Generated(kid={self.fresh.kid!r}, <material redacted>)"


def generate(
    spec: Spec, *, first_serial: int, count: int, now: datetime, passphrase: bytes | None, taken: set[str]
) -> list[Generated]:
    """`taken` holds every kid ever used (live and revoked): a kid is never reused.

    A template kid that is taken (a keyset starting over after its Secret was lost, with old kids in
    spec.revokedKids) moves on to the next serial; a thumbprint never collides.
    """
    out: list[Generated] = []
    serial = first_serial - 1
    for _ in range(count):
        material = generation.generate(
            spec.algorithm, key_size=spec.key_size, secret_length=spec.secret_length
        )
        for _attempt in range(MAX_SERIAL_SKIPS):
            serial += 1
            kid = _kid(spec, material, serial, now)
            if kid not in taken:
                break
        else:
            raise ValueError(f"no unused kid after {MAX_SERIAL_SKIPS} serials; check kid.template")
        self_test(material, kid)
        taken.add(kid)
        symmetric = is_symmetric(spec.algorithm)
        stored = raw_secret(material) if symmetric else private_pem(material, passphrase)
        out.append(
            Generated(
                FreshKey(
                    kid=kid,
                    algorithm=spec.algorithm,
                    serial=serial,
                    public_jwk=None if symmetric else public_jwk(material, kid),
                    fingerprint=secret_fingerprint(material),
                ),
                stored,
            )
        )
    return out


def _kid(spec: Spec, material: KeyMaterial, serial: int, now: datetime) -> str:
    if spec.kid_strategy is KidStrategy.TEMPLATE and spec.kid_template:
        return render_kid_template(
            spec.kid_template, now=now, n=serial, name=spec.name, namespace=spec.namespace
        )
    return thumbprint(material)
