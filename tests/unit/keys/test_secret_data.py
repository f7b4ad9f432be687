"""keyturn.keys.secret_data: which items the Secret holds, and what each one holds, for every format
and slot, with real keys. Expected values come from the original key material by another path
(public PEM from the private key, JWKs from the material itself), never from the renderer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from keyturn.domain.layout import material_item
from keyturn.domain.model import Key, KeyState, Ring
from keyturn.domain.spec import Spec
from keyturn.domain.spec_parser import parse_spec
from keyturn.keys.algorithms import is_symmetric
from keyturn.keys.generation import generate
from keyturn.keys.jwk import private_jwk, public_jwk
from keyturn.keys.material import KeyMaterial, raw_secret
from keyturn.keys.pem import is_encrypted_pem, private_pem, public_pem
from keyturn.keys.secret_data import MissingMaterial, render
from unit.keys.support import PASSPHRASE, assert_no_secret_in

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
# The ring every test starts from: one key per slot, plus keys outside every slot.
SLOT_KID = {"previous": "k1", "current": "k2", "next": "k3"}
STATES = {
    "k0": KeyState.RETIRED,  # out of the JWKS, material kept for the retention
    "k1": KeyState.PREVIOUS,
    "k2": KeyState.CURRENT,
    "k3": KeyState.NEXT,
    "kx": KeyState.REVOKED,  # material deleted
}


@dataclass(frozen=True)
class World:
    """A ring of real keys and the Secret data that stores them (what `render` reads)."""

    algorithm: str
    ring: Ring
    stored: dict[str, str]
    materials: Mapping[str, KeyMaterial]

    def item(self, kid: str) -> str:
        return material_item(kid, is_symmetric(self.algorithm))


def world(algorithm: str, kids: tuple[str, ...] = tuple(STATES), passphrase: bytes | None = None) -> World:
    materials = {kid: generate(algorithm) for kid in kids}
    keys, stored = [], {}
    for serial, kid in enumerate(kids):
        state = STATES[kid]
        material = materials[kid]
        symmetric = is_symmetric(algorithm)
        keys.append(
            Key(
                kid=kid,
                state=state,
                algorithm=algorithm,
                serial=serial,
                created_at=T0,
                demoted_at=T0 + timedelta(minutes=serial) if state is KeyState.PREVIOUS else None,
                public_jwk=None if symmetric else public_jwk(material, kid),
            )
        )
        if state is not KeyState.REVOKED:
            text = raw_secret(material) if symmetric else private_pem(material, passphrase)
            stored[material_item(kid, symmetric)] = text
    return World(algorithm, Ring(keys=tuple(keys), serial=len(kids)), stored, materials)


def items_spec(algorithm: str, *items: tuple[str, str, str]) -> Spec:
    raw: dict[str, Any] = {
        "algorithm": algorithm,
        "secret": {"items": [{"key": key, "format": fmt, "slot": slot} for key, fmt, slot in items]},
    }
    return parse_spec("keys", "ns", raw)


def expected(w: World, fmt: str, kid: str) -> Any:
    """What an item must hold, derived from the material (JSON items compared parsed)."""
    if fmt in ("pem", "raw"):
        return w.stored[w.item(kid)]
    if fmt == "public-pem":
        return public_pem(w.materials[kid])
    if fmt == "kid":
        return kid
    if fmt == "jwk":
        return private_jwk(w.materials[kid], kid)
    assert fmt == "jwks"
    verifying = [k for k in ("k2", "k3", "k1") if k in w.materials]  # current, next, previous
    return {"keys": [private_jwk(w.materials[k], k) for k in verifying]}


def parsed(fmt: str, text: str) -> Any:
    return json.loads(text) if fmt in ("jwk", "jwks") else text


@pytest.fixture(scope="module")
def worlds() -> dict[str, World]:
    return {"ES256": world("ES256"), "HS256": world("HS256")}


def _format_rows() -> list[Any]:
    rows = []
    for alg, formats in (("ES256", ("pem", "public-pem", "jwk", "kid")), ("HS256", ("raw", "jwk", "kid"))):
        family = "HMAC" if alg == "HS256" else "asymmetric"
        for fmt in formats:
            for slot in ("current", "previous", "next"):
                rows.append(pytest.param(alg, fmt, slot, id=f"{family} {fmt} item of the {slot} key"))
        rows.append(pytest.param(alg, "jwks", "current", id=f"{family} jwks item: every verifying key"))
    return rows


@pytest.mark.parametrize(("alg", "fmt", "slot"), _format_rows())
def test_each_format_renders_the_key_in_its_slot(
    alg: str, fmt: str, slot: str, worlds: dict[str, World]
) -> None:
    w = worlds[alg]
    data = render(items_spec(alg, ("OUT", fmt, slot)), w.ring, w.stored)
    assert parsed(fmt, data["OUT"]) == expected(w, fmt, SLOT_KID[slot])


@pytest.mark.parametrize("alg", ["ES256", "HS256"])
def test_material_items_are_those_of_keys_with_material_and_nothing_else(
    alg: str, worlds: dict[str, World]
) -> None:
    """Retired keys keep their material, the revoked one has none, and stale entries are dropped."""
    w = worlds[alg]
    stale = {"key.gone.pem": "old", "key.gone.secret": "old", "JWT_OLD": "old"}
    data = render(items_spec(alg, ("KID", "kid", "current")), w.ring, {**w.stored, **stale})
    with_material = ("k0", "k1", "k2", "k3")
    assert data == {**{w.item(kid): w.stored[w.item(kid)] for kid in with_material}, "KID": "k2"}
    suffix = ".secret" if alg == "HS256" else ".pem"
    assert all(name.endswith(suffix) for name in data if name.startswith("key."))


@pytest.mark.parametrize(
    ("alg", "fmt", "slot"),
    [
        pytest.param("ES256", "pem", "previous", id="asymmetric pem of the empty previous slot"),
        pytest.param("ES256", "public-pem", "next", id="asymmetric public-pem of the empty next slot"),
        pytest.param("ES256", "jwk", "next", id="asymmetric jwk of the empty next slot"),
        pytest.param("HS256", "raw", "previous", id="HMAC raw of the empty previous slot"),
        pytest.param("HS256", "kid", "next", id="HMAC kid of the empty next slot"),
    ],
)
def test_items_of_empty_slots_are_left_out(alg: str, fmt: str, slot: str) -> None:
    w = world(alg, kids=("k2",))  # a new keyset: only a current key
    spec = items_spec(alg, ("EMPTY", fmt, slot), ("CURRENT", fmt, "current"), ("ALL", "jwks", "current"))
    data = render(spec, w.ring, {**w.stored, "EMPTY": "what an earlier ring left"})
    assert "EMPTY" not in data
    assert parsed(fmt, data["CURRENT"]) == expected(w, fmt, "k2")
    assert json.loads(data["ALL"]) == expected(w, "jwks", "k2")


def test_public_pem_of_an_hmac_key_is_refused_without_showing_it(worlds: dict[str, World]) -> None:
    w = worlds["HS256"]
    with pytest.raises(ValueError, match="no public PEM") as excinfo:
        render(items_spec("HS256", ("PUB", "public-pem", "current")), w.ring, w.stored)
    assert_no_secret_in(str(excinfo.value), w.materials["k2"])


def test_encrypted_pems_are_copied_byte_for_byte() -> None:
    """Re-encrypting would change the bytes (fresh salt and IV) and so write the Secret every pass."""
    w = world("ES256", passphrase=PASSPHRASE)
    spec = items_spec(
        "ES256", *((f"PEM_{slot}", "pem", slot) for slot in SLOT_KID), ("PUB", "public-pem", "current")
    )
    first = render(spec, w.ring, w.stored)
    for slot, kid in SLOT_KID.items():
        assert is_encrypted_pem(first[f"PEM_{slot}"])
        assert first[f"PEM_{slot}"] == w.stored[w.item(kid)]
        assert first[w.item(kid)] == w.stored[w.item(kid)]
    assert first["PUB"] == public_pem(w.materials["k2"])  # from the JWK: no passphrase needed
    assert render(spec, w.ring, dict(w.stored)) == first


LENIENT_ROWS = [
    pytest.param(
        "pem", "previous", True, "kept", id="pem of the key without material keeps the stored value"
    ),
    pytest.param(
        "kid", "previous", True, "kept", id="kid of the key without material keeps the stored value"
    ),
    pytest.param(
        "jwks", "current", True, "kept", id="jwks naming the key without material keeps the stored value"
    ),
    pytest.param("pem", "previous", False, "absent", id="an item the Secret never held stays left out"),
    pytest.param("pem", "current", True, "rendered", id="items of keys with material render as usual"),
    pytest.param("jwk", "next", True, "rendered", id="a jwk of another key renders as usual"),
]


@pytest.mark.parametrize(("fmt", "slot", "held", "outcome"), LENIENT_ROWS)
def test_lenient_mode_leaves_out_a_key_without_material(
    fmt: str, slot: str, held: bool, outcome: str, worlds: dict[str, World]
) -> None:
    """The emergency path of a hand-damaged Secret: k1 (previous) lost its material."""
    w = worlds["ES256"]
    damaged = {name: text for name, text in w.stored.items() if name != w.item("k1")}
    if held:
        damaged["OUT"] = "what the Secret held"
    data = render(items_spec("ES256", ("OUT", fmt, slot)), w.ring, damaged, lenient=True)
    assert w.item("k1") not in data
    assert {w.item(k) for k in ("k0", "k2", "k3")} <= set(data)
    if outcome == "kept":
        assert data["OUT"] == "what the Secret held"
    elif outcome == "absent":
        assert "OUT" not in data
    else:
        assert parsed(fmt, data["OUT"]) == expected(w, fmt, SLOT_KID[slot])


@pytest.mark.parametrize(
    ("alg", "lost"),
    [
        pytest.param("ES256", "k1", id="asymmetric previous key without material"),
        pytest.param("ES256", "k2", id="asymmetric current key without material"),
        pytest.param("HS256", "k3", id="HMAC next key without material"),
        pytest.param("HS256", "k0", id="HMAC retired key without material"),
    ],
)
def test_a_key_without_material_is_missing_material_unless_lenient(
    alg: str, lost: str, worlds: dict[str, World]
) -> None:
    w = worlds[alg]
    damaged = {name: text for name, text in w.stored.items() if name != w.item(lost)}
    spec = items_spec(alg, ("KID", "kid", "current"))
    with pytest.raises(MissingMaterial, match=rf"key {lost} \({w.item(lost)}\)") as excinfo:
        render(spec, w.ring, damaged)
    for material in w.materials.values():
        assert_no_secret_in(str(excinfo.value), material)
