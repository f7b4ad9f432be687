"""keyturn.keys.algorithms: the algorithm table is the contract's, and nothing else (none!) gets in."""

from __future__ import annotations

import pytest

from keyturn.domain import spec
from keyturn.keys.algorithms import ALGORITHMS, FAMILY, RSA_KEY_SIZES, family, hash_size, is_symmetric
from keyturn.keys.generation import generate
from unit.keys.support import CONTRACT_ALGORITHMS, SYMMETRIC


def test_algorithm_table_matches_contract() -> None:
    assert list(ALGORITHMS) == CONTRACT_ALGORITHMS
    assert {a: family(a) for a in CONTRACT_ALGORITHMS} == {
        **dict.fromkeys(["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"], "RSA"),
        **dict.fromkeys(["ES256", "ES384", "ES512"], "EC"),
        "EdDSA": "OKP",
        **dict.fromkeys(SYMMETRIC, "HMAC"),
    }
    assert [hash_size(a) for a in ["HS256", "HS384", "HS512", "ES384", "PS512"]] == [
        32,
        48,
        64,
        48,
        64,
    ]
    assert [a for a in CONTRACT_ALGORITHMS if is_symmetric(a)] == SYMMETRIC


def test_family_table_is_immutable() -> None:
    with pytest.raises(TypeError):
        FAMILY["none"] = "HMAC"  # type: ignore[index]


@pytest.mark.parametrize(
    "alg", ["none", "None", "NONE", " none", "RS1", "rs256", "ES256K", "Ed448", "HS128", ""]
)
def test_unknown_and_none_algorithms_are_rejected(alg: str) -> None:
    with pytest.raises(ValueError, match="algorithm"):
        generate(alg)
    with pytest.raises(ValueError, match="algorithm"):
        family(alg)


def test_the_spec_parser_accepts_exactly_these_algorithms() -> None:
    """domain/spec.py derives its sets from this table; the views must say the same."""
    assert set(ALGORITHMS) == spec.ALGORITHMS
    assert {a for a in ALGORITHMS if is_symmetric(a)} == spec.HMAC_ALGORITHMS
    assert {a for a in ALGORITHMS if family(a) == "RSA"} == spec.RSA_ALGORITHMS
    assert {a for a in ALGORITHMS if family(a) == "EC"} == spec.EC_ALGORITHMS
    assert {a: hash_size(a) for a in ALGORITHMS if is_symmetric(a)} == spec.HMAC_MIN_BYTES
    assert spec.RSA_SIZES == RSA_KEY_SIZES
