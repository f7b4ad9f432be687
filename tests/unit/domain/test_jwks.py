"""domain/jwks.py: the JWKS document a ring publishes, rendered to the same bytes whatever the key order."""

from __future__ import annotations

from datetime import timedelta

from keyturn.domain import jwks, record
from planning import T0, initialized, step

DAY = timedelta(days=1)


def test_documents_render_identically_after_a_round_trip_through_the_secret_record() -> None:
    # A fresh key's JWK (insertion order) and the same key reloaded from the record (sorted keys)
    # must render the same bytes, or every rotation would cost an extra ConfigMap write.
    the_spec, ring = initialized()
    fresh = step(the_spec, ring, T0 + DAY).ring
    shuffled = fresh.evolve(
        keys=tuple(
            k.evolve(public_jwk=dict(reversed(list(k.public_jwk.items())))) if k.public_jwk else k
            for k in fresh.keys
        )
    )
    reloaded = record.loads(record.dumps(shuffled))
    assert (
        jwks.render(jwks.build(shuffled))
        == jwks.render(jwks.build(reloaded))
        == jwks.render(jwks.build(fresh))
    )
