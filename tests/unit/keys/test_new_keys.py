"""keyturn.keys.new_keys: the fresh keys of a pass, their kids, and reprs that never show the material."""

from __future__ import annotations

import pytest

from keyturn.domain.model import FreshKey
from keyturn.keys import new_keys
from keyturn.keys.algorithms import is_symmetric
from keyturn.keys.generation import generate
from keyturn.keys.jwk import public_jwk
from keyturn.keys.material import KeyMaterial
from planning import T0, spec
from redaction import REPR_ALGORITHMS, assert_hidden, stored


@pytest.fixture(scope="module", params=REPR_ALGORITHMS)
def material(request: pytest.FixtureRequest) -> KeyMaterial:
    return generate(request.param)


def test_template_kids_skip_serials_whose_kid_was_revoked() -> None:
    template = spec(algorithm="ES256", kid={"strategy": "Template", "template": "{date}_v{n}_prod"})
    made = new_keys.generate(
        template,
        first_serial=1,
        count=2,
        now=T0,
        passphrase=None,
        taken={"20260301_v1_prod", "20260301_v2_prod"},
    )
    assert [g.fresh.kid for g in made] == ["20260301_v3_prod", "20260301_v4_prod"]
    assert [g.fresh.serial for g in made] == [3, 4]


def test_a_generated_key_never_shows_its_material(material: KeyMaterial) -> None:
    public = None if is_symmetric(material.algorithm) else public_jwk(material, "k")
    generated = new_keys.Generated(FreshKey("k", material.algorithm, 1, public, "fp"), stored(material))
    assert_hidden(generated, material)
    assert "kid='k'" in repr(generated)
