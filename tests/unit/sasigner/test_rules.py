"""sasigner/rules.py: which keys FetchKeys returns for a ring, the refresh hint, the header, the lifetime."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from keyturn.domain.model import Key, KeyState, Ring
from keyturn.domain.spec import Spec
from keyturn.domain.spec_parser import parse_spec
from keyturn.sasigner import rules
from keyturn.sasigner.errors import KeysetRefused

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ROTATION = {"interval": "1d", "publishAhead": "1h", "gracePeriod": "2d", "retention": "3d"}


def spec(**overrides: Any) -> Spec:
    return parse_spec(
        "keys", "kube-system", {"rotation": ROTATION, "tokens": {"maxLifetime": "1d"}, **overrides}
    )


def key(kid: str, state: KeyState, algorithm: str = "RS256", **times: datetime) -> Key:
    made = Key(
        kid=kid, state=state, algorithm=algorithm, serial=int(kid[1:]), created_at=T0 - timedelta(days=9)
    )
    return made.evolve(**times)


S = KeyState


# ------------------------------------------------------------------------------------ FetchKeys' keys
@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        pytest.param([key("k1", S.CURRENT)], ["k1"], id="the first key alone"),
        pytest.param(
            [key("k1", S.CURRENT), key("k2", S.NEXT)], ["k1", "k2"], id="next is published before it signs"
        ),
        pytest.param(
            [key("k1", S.PREVIOUS, demoted_at=T0), key("k2", S.CURRENT), key("k3", S.NEXT)],
            ["k2", "k3", "k1"],
            id="a demoted key stays for its grace",
        ),
        pytest.param(
            [key("k1", S.FAILED, demoted_at=T0), key("k2", S.CURRENT)],
            ["k2", "k1"],
            id="a failed key still verifies during its grace",
        ),
        pytest.param(
            [key("k1", S.RETIRED), key("k2", S.CURRENT)], ["k2"], id="a retired key is gone (grace over)"
        ),
        pytest.param(
            [key("k1", S.REVOKED), key("k2", S.CURRENT), key("k3", S.REVOKED)],
            ["k2"],
            id="a revoked key is gone at once",
        ),
        pytest.param(
            [
                key("k1", S.PREVIOUS, demoted_at=T0 - timedelta(days=1)),
                key("k2", S.PREVIOUS, demoted_at=T0),
                key("k3", S.CURRENT),
            ],
            ["k3", "k2", "k1"],
            id="demoted keys newest first",
        ),
        pytest.param(
            [key("k1", S.PREVIOUS, "PS256", demoted_at=T0), key("k2", S.CURRENT)],
            ["k2"],
            id="a key kube-apiserver cannot use is left out",
        ),
        pytest.param([], [], id="no keys yet"),
    ],
)
def test_verifying_keys_for_a_ring(keys: list[Key], expected: list[str]) -> None:
    assert [k.kid for k in rules.verifying_keys(Ring(keys=tuple(keys)))] == expected


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        pytest.param([key("k1", S.CURRENT), key("k2", S.NEXT)], "k1", id="the current key signs"),
        pytest.param([key("k1", S.NEXT)], None, id="a next key never signs"),
        pytest.param([key("k1", S.PREVIOUS)], None, id="nor a previous one"),
        pytest.param(
            [key("k1", S.CURRENT, "PS256")], None, id="nor one of an algorithm the apiserver refuses"
        ),
    ],
)
def test_signing_key(keys: list[Key], expected: str | None) -> None:
    found = rules.signing_key(Ring(keys=tuple(keys)))
    assert (found.kid if found else None) == expected


# ------------------------------------------------------------------------------------ the refresh hint
ACTIVE = key("k2", S.CURRENT, activated_at=T0 - timedelta(hours=23, minutes=59, seconds=50))


@pytest.mark.parametrize(
    ("keys", "now", "expected"),
    [
        pytest.param(
            [key("k1", S.CURRENT, activated_at=T0)], T0, rules.MAX_REFRESH_HINT, id="nothing scheduled"
        ),
        pytest.param(
            [ACTIVE, key("k3", S.NEXT, published_at=T0 - timedelta(days=1))],
            T0,
            rules.MAX_REFRESH_HINT,  # 10 s + the slack is over the bound
            id="an activation in 10 s: bounded to the maximum",
        ),
        pytest.param(
            [ACTIVE, key("k3", S.NEXT, published_at=T0 - timedelta(days=1))],
            T0 + timedelta(seconds=6),
            5,
            id="an activation in 4 s: just after it",
        ),
        pytest.param(
            [ACTIVE, key("k3", S.NEXT, published_at=T0 - timedelta(days=1))],
            T0 + timedelta(seconds=9, milliseconds=900),
            2,
            id="an activation in 100 ms: rounded up, plus the slack",
        ),
        pytest.param(
            [ACTIVE, key("k3", S.NEXT, published_at=T0 - timedelta(days=1))],
            T0 + timedelta(minutes=5),
            rules.MAX_REFRESH_HINT,
            id="an overdue activation (held) gives no hint",
        ),
        pytest.param(
            [key("k1", S.PREVIOUS, remove_from_jwks_at=T0 + timedelta(seconds=3)), key("k2", S.CURRENT)],
            T0,
            4,
            id="a grace ending in 3 s",
        ),
        pytest.param(
            [key("k1", S.FAILED, remove_from_jwks_at=T0 + timedelta(seconds=2)), key("k2", S.CURRENT)],
            T0,
            3,
            id="a failed key's grace ending in 2 s",
        ),
        pytest.param(
            [key("k1", S.PREVIOUS, remove_from_jwks_at=T0 - timedelta(seconds=1)), key("k2", S.CURRENT)],
            T0,
            rules.MAX_REFRESH_HINT,
            id="a grace over but not yet acted on gives no hint",
        ),
        pytest.param(
            [key("k1", S.RETIRED, remove_from_jwks_at=T0 + timedelta(seconds=2)), key("k2", S.CURRENT)],
            T0,
            rules.MAX_REFRESH_HINT,
            id="a retired key changes nothing",
        ),
    ],
)
def test_refresh_hint(keys: list[Key], now: datetime, expected: int) -> None:
    hint = rules.refresh_hint_seconds(spec(), Ring(keys=tuple(keys)), now)
    assert hint == expected
    assert rules.MIN_REFRESH_HINT <= hint <= rules.MAX_REFRESH_HINT  # the apiserver refuses <= 0


def test_a_suspended_keyset_schedules_no_activation() -> None:
    ring = Ring(keys=(ACTIVE, key("k3", S.NEXT, published_at=T0 - timedelta(days=1))))
    now = T0 + timedelta(seconds=6)
    assert rules.refresh_hint_seconds(spec(), ring, now) == 5
    assert rules.refresh_hint_seconds(spec(suspend=True), ring, now) == rules.MAX_REFRESH_HINT


# ------------------------------------------------------------------------------------ the header
def _decoded(header: str) -> Any:
    assert "=" not in header
    return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))


@pytest.mark.parametrize("algorithm", rules.SUPPORTED_ALGORITHMS)
def test_the_header_is_alg_kid_and_typ_jwt_only(algorithm: str) -> None:
    header = rules.header(algorithm, "kid-1")
    assert list(_decoded(header).items()) == [("alg", algorithm), ("kid", "kid-1"), ("typ", "JWT")]


@pytest.mark.parametrize(
    ("algorithm", "kid"),
    [("PS256", "k"), ("HS256", "k"), ("none", "k"), ("RS256", ""), ("RS256", "k" * 1025)],
    ids=["PS256", "HS256", "none", "empty kid", "kid over 1024 characters"],
)
def test_a_header_the_apiserver_would_refuse_is_never_made(algorithm: str, kid: str) -> None:
    with pytest.raises(ValueError, match=r"kube-apiserver|kid"):
        rules.header(algorithm, kid)


# ------------------------------------------------------------------------------------ what is served
@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param({}, 86400, id="tokens.maxLifetime 1d"),
        pytest.param({"tokens": {"maxLifetime": "10m"}}, 600, id="the apiserver's minimum"),
        pytest.param({"tokens": {"maxLifetime": "8760h"}}, 31536000, id="a year"),
    ],
)
def test_metadata_is_tokens_max_lifetime(overrides: dict[str, Any], expected: int) -> None:
    assert rules.max_token_expiration_seconds(spec(**overrides)) == expected


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param({"tokens": {}}, "maxLifetime is not set", id="maxLifetime unset"),
        pytest.param({"tokens": {"verifierCacheTTL": "5m"}}, "maxLifetime is not set", id="only a cache TTL"),
        pytest.param({"tokens": {"maxLifetime": "9m59s"}}, "shorter than the 10m", id="under 10 minutes"),
        pytest.param({"algorithm": "PS256"}, "spec.algorithm PS256", id="PS256"),
        pytest.param({"algorithm": "RS384"}, "spec.algorithm RS384", id="RS384"),
        pytest.param({"algorithm": "EdDSA"}, "spec.algorithm EdDSA", id="EdDSA"),
        pytest.param({"algorithm": "HS256"}, "spec.algorithm HS256", id="HMAC"),
    ],
)
def test_a_keyset_the_apiserver_cannot_use_is_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(KeysetRefused, match=message) as raised:
        rules.check_servable(spec(**overrides))
    assert "kube-system/keys" in str(raised.value)


@pytest.mark.parametrize("algorithm", rules.SUPPORTED_ALGORITHMS)
def test_every_algorithm_the_apiserver_accepts_is_served(algorithm: str) -> None:
    rules.check_servable(spec(algorithm=algorithm))


def test_the_supported_algorithms_are_kube_apiservers() -> None:
    """The plugin's own list (k8s.io/kubernetes pkg/serviceaccount/externaljwt/plugin)."""
    assert set(rules.SUPPORTED_ALGORITHMS) == {"RS256", "ES256", "ES384", "ES512"}
