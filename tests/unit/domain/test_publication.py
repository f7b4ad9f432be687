"""What the JWKS ConfigMap carries for `keyturn serve-jwks`: the issuer, the next change, the TTL."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from keyturn.domain.issuer import ISSUER_PATTERN, IssuerError, parse_issuer
from keyturn.domain.model import Key, KeyState, Ring
from keyturn.domain.publication import jwks_annotations, next_change
from keyturn.domain.spec import SpecError
from keyturn.domain.spec_parser import parse_spec

CRD_PATH = Path(__file__).resolve().parents[3] / "crds" / "keyturn.dev_jwtkeysets.yaml"
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
ROTATION = {"interval": "30d", "publishAhead": "1h", "gracePeriod": "7d", "retention": "14d"}


def key(kid: str, state: KeyState, **times: Any) -> Key:
    return dataclasses.replace(
        Key(kid=kid, state=state, algorithm="ES256", serial=0, created_at=T0 - 40 * DAY), **times
    )


CURRENT = key("c", KeyState.CURRENT, activated_at=T0)
NEXT = key("n", KeyState.NEXT, published_at=T0)
PREVIOUS_SOON = key("p", KeyState.PREVIOUS, demoted_at=T0, remove_from_jwks_at=T0 + 7 * DAY)
FAILED_SOONER = key("f", KeyState.FAILED, demoted_at=T0, remove_from_jwks_at=T0 + 2 * DAY)
RETIRED = key("r", KeyState.RETIRED, remove_from_jwks_at=T0 + DAY)  # already out of the JWKS


CASES: dict[str, tuple[dict[str, Any], tuple[Key, ...], datetime | None]] = {
    "the next activation: the current key's interval is over": ({}, (CURRENT, NEXT), T0 + 30 * DAY),
    "the next activation waits for publishAhead": (
        {"rotation": {**ROTATION, "publishAhead": "40d", "gracePeriod": "40d", "retention": "40d"}},
        (CURRENT, NEXT),
        T0 + 40 * DAY,
    ),
    "a demoted key leaves before the activation": ({}, (CURRENT, NEXT, PREVIOUS_SOON), T0 + 7 * DAY),
    "the earliest of several demoted keys": ({}, (CURRENT, NEXT, PREVIOUS_SOON, FAILED_SOONER), T0 + 2 * DAY),
    "a retired key is not in the document any more": ({}, (CURRENT, NEXT, RETIRED), T0 + 30 * DAY),
    "suspended: only the demoted keys' departures": (
        {"suspend": True},
        (CURRENT, NEXT, PREVIOUS_SOON),
        T0 + 7 * DAY,
    ),
    "suspended with nothing demoted: nothing scheduled": ({"suspend": True}, (CURRENT, NEXT), None),
    "no prepared key (right after a revocation): no activation": ({}, (CURRENT,), None),
    "the window moves the activation to its opening": (
        {"rotation": {**ROTATION, "window": {"start": "02:00", "end": "04:00"}}},
        (CURRENT, NEXT),
        datetime(2026, 7, 2, 2, 0, tzinfo=UTC),
    ),
}


@pytest.mark.parametrize(("spec", "keys", "expected"), CASES.values(), ids=CASES.keys())
def test_next_change(spec: dict[str, Any], keys: tuple[Key, ...], expected: datetime | None) -> None:
    parsed = parse_spec("k", "ns", {"algorithm": "ES256", "rotation": ROTATION, **spec})
    assert next_change(parsed, Ring(keys=keys)) == expected


def test_the_annotations_carry_issuer_next_change_and_ttl_only_when_set() -> None:
    ring = Ring(keys=(CURRENT, NEXT))
    full = parse_spec(
        "k",
        "ns",
        {"algorithm": "ES256", "rotation": ROTATION, "tokens": {"verifierCacheTTL": "5m"}},
    )
    assert jwks_annotations(full, ring, issuer="https://auth.example.com") == {
        "keyturn.dev/issuer": "https://auth.example.com",
        "keyturn.dev/next-change": "2026-07-01T12:00:00Z",
        "keyturn.dev/cache-ttl": "300",
    }
    bare = parse_spec("k", "ns", {"algorithm": "ES256", "suspend": True})
    assert jwks_annotations(bare, ring, issuer=None) == {}


# ------------------------------------------------------------------------------------ the issuer
VALID = {
    "a host": ("https://auth.example.com", "auth.example.com", None, ""),
    "upper-case host, port, path, final slash": (
        "https://Auth.Example.com:8443/tenants/a_1.v2/",
        "auth.example.com",
        8443,
        "/tenants/a_1.v2",
    ),
    "a tilde": ("https://h.example/~team", "h.example", None, "/~team"),
}


@pytest.mark.parametrize(("text", "host", "port", "path"), VALID.values(), ids=VALID.keys())
def test_valid_issuers(text: str, host: str, port: int | None, path: str) -> None:
    issuer = parse_issuer(text)
    assert (issuer.url, issuer.host, issuer.port, issuer.path) == (text, host, port, path)
    assert issuer.jwks_uri == text.rstrip("/") + "/.well-known/jwks.json"


INVALID = {
    "http": ("http://auth.example.com", "https://"),
    "user info": ("https://user:pw@auth.example.com", "user info"),
    "a query": ("https://auth.example.com/?t=a", "query"),
    "a fragment": ("https://auth.example.com/#a", "fragment"),
    "percent-encoding": ("https://auth.example.com/%2e%2e", "a path of letters"),
    "a double slash": ("https://auth.example.com//a", "a path of letters"),
    "a dot-dot segment": ("https://auth.example.com/a/../b", "'..' path segments"),
    "a dot segment": ("https://auth.example.com/./b", "'..' path segments"),
    "no host": ("https:///a", "a path of letters"),
    "port 0": ("https://auth.example.com:0", "port"),
    "port too large": ("https://auth.example.com:70000", "port"),
    "too long": ("https://a.example/" + "a" * 240, "at most 253"),
    "a space": ("https://auth.example.com/a b", "a path of letters"),
    "not a string": (["https://auth.example.com"], "must be a string"),
}


@pytest.mark.parametrize(("text", "complaint"), INVALID.values(), ids=INVALID.keys())
def test_invalid_issuers_are_refused_with_the_reason(text: object, complaint: str) -> None:
    with pytest.raises(IssuerError) as caught:
        parse_issuer(text)
    assert complaint in str(caught.value)


@pytest.mark.parametrize(("text", "complaint"), INVALID.values(), ids=INVALID.keys())
def test_the_spec_parser_names_the_field(text: object, complaint: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec("k", "ns", {"jwks": {"issuer": text}})
    assert str(caught.value).startswith("spec.jwks.issuer: ")


def test_an_hmac_keyset_takes_no_issuer() -> None:
    with pytest.raises(SpecError, match=r"^spec\.jwks\.issuer: HMAC keysets"):
        parse_spec("k", "ns", {"algorithm": "HS256", "jwks": {"issuer": "https://auth.example.com"}})
    assert parse_spec("k", "ns", {"jwks": {"issuer": "https://a.example"}}).jwks_issuer == "https://a.example"
    assert parse_spec("k", "ns", {}).jwks_issuer is None


def test_the_crd_checks_the_same_pattern() -> None:
    crd = yaml.safe_load(CRD_PATH.read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    issuer = schema["properties"]["jwks"]["properties"]["issuer"]
    assert issuer["pattern"] == ISSUER_PATTERN
    assert issuer["maxLength"] == 253
    assert f"self.matches('{ISSUER_PATTERN}')" in issuer["x-kubernetes-validations"][0]["rule"]
